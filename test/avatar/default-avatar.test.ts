import { describe, expect, it } from 'vitest';
import {
  avatarColors,
  avatarFallbackScriptTag,
  avatarImgHtml,
  avatarImgProps,
  AVATAR_FALLBACK_SCRIPT,
  contrastRatio,
  createAvatarHandler,
  escapeHtml,
  initialsAvatar,
  initialsAvatarDataUrl,
  initialsAvatarSvg,
  initialsOf,
  MIN_AVATAR_CONTRAST,
  safeImageUrl,
} from '../../src/avatar/index.js';
import { listen } from '../support/http.js';

const HOSTILE_NAMES = [
  '<script>alert(1)</script>',
  '" onload="alert(1)',
  "' onload='alert(1)",
  '</title><script>x</script>',
  ']]><script>x</script>',
  '&lt;b&gt;',
  'a\u0000b\u0007c\ud800',
];

describe('initials', () => {
  it.each([
    ['Ada Lovelace', 'AL'],
    ['Ada King Lovelace', 'AL'],
    ['madonna', 'M'],
    ['  jean-luc   picard ', 'JP'],
    ['张伟', '张'],
    ['Σωκράτης Παππάς', 'ΣΠ'],
    ['Иван Петров', 'ИП'],
    ['محمد علي', 'مع'],
    ['(Bob) Smith', 'BS'],
    ['Émile Zola', 'ÉZ'],
    ['E\u0301mile', 'É'],
    ['', ''],
    ['   ', ''],
    ['- & -', ''],
  ])('%j → %j', (name, expected) => {
    expect(initialsOf(name)).toBe(expected.normalize('NFC'));
  });

  it('handles null and undefined', () => {
    expect(initialsOf(null)).toBe('');
    expect(initialsOf(undefined)).toBe('');
  });
});

describe('colours', () => {
  it('are deterministic per id and readable (contrast >= 4.5) for every hue', () => {
    expect(avatarColors('agent-7')).toEqual(avatarColors('agent-7'));
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const c = avatarColors(`person-${i}`);
      expect(c.contrast).toBeGreaterThanOrEqual(MIN_AVATAR_CONTRAST);
      const rgb = [1, 3, 5].map((o) => parseInt(c.background.slice(o, o + 2), 16)) as [number, number, number];
      expect(contrastRatio(rgb, [255, 255, 255])).toBeGreaterThanOrEqual(MIN_AVATAR_CONTRAST);
      seen.add(c.background);
    }
    expect(seen.size).toBeGreaterThan(200); // people get told apart
  });

  it('derive from the id, not the name, when an id is given', () => {
    const a = initialsAvatarSvg({ id: 9, name: 'Ann' });
    const b = initialsAvatarSvg({ id: 9, name: 'Ann Smith' });
    expect(a.match(/fill="(#[0-9a-f]{6})"/)![1]).toBe(b.match(/fill="(#[0-9a-f]{6})"/)![1]);
  });
});

describe('initials SVG', () => {
  it('has a label, a title, a size and the initials', () => {
    const svg = initialsAvatarSvg({ id: 1, name: 'Ada Lovelace' }, { size: 48 });
    expect(svg).toMatch(
      /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="48" height="48" viewBox="0 0 64 64" role="img" aria-label="Avatar of Ada Lovelace"><title>Avatar of Ada Lovelace<\/title>/,
    );
    expect(svg).toContain('>AL</text>');
  });

  it('shows a silhouette for an empty name', () => {
    const svg = initialsAvatarSvg({ name: '' });
    expect(svg).toContain('aria-label="Avatar"');
    expect(svg).not.toContain('<text');
    expect(svg).toContain('<path');
  });

  it.each(HOSTILE_NAMES)('lets nothing through from %j', (name) => {
    const svg = initialsAvatarSvg({ id: name, name }, { label: name });
    // The only tags are ours; no quote from the name ends an attribute.
    expect(svg.match(/<[a-z]+/g)!.every((t) => ['<svg', '<title', '<circle', '<text', '<path'].includes(t))).toBe(true);
    expect(svg).not.toMatch(/<script/i);
    // Every attribute is one of ours: "onload" can only appear inside a quoted value.
    const names = [...svg.matchAll(/ ([a-zA-Z-]+)="[^"]*"/g)].map((m) => m[1]);
    expect(
      names.every((n) =>
        [
          'xmlns',
          'width',
          'height',
          'viewBox',
          'role',
          'aria-label',
          'cx',
          'cy',
          'r',
          'fill',
          'x',
          'y',
          'dy',
          'text-anchor',
          'font-family',
          'font-size',
          'font-weight',
          'd',
          'rx',
        ].includes(n!),
      ),
    ).toBe(true);
    expect(svg).not.toMatch(/[\u0000-\u0008\ud800-\udfff]/);
    const dataUrl = initialsAvatarDataUrl({ name });
    expect(dataUrl).toMatch(/^data:image\/svg\+xml;charset=utf-8,[A-Za-z0-9%\-_.!~*]+$/);
    expect(decodeURIComponent(dataUrl.slice(dataUrl.indexOf(',') + 1))).toBe(initialsAvatarSvg({ name }));
  });

  it('clamps absurd sizes', () => {
    expect(initialsAvatarSvg({}, { size: 1e9 })).toContain('width="1024"');
    expect(initialsAvatarSvg({}, { size: Number.NaN })).toContain('width="64"');
  });

  it('initialsAvatar({ basePath }) points at the handler', () => {
    expect(initialsAvatar({ basePath: '/avatars/', size: 40 })({ id: 5, name: 'A&B <x>' })).toBe('/avatars/initials.svg?name=A%26B+%3Cx%3E&id=5&size=40');
  });
});

describe('img helpers', () => {
  it('escape every attribute and refuse event handlers', () => {
    const html = avatarImgHtml({
      src: '/media/a".png',
      fallback: initialsAvatarDataUrl({ name: '"><script>' }),
      alt: '" onerror="alert(1)',
      attributes: { title: "<b>'x'</b>", 'data-id': 7, hidden: true },
    });
    expect(html.match(/<[a-z]+/g)).toEqual(['<img']);
    expect(html).not.toMatch(/<script|" onerror="alert/);
    expect(html).toContain('alt="&quot; onerror&#61;&quot;alert(1)"');
    expect(html).toContain('src="/media/a&quot;.png"');
    expect(html).toContain('title="&lt;b&gt;&#39;x&#39;&lt;/b&gt;"');
    expect(html).toContain(' hidden');
    expect(() => avatarImgHtml({ src: 'a', fallback: 'b', alt: '', attributes: { onload: 'x' } })).toThrow(TypeError);
    expect(() => avatarImgHtml({ src: 'a', fallback: 'b', alt: '', attributes: { 'x"y': 'x' } })).toThrow(TypeError);
  });

  it('inline variant carries one self-removing onerror; strict has none', () => {
    const inline = avatarImgHtml({ src: '/a.png', fallback: '/d.svg', alt: 'A' });
    expect(inline).toContain('data-avatar-fallback="/d.svg"');
    expect(inline).toContain('onerror="this.onerror&#61;null;');
    const strict = avatarImgHtml({ src: '/a.png', fallback: '/d.svg', alt: 'A', csp: 'strict' });
    expect(strict).not.toMatch(/\son[a-z]+=/i);
    expect(strict).toContain('data-avatar-fallback="/d.svg"');
  });

  it('never emits a javascript: or other unsafe URL', () => {
    expect(safeImageUrl('java\tscript:alert(1)')).toBeUndefined();
    expect(safeImageUrl('data:text/html,<script>')).toBeUndefined();
    expect(safeImageUrl('vbscript:x')).toBeUndefined();
    expect(safeImageUrl('https://cdn.example.com/a.png')).toBe('https://cdn.example.com/a.png');
    expect(safeImageUrl('/media/a.png')).toBe('/media/a.png');
    expect(safeImageUrl('data:image/png;base64,AAA')).toBe('data:image/png;base64,AAA');
    const html = avatarImgHtml({ src: 'javascript:alert(1)', fallback: '/d.svg', alt: '' });
    expect(html).toContain('src="/d.svg"');
    expect(html).not.toContain('javascript');
  });

  it('JSX props switch to the fallback once, never loop', () => {
    const props = avatarImgProps({ src: '/a.png', fallback: '/d.svg', alt: 'Ann', width: 40 });
    expect(props).toMatchObject({ src: '/a.png', alt: 'Ann', width: 40, 'data-avatar-fallback': '/d.svg' });
    const attrs = new Map<string, string>();
    const img = {
      src: '/a.png',
      getAttribute: (n: string) => attrs.get(n) ?? null,
      setAttribute: (n: string, v: string) => void attrs.set(n, v),
      hasAttribute: (n: string) => attrs.has(n),
      removeAttribute: (n: string) => void attrs.delete(n),
    };
    props.onError({ currentTarget: img });
    expect(img.src).toBe('/d.svg');
    img.src = '/still-broken';
    props.onError({ currentTarget: img }); // the fallback failed too: stays put
    expect(img.src).toBe('/still-broken');
  });

  it('script tag escapes its src and nonce', () => {
    expect(avatarFallbackScriptTag({ src: '/x"y.js', nonce: 'n"1' })).toBe('<script src="/x&quot;y.js" nonce="n&quot;1"></script>');
    expect(escapeHtml(null)).toBe('');
  });
});

describe('createAvatarHandler', () => {
  it('serves the SVG and the fallback script with safe headers, and passes other paths on', async () => {
    const handler = createAvatarHandler({ basePath: '/avatars' });
    const server = await listen((req, res) =>
      handler(req, res, () => {
        res.statusCode = 418;
        res.end();
      }),
    );
    try {
      const svg = await fetch(`${server.url}/avatars/initials.svg?name=${encodeURIComponent('<script>x</script> Lee')}&id=3&size=32`);
      expect(svg.status).toBe(200);
      expect(svg.headers.get('content-type')).toBe('image/svg+xml; charset=utf-8');
      expect(svg.headers.get('x-content-type-options')).toBe('nosniff');
      expect(svg.headers.get('content-security-policy')).toContain("default-src 'none'");
      const text = await svg.text();
      expect(text).toBe(initialsAvatarSvg({ name: '<script>x</script> Lee', id: '3' }, { size: 32 }));
      expect(text).not.toContain('<script');
      const js = await fetch(`${server.url}/avatars/fallback.js`);
      expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
      expect(await js.text()).toBe(AVATAR_FALLBACK_SCRIPT);
      expect((await fetch(`${server.url}/other`)).status).toBe(418);
      expect((await fetch(`${server.url}/avatars/initials.svg`, { method: 'POST' })).status).toBe(418);
    } finally {
      await server.close();
    }
  });

  it('answers 404 by itself without next', async () => {
    const handler = createAvatarHandler();
    const server = await listen((req, res) => handler(req, res));
    try {
      expect((await fetch(`${server.url}/nope`)).status).toBe(404);
    } finally {
      await server.close();
    }
  });
});

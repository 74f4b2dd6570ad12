import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCrmExample, type RunningExample } from './helpers/crm-example.js';
import { makePng } from './helpers/png.js';

interface ApiPerson {
  id: string;
  name: string;
  role: string;
  photo: string | null;
  avatar: { src: string; fallback: string; isDefault: boolean; key?: string };
}

describe('examples/crm over HTTP', () => {
  let app: RunningExample;
  const people = async (): Promise<ApiPerson[]> => (await fetch(`${app.url}/api/people`)).json() as Promise<ApiPerson[]>;
  const upload = (id: string, body: Blob, filename: string) => {
    const form = new FormData();
    form.append('photo', body, filename);
    return fetch(`${app.url}/people/${id}/photo`, { method: 'POST', body: form, redirect: 'manual' });
  };

  beforeAll(async () => {
    app = await startCrmExample();
  }, 180_000);
  afterAll(async () => app?.stop());

  it('seeds people whose photos are missing, invalid or absent, all with default avatars', async () => {
    const list = await people();
    expect(list.length).toBeGreaterThanOrEqual(8);
    expect(new Set(list.map((p) => p.role))).toEqual(new Set(['organiser', 'agent', 'lead']));
    for (const p of list) {
      expect(p.avatar.isDefault).toBe(true);
      expect(p.avatar.src).toMatch(/^\/avatars\/initials\.svg\?/);
    }
  });

  it('renders names escaped and sends a strict CSP', async () => {
    const res = await fetch(app.url);
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self';");
    const html = await res.text();
    expect(html).not.toContain('<script>alert');
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;');
    expect(html).not.toMatch(/\sonerror=/);
    expect(html).toContain('<script src="/avatars/fallback.js"></script>');
    const inline = await (await fetch(`${app.url}/?fallback=inline`)).text();
    expect(inline).toMatch(/\sonerror="/);
  });

  it('streams an upload into storage, serves it, and shows the default after the file is wiped', async () => {
    const person = (await people()).find((p) => p.name === 'Grace Hopper')!;
    const png = makePng(48, 48);
    const res = await upload(person.id, new Blob([new Uint8Array(png)], { type: 'image/png' }), 'grace.png');
    expect(res.status).toBe(303);
    const after = (await people()).find((p) => p.id === person.id)!;
    expect(after.avatar.isDefault).toBe(false);
    expect(after.photo).toMatch(new RegExp(`^profile_images/${person.id}-[a-z0-9]+\\.png$`));
    const served = await fetch(`${app.url}${after.avatar.src}`);
    expect(served.headers.get('content-type')).toBe('image/png');
    expect(Buffer.from(await served.arrayBuffer()).equals(png)).toBe(true);
    expect(existsSync(path.join(app.mediaDir, after.photo!))).toBe(true);

    const wipe = await fetch(`${app.url}/people/${person.id}/photo/wipe`, { method: 'POST', redirect: 'manual' });
    expect(wipe.status).toBe(303);
    expect(existsSync(path.join(app.mediaDir, after.photo!))).toBe(false);
    // Until someone requests the file, the cache still believes it exists (the browser fallback covers that)...
    expect((await people()).find((p) => p.id === person.id)!.avatar.isDefault).toBe(false);
    expect((await fetch(`${app.url}${after.avatar.src}`)).status).toBe(404);
    // ...and the 404, served through the cached storage, taught it: the next render shows the default.
    const healed = (await people()).find((p) => p.id === person.id)!;
    expect(healed.avatar.isDefault).toBe(true);
    expect(healed.avatar.src).toBe(healed.avatar.fallback);
    // The avatar fallback in the page stays a valid image.
    const fallback = await fetch(`${app.url}${after.avatar.fallback}`);
    expect(fallback.headers.get('content-type')).toBe('image/svg+xml; charset=utf-8');
    expect(await fallback.text()).toContain('aria-label="Avatar of Grace Hopper"');
  });

  it('refuses an SVG "photo" and keeps nothing of it', async () => {
    const person = (await people()).find((p) => p.name === 'Madonna')!;
    const svg = '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>';
    const res = await upload(person.id, new Blob([svg], { type: 'image/svg+xml' }), 'evil.png');
    expect(res.status).toBe(415);
    expect((await people()).find((p) => p.id === person.id)!.photo).toBe('');
    const { readdir } = await import('node:fs/promises');
    const stored = await readdir(path.join(app.mediaDir, 'profile_images')).catch(() => [] as string[]);
    expect(stored.filter((f) => f.startsWith(person.id))).toEqual([]);
  });

  it('refuses an empty upload', async () => {
    const person = (await people()).find((p) => p.name === 'Madonna')!;
    const form = new FormData();
    form.append('photo', new Blob([]), '');
    const res = await fetch(`${app.url}/people/${person.id}/photo`, { method: 'POST', body: form, redirect: 'manual' });
    expect(res.status).toBe(400);
  });
});

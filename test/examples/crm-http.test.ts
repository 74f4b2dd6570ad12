import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import exifr from 'exifr';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCrmExample, type RunningExample } from '../support/crm-example.js';
import { makePng } from '../support/png.js';
import { fixtures } from '../support/image-fixtures.js';

interface ApiPerson {
  id: string;
  name: string;
  role: string;
  photo: string | null;
  avatar: { src: string; srcset?: string; fallback: string; isDefault: boolean; key?: string };
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

  it('edits a person (name and role) and deletes one with their photo and its variants', async () => {
    await fetch(`${app.url}/people`, { method: 'POST', redirect: 'manual', body: new URLSearchParams({ name: 'Kathryn Janeway', role: 'lead' }) });
    const janeway = (await people()).find((p) => p.name === 'Kathryn Janeway')!;
    const edited = await fetch(`${app.url}/people/${janeway.id}`, {
      method: 'POST',
      redirect: 'manual',
      body: new URLSearchParams({ name: 'Kathryn Janeway (captain)', role: 'agent' }),
    });
    expect(edited.status).toBe(303);
    expect((await people()).find((p) => p.id === janeway.id)).toMatchObject({ name: 'Kathryn Janeway (captain)', role: 'agent' });
    const refused = await fetch(`${app.url}/people/${janeway.id}`, {
      method: 'POST',
      redirect: 'manual',
      body: new URLSearchParams({ name: ' ', role: 'agent' }),
    });
    expect(refused.status).toBe(400);

    const added = await fetch(`${app.url}/people`, { method: 'POST', redirect: 'manual', body: new URLSearchParams({ name: 'Temp Person', role: 'lead' }) });
    expect(added.status).toBe(303);
    const temp = (await people()).find((p) => p.name === 'Temp Person')!;
    expect((await upload(temp.id, new Blob([new Uint8Array(makePng(40, 40))], { type: 'image/png' }), 'temp.png')).status).toBe(303);
    const withPhoto = (await people()).find((p) => p.id === temp.id)!;
    expect(existsSync(path.join(app.mediaDir, withPhoto.photo!))).toBe(true);
    expect(existsSync(path.join(app.mediaDir, '_variants', withPhoto.photo!))).toBe(true);

    const deleted = await fetch(`${app.url}/people/${temp.id}/delete`, { method: 'POST', redirect: 'manual' });
    expect(deleted.status).toBe(303);
    expect((await people()).some((p) => p.id === temp.id)).toBe(false);
    expect(existsSync(path.join(app.mediaDir, withPhoto.photo!))).toBe(false);
    expect(existsSync(path.join(app.mediaDir, '_variants', withPhoto.photo!))).toBe(false);
    expect((await fetch(`${app.url}/people/${temp.id}/delete`, { method: 'POST', redirect: 'manual' })).status).toBe(404);
  });

  it('the success banner is shown once (a one-shot cookie), never kept in the URL', async () => {
    const added = await fetch(`${app.url}/people`, { method: 'POST', redirect: 'manual', body: new URLSearchParams({ name: 'Banner Test', role: 'lead' }) });
    expect(added.headers.get('location')).toBe('/');
    const cookie = added.headers.get('set-cookie')!.split(';')[0]!;
    const first = await fetch(app.url, { headers: { cookie } });
    expect(await first.text()).toContain('<p class="message" role="status">Banner Test added</p>');
    expect(first.headers.get('set-cookie')).toMatch(/^crm_flash=; Path=\/; Max-Age=0/);
    // A reload (the browser has dropped the cookie) shows no banner.
    expect(await (await fetch(app.url)).text()).not.toContain('role="status"');
  });

  it('shows no storage keys on the page', async () => {
    const list = await people();
    const html = await (await fetch(app.url)).text();
    for (const p of list) if (p.photo) expect(html).not.toContain(`>${p.photo}<`);
    expect(html).not.toContain('<code>');
    expect(html).not.toMatch(/profile_images\/[^"]*</);
  });

  it('streams an upload into storage, serves it, and shows the default after the file is wiped', async () => {
    const person = (await people()).find((p) => p.name === 'Grace Hopper')!;
    const png = makePng(48, 48);
    const res = await upload(person.id, new Blob([new Uint8Array(png)], { type: 'image/png' }), 'grace.png');
    expect(res.status).toBe(303);
    const after = (await people()).find((p) => p.id === person.id)!;
    expect(after.avatar.isDefault).toBe(false);
    expect(after.photo).toMatch(new RegExp(`^profile_images/${person.id}-[a-z0-9]+\\.png$`));
    // The page shows the avatar variant (64 px WebP, 2x in srcset); the original is stored as sent.
    const served = await fetch(`${app.url}${after.avatar.src}`);
    expect(served.headers.get('content-type')).toBe('image/webp');
    expect(await sharp(Buffer.from(await served.arrayBuffer())).metadata()).toMatchObject({ format: 'webp', width: 64, height: 64 });
    expect(after.avatar.srcset).toMatch(/-2x\.webp 2x$/);
    const original = await fetch(`${app.url}/media/${after.photo}`);
    expect(original.headers.get('content-type')).toBe('image/png');
    expect(Buffer.from(await original.arrayBuffer()).equals(png)).toBe(true);
    expect(existsSync(path.join(app.mediaDir, after.photo!))).toBe(true);

    // The demo control: a redeploy loses this person's photo file, the row still points at it.
    const wipe = await fetch(`${app.url}/demo/redeploy`, { method: 'POST', redirect: 'manual', body: new URLSearchParams({ person: person.id }) });
    expect(wipe.status).toBe(303);
    expect(wipe.headers.get('location')).toBe('/');
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

  it('refuses what only looks like a photo (a truncated JPEG: 415) and a decompression bomb (413), keeping nothing; keeps no GPS of a real one', async () => {
    const person = (await people()).find((p) => p.name === 'Jean-Luc Picard')!;
    const { photo, truncated, bomb } = await fixtures();
    const cut = await upload(person.id, new Blob([new Uint8Array(truncated)], { type: 'image/jpeg' }), 'cut.jpg');
    expect(cut.status).toBe(415);
    expect(await cut.text()).toBe('That file is not an image: upload a PNG, JPEG, GIF, WebP or AVIF photo');
    const big = await upload(person.id, new Blob([new Uint8Array(bomb)], { type: 'image/png' }), 'bomb.png');
    expect(big.status).toBe(413);
    expect(await big.text()).toBe('That photo is too large: photos are limited to 50 megapixels');
    const stored = await readdir(path.join(app.mediaDir, 'profile_images')).catch(() => [] as string[]);
    expect(stored.filter((f) => f.startsWith(person.id))).toEqual([]);
    expect((await upload(person.id, new Blob([new Uint8Array(photo)], { type: 'image/jpeg' }), 'IMG_0001.JPG')).status).toBe(303);
    const saved = (await people()).find((p) => p.id === person.id)!;
    const bytes = await readFile(path.join(app.mediaDir, saved.photo!));
    expect(await exifr.gps(bytes)).toBeUndefined();
    expect(await sharp(bytes).metadata()).toMatchObject({ width: 3024, height: 4032 });
  });

  it('refuses an SVG "photo" and keeps nothing of it', async () => {
    const person = (await people()).find((p) => p.name === 'Madonna')!;
    const svg = '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>';
    const res = await upload(person.id, new Blob([svg], { type: 'image/svg+xml' }), 'evil.png');
    expect(res.status).toBe(415);
    expect((await people()).find((p) => p.id === person.id)!.photo).toBe('');
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

describe('examples/crm refuses bad uploads at once (issue 12, point 6)', () => {
  let app: RunningExample;
  const FIVE_MB = 5 * 1024 * 1024;
  const personId = async (name: string): Promise<string> =>
    ((await (await fetch(`${app.url}/api/people`)).json()) as ApiPerson[]).find((p) => p.name === name)!.id;
  const storedFor = async (id: string): Promise<string[]> =>
    (await readdir(path.join(app.mediaDir, 'profile_images')).catch(() => [] as string[])).filter((f) => f.startsWith(id));
  /** A PNG signature followed by zeros: an "image" of `size` bytes, for the size checks. */
  const pngOf = (size: number): Uint8Array => {
    const bytes = new Uint8Array(size);
    bytes.set(makePng(8, 8));
    return bytes;
  };
  const rssKiB = async (pid: number): Promise<number> => Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))![1]);

  beforeAll(async () => {
    app = await startCrmExample();
  }, 180_000);
  afterAll(async () => app?.stop());

  it('answers a photo over 5 MB with 413 and a clear message within a second, storing nothing', async () => {
    const id = await personId('Grace Hopper');
    const form = new FormData();
    form.append('photo', new Blob([pngOf(FIVE_MB + 1024 * 1024) as Uint8Array<ArrayBuffer>], { type: 'image/png' }), 'big.png');
    const started = performance.now();
    // Before the fix this request got no answer for minutes: the timeout makes that a quick failure.
    const res = await fetch(`${app.url}/people/${id}/photo`, { method: 'POST', body: form, redirect: 'manual', signal: AbortSignal.timeout(15_000) });
    const text = await res.text();
    const elapsed = performance.now() - started;
    expect(res.status).toBe(413);
    expect(text).toBe('That photo is too large: photos are limited to 5 MB');
    // Well under a second on an idle machine; the bound leaves room for a loaded CI machine (2.9 s seen
    // at load 11 on two cores), and still fails the behaviour before the fix: minutes with no answer.
    expect(elapsed).toBeLessThan(5000);
    expect(await storedFor(id)).toEqual([]);
    // The connection and the app are fine afterwards.
    expect((await fetch(`${app.url}/api/people`)).status).toBe(200);
  });

  it('holds an upload of unannounced size (chunked) to the limit as it streams: 413 while the client still sends, and the rest dropped, not kept', async () => {
    const id = await personId('Ada Lovelace');
    const boundary = 'crmboundary7MA4YWxk';
    const rssBefore = await rssKiB(app.pid);
    // A socket speaking HTTP/1.1 itself: Node's http client stops sending once it has a whole
    // answer, and this test is about what the server does while the client goes on sending.
    const { port, hostname } = new URL(app.url);
    const socket = net.connect(Number(port), hostname);
    socket.on('error', () => undefined);
    let answer = '';
    let answeredAt = 0;
    socket.on('data', (d: Buffer) => {
      answer += d.toString('latin1');
      if (!answeredAt && /\r\n\r\n/.test(answer)) answeredAt = performance.now();
    });
    const send = async (data: Buffer): Promise<void> => {
      socket.write(`${data.length.toString(16)}\r\n`);
      socket.write(data);
      if (!socket.write('\r\n')) await new Promise((r) => socket.once('drain', r));
    };
    socket.write(
      `POST /people/${id}/photo HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nTransfer-Encoding: chunked\r\n\r\n`,
    );
    await send(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="photo"; filename="huge.png"\r\nContent-Type: image/png\r\n\r\n`));
    const chunk = Buffer.alloc(256 * 1024);
    Buffer.from(makePng(8, 8)).copy(chunk);
    let overLimitAt = 0;
    for (let sent = 0; sent < 6 * 1024 * 1024; sent += chunk.length) {
      await send(chunk);
      chunk.fill(0, 0, 64);
      if (!overLimitAt && sent + chunk.length > FIVE_MB) overLimitAt = performance.now();
    }
    // The client keeps the request open: the answer must not wait for its end.
    for (let waited = 0; !answer.includes('limited to 5 MB') && waited < 5000; waited += 20) await new Promise((r) => setTimeout(r, 20));
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(answer).toContain('That photo is too large: photos are limited to 5 MB');
    // Within a second of the limit being passed.
    expect(answeredAt - overLimitAt).toBeLessThan(1000);
    // 100 MB more arrive after the answer: the server reads them off the socket and drops them.
    // What its RSS grows by is garbage not yet collected, which levels off at a size the
    // collector picks (it grew 3 MB over the first 50 MB and 27 MB over the next in one CI run),
    // so only the total is bounded: a server that kept the bytes would grow by all 100 MB.
    const after = 100 * 1024 * 1024;
    for (let sent = 0; sent < after; sent += chunk.length) await send(chunk);
    const rssAfter = await rssKiB(app.pid);
    socket.destroy();
    const grew = `server RSS ${rssBefore} KiB before, ${rssAfter} KiB after 106 MB sent`;
    expect((rssAfter - rssBefore) * 1024, grew).toBeLessThan(after * 0.6);
    console.log(`[crm] refused upload: ${grew}`);
    expect(await storedFor(id)).toEqual([]);
  });

  it('refuses a file that is not an image by its bytes, whatever its name says', async () => {
    const id = await personId('Grace Hopper');
    const photoBefore = ((await (await fetch(`${app.url}/api/people`)).json()) as ApiPerson[]).find((p) => p.id === id)!.photo;
    const form = new FormData();
    form.append('photo', new Blob(['Call Ada about the engine on Monday.\n'.repeat(40)], { type: 'image/jpeg' }), 'note.jpg');
    const res = await fetch(`${app.url}/people/${id}/photo`, { method: 'POST', body: form, redirect: 'manual', signal: AbortSignal.timeout(15_000) });
    expect(res.status).toBe(415);
    expect(await res.text()).toBe('That file is not an image: upload a PNG, JPEG, GIF, WebP or AVIF photo');
    expect(await storedFor(id)).toEqual([]);
    expect(((await (await fetch(`${app.url}/api/people`)).json()) as ApiPerson[]).find((p) => p.id === id)!.photo).toBe(photoBefore);
  });
});

/**
 * sync and audit on storage other software filled: every file is copied under exactly its name,
 * what no key names is reported by name and reason (never retried as a failure, so a run can
 * finish), folder markers are ignored, and audit finds a file stored under another Unicode
 * spelling of the path it is given.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { auditKeys, formatAudit, type AuditEntry } from '../../src/cli/audit.js';
import { main } from '../../src/cli/index.js';
import { syncStorages } from '../../src/cli/sync.js';
import { LocalStorage } from '../../src/local/index.js';
import { MemoryStorage } from '../../src/memory/index.js';
import { tempDir } from '../support/tmp.js';

const NFD = 'profile_images/Jose\u0301.jpg';
const NFC = 'profile_images/Jos\u00e9.jpg';
const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

let removals: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const remove of removals) await remove();
  removals = [];
});
async function folder(label: string): Promise<string> {
  const t = await tempDir(label);
  removals.push(t.remove);
  return t.dir;
}

function capture(): { io: Parameters<typeof main>[1]; out: () => string } {
  let out = '';
  return {
    io: { stdout: { write: (s: string) => (out += s) }, stderr: { write: () => true }, stdin: (async function* () {})(), env: {} },
    out: () => out,
  };
}

/** A bucket as a Django app and the S3 console leave it. */
function foreignBucket(): { source: MemoryStorage; files: Map<string, Buffer> } {
  const source = new MemoryStorage();
  const files = new Map<string, Buffer>([
    [NFD, Buffer.from('decomposed name')],
    [NFC, Buffer.from('composed name, other bytes')],
    ['profile_images/abc.jpg', Buffer.from('plain')],
    ['docs/empty.txt', Buffer.alloc(0)],
    ['docs/note.txt', Buffer.from('with metadata')],
  ]);
  for (const [name, body] of files)
    source.putForeignObject(name, body, name === 'docs/note.txt' ? { contentType: 'text/plain', metadata: { 'uploaded-by': 'Jos\u00e9', note: 'a\nb' } } : {});
  source.putForeignObject('profile_images/', Buffer.alloc(0));
  source.putForeignObject('docs/', Buffer.alloc(0));
  source.putForeignObject('./dot.jpg', Buffer.from('dot'));
  source.putForeignObject('a//double.jpg', Buffer.from('double'));
  source.putForeignObject('ctl\u0001.txt', Buffer.from('control'));
  return { source, files };
}

describe('syncStorages on a bucket other software filled', () => {
  it('copies every file byte-exact under its own name, reports what no key names, and a second run copies nothing', async () => {
    const { source, files } = foreignBucket();
    const root = await folder('sync-foreign');
    const local = new LocalStorage({ root, warnOnEphemeralDisk: false });
    const copied: string[] = [];
    const first = await syncStorages(source, local, { onEvent: (e) => e.type === 'copied' && copied.push(e.key) });
    expect(first.failures).toEqual([]);
    expect(copied.sort()).toEqual([...files.keys()].sort());
    expect(first.folderMarkers).toBe(2);
    expect(first.notCopied.map((o) => [o.name, o.reason])).toEqual([
      ['./dot.jpg', 'invalid-key'],
      ['a//double.jpg', 'invalid-key'],
      ['ctl\u0001.txt', 'invalid-key'],
    ]);
    // The one metadata value no backend could give back is left behind, with a warning.
    expect(first.warnings).toEqual([{ key: 'docs/note.txt', message: expect.stringMatching(/"note".*control character/) }]);
    for (const [key, body] of files) expect(sha(await readFile(path.join(root, key))), key).toBe(sha(body));
    expect((await readdir(path.join(root, 'profile_images'))).sort()).toEqual(['Jose\u0301.jpg', 'Jos\u00e9.jpg', 'abc.jpg'].sort());

    const second = await syncStorages(source, local);
    expect(second).toMatchObject({ copied: 0, failed: 0, skipped: files.size, folderMarkers: 2 });
    expect(second.notCopied).toHaveLength(3);

    // And back, into a fresh store: the same keys, the same bytes.
    const back = new MemoryStorage();
    expect(await syncStorages(local, back)).toMatchObject({ copied: files.size, failed: 0, notCopied: [], folderMarkers: 0 });
    for (const [key, body] of files) expect(sha(await back.readBuffer(key)), key).toBe(sha(body));
    expect(await syncStorages(local, back)).toMatchObject({ copied: 0, skipped: files.size });
  });

  it('carries the stored content type and metadata (decoded) where both sides keep them', async () => {
    const { source } = foreignBucket();
    const target = new MemoryStorage();
    await syncStorages(source, target);
    const info = await target.stat('docs/note.txt');
    expect(info.contentType).toBe('text/plain');
    expect(info.metadata).toEqual({ 'uploaded-by': 'Jos\u00e9' });
  });
});

describe('the sync CLI on a folder other software filled', () => {
  it('exits 0 with what it could not copy listed safely, 1 with --strict, and copies nothing the second time', async () => {
    const from = await folder('cli-foreign-from');
    const to = await folder('cli-foreign-to');
    await mkdir(path.join(from, 'profile_images'));
    await writeFile(path.join(from, NFD), 'decomposed');
    await writeFile(path.join(from, NFC), 'composed');
    await writeFile(path.join(from, 'new\nline\u001b[2J.txt'), 'a name with a line break and a terminal escape');

    const run = capture();
    expect(await main(['sync', '--from', `file://${from}`, '--to', `file://${to}`, '--quiet'], run.io)).toBe(0);
    expect(run.out()).toContain('NOT COPIED "new\\u000aline\\u001b[2J.txt": not a valid key: control characters');
    expect(run.out()).toContain('2 copied');
    expect(run.out()).toContain('1 not copied');
    expect(
      run
        .out()
        .split('\n')
        .filter((line) => line.startsWith('NOT COPIED')),
    ).toHaveLength(1);
    expect((await readFile(path.join(to, NFD))).toString()).toBe('decomposed');
    expect((await readFile(path.join(to, NFC))).toString()).toBe('composed');

    const again = capture();
    expect(await main(['sync', '--from', `file://${from}`, '--to', `file://${to}`, '--quiet'], again.io)).toBe(0);
    expect(again.out()).toContain('0 copied');
    const strict = capture();
    expect(await main(['sync', '--from', `file://${from}`, '--to', `file://${to}`, '--strict', '--quiet'], strict.io)).toBe(1);
  });
});

describe('audit of paths against files stored under another Unicode spelling', () => {
  it('finds an NFD file under either spelling, and says which one it is stored under', async () => {
    const root = await folder('audit-foreign');
    await mkdir(path.join(root, 'profile_images'));
    await writeFile(path.join(root, NFD), 'decomposed');
    const storage = new LocalStorage({ root, warnOnEphemeralDisk: false });
    const entries: AuditEntry[] = [];
    const report = await auditKeys(storage, [NFD, NFC, 'profile_images/gone.jpg'], { onEntry: (e) => entries.push(e) });
    // Every path once, in key order (UTF-8 bytes: "e\u0301" before "\u00e9").
    expect(entries).toEqual([
      { path: NFD, status: 'ok', occurrences: 1 },
      { path: NFC, status: 'other-spelling', storedAs: NFD, occurrences: 1 },
      { path: 'profile_images/gone.jpg', status: 'missing', occurrences: 1 },
    ]);
    expect(report.problems).toEqual(entries.slice(1));
    expect(report.counts).toMatchObject({ ok: 1, 'other-spelling': 1, missing: 1 });
    const text = formatAudit(report, 'text');
    expect(text).toContain('OTHER SPELLING  profile_images/Jos\u00e9.jpg');
    expect(text).toContain('"profile_images/Jos\\u00e9.jpg" (NFC) is stored as "profile_images/Jose\\u0301.jpg" (NFD)');
    expect(formatAudit(report, 'csv')).toContain(`other-spelling,1,,${NFD}`);

    const keys = path.join(root, 'paths.txt');
    await writeFile(keys, `${NFC}\n`);
    const strict = capture();
    expect(await main(['audit', '--keys', keys, '--url', `file://${root}`, '--fail-on-missing', '--quiet'], strict.io)).toBe(1);
  });
});

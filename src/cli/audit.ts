import { StringDecoder } from 'node:string_decoder';
import { isMediaStorageError } from '../core/errors.js';
import { normalizationTwins, tryValidateKey } from '../core/keys.js';
import type { MediaStorage } from '../core/types.js';
import { sortExternally } from './ordered.js';
import { displayName } from './progress.js';

/**
 * `other-spelling`: no object under the path, but one under another Unicode spelling of it (the
 * database says `José.jpg` composed, the file is `Jose\u0301.jpg` decomposed, as macOS names
 * files). Keys are byte-exact, so the app's reads of the path miss it: rename one of the two.
 */
export type AuditStatus = 'ok' | 'missing' | 'other-spelling' | 'invalid' | 'error';

/** What {@link auditKeys} found for one distinct stored path. */
export interface AuditEntry {
  /** The path as it was stored. */
  path: string;
  /** `ok`, `missing`, `other-spelling`, `invalid` (not a valid key) or `error` (see {@link AuditStatus}). */
  status: AuditStatus;
  /** For `other-spelling`: the key the object is stored under. */
  storedAs?: string;
  /** How many times the path was listed. */
  occurrences: number;
  /** For `error`: the error code and message. */
  error?: string;
}

/** What {@link auditKeys} found over a list of stored paths: counts by status, and the first problems. */
export interface AuditReport {
  /** Non-empty lines read. */
  total: number;
  /** Distinct paths checked. */
  distinct: number;
  /** Distinct paths by status. */
  counts: Record<AuditStatus, number>;
  /**
   * The first `maxProblems` paths that are not `ok`, in key order (all are counted in `counts`).
   * Every path, ok ones included, goes to `onEntry` as it is checked.
   */
  problems: AuditEntry[];
}

/** Options of {@link auditKeys}: checks in flight, a prefix to strip, progress and per-path reports, and limits. */
export interface AuditOptions {
  /** Paths checked at once; default 16. */
  concurrency?: number;
  /** Strip this prefix from each path first (e.g. a MEDIA_URL such as "/media/"). */
  stripPrefix?: string;
  /** Called as paths are checked: lines done (each distinct path counts its occurrences) of all lines read. */
  onProgress?: (done: number, total: number) => void;
  /** Called with every distinct path's entry, in key order (UTF-8 bytes), as soon as it is checked. */
  onEntry?: (entry: AuditEntry) => void;
  /** How many problems the report keeps as examples; default 1,000. */
  maxProblems?: number;
  /** Where paths are sorted when there are more than 100,000 (temp files); default the OS temp folder. */
  tempDir?: string;
}

/** One line of a key list as a stored path (CSV-style quotes removed), or `undefined` for a blank line. */
function keyListLine(line: string): string | undefined {
  const path = line.trim().replace(/^"(.*)"$/, '$1');
  return path === '' ? undefined : path;
}

/** Reads one stored path per line; blank lines are ignored, CSV-style quotes removed. */
export function parseKeyList(text: string): string[] {
  return text.split(/\r?\n/).flatMap((line) => keyListLine(line) ?? []);
}

/**
 * {@link parseKeyList} over a stream (a file, standard input), a line at a time: a list of
 * millions of paths is never held whole.
 */
export async function* readKeyList(input: AsyncIterable<unknown>): AsyncGenerator<string> {
  const decoder = new StringDecoder('utf8');
  let rest = '';
  for await (const chunk of input) {
    rest += typeof chunk === 'string' ? chunk : decoder.write(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
    const lines = rest.split(/\r?\n/);
    rest = lines.pop()!;
    for (const line of lines) {
      const path = keyListLine(line);
      if (path !== undefined) yield path;
    }
  }
  const last = keyListLine(rest + decoder.end());
  if (last !== undefined) yield last;
}

/** Paths sorted in memory up to this many, beyond it through temp files. */
const SORT_RUN = 100_000;

/**
 * Checks which stored paths (say, a profile-image column exported from the database) have no
 * object behind them. The paths are sorted first (through temp files when there are many), so
 * each distinct path is checked once without remembering the ones seen; checks run with bounded
 * concurrency, and each entry goes to `onEntry` in key order as soon as it is known. Memory does
 * not grow with the list.
 */
export async function auditKeys(storage: MediaStorage, paths: Iterable<string> | AsyncIterable<string>, options: AuditOptions = {}): Promise<AuditReport> {
  const strip = options.stripPrefix;
  const maxProblems = Math.max(0, options.maxProblems ?? 1000);
  const concurrency = Math.max(1, options.concurrency ?? 16);
  let total = 0;
  async function* stripped(): AsyncGenerator<string> {
    for await (const raw of paths) {
      total++;
      yield strip && raw.startsWith(strip) ? raw.slice(strip.length) : raw;
    }
  }
  const report: AuditReport = { total: 0, distinct: 0, counts: { ok: 0, missing: 0, 'other-spelling': 0, invalid: 0, error: 0 }, problems: [] };
  let done = 0;
  const finish = (entry: AuditEntry): void => {
    report.distinct++;
    report.counts[entry.status]++;
    if (entry.status !== 'ok' && report.problems.length < maxProblems) report.problems.push(entry);
    options.onEntry?.(entry);
    done += entry.occurrences;
    options.onProgress?.(done, total);
  };
  // Checks start in key order and finish in any order; entries are handed on in key order.
  const inFlight: Promise<AuditEntry>[] = [];
  let group: AuditEntry | undefined;
  const start = async (entry: AuditEntry): Promise<void> => {
    if (inFlight.length >= concurrency) finish(await inFlight.shift()!);
    inFlight.push(check(storage, entry));
  };
  for await (const path of sortExternally(stripped(), { key: (p) => p, runSize: SORT_RUN, tempDir: options.tempDir })) {
    if (group?.path === path) {
      group.occurrences++;
      continue;
    }
    if (group) await start(group);
    group = { path, status: 'ok', occurrences: 1 };
  }
  if (group) await start(group);
  while (inFlight.length > 0) finish(await inFlight.shift()!);
  report.total = total;
  return report;
}

/** The entry of one distinct path, checked (a check never rejects: failures are `error` entries). */
async function check(storage: MediaStorage, entry: AuditEntry): Promise<AuditEntry> {
  const key = tryValidateKey(entry.path);
  if (!key) return { ...entry, status: 'invalid' };
  try {
    if (await storage.exists(key)) return entry;
    for (const twin of normalizationTwins(key)) {
      if (await storage.exists(twin)) return { ...entry, status: 'other-spelling', storedAs: twin };
    }
    return { ...entry, status: 'missing' };
  } catch (err) {
    return { ...entry, status: 'error', error: isMediaStorageError(err) ? `${err.code}: ${err.message}` : String(err) };
  }
}

/** A prefix that would turn invalid paths into keys, as {@link suggestStripPrefix} found it. */
export interface StripPrefixSuggestion {
  prefix: string;
  /** How many invalid paths become keys without it. */
  paths: number;
  /** Of the paths tried (up to 10), how many have an object once it is stripped. */
  found: number;
  tried: number;
}

/**
 * When invalid paths look like URLs of the files rather than keys (`/media/profile_images/a.jpg`,
 * as an app that stored its `MEDIA_URL` with each path has them), the prefix `--strip-prefix`
 * should remove. Each candidate (`/`, `/media/`, `https://host/media/`) is tried on up to 10 such
 * paths, and the one under which most objects exist wins (the longer one when none exist).
 */
export async function suggestStripPrefix(storage: MediaStorage, report: AuditReport, sample = 10): Promise<StripPrefixSuggestion | undefined> {
  const candidates = new Map<string, string[]>();
  for (const entry of report.problems) {
    if (entry.status !== 'invalid') continue;
    const match = /^((?:[a-z][a-z0-9+.-]*:\/\/[^/]+)?\/+)((?:[^/]+\/)?)/i.exec(entry.path);
    if (!match) continue;
    for (const prefix of new Set([match[1]!, match[1]! + match[2]!])) {
      const key = tryValidateKey(entry.path.slice(prefix.length));
      if (key) candidates.set(prefix, [...(candidates.get(prefix) ?? []), key]);
    }
  }
  let best: StripPrefixSuggestion | undefined;
  for (const [prefix, keys] of candidates) {
    const tried = keys.slice(0, sample);
    let found = 0;
    for (const key of tried) if (await storage.exists(key).catch(() => false)) found++;
    const better =
      !best || found > best.found || (found === best.found && (keys.length > best.paths || (keys.length === best.paths && prefix.length > best.prefix.length)));
    if (better) best = { prefix, paths: keys.length, found, tried: tried.length };
  }
  return best;
}

/** A path with its non-ASCII characters escaped and its Unicode form named, so two spellings that look alike show apart. */
function spelled(path: string): string {
  const form = path === path.normalize('NFC') ? 'NFC' : path === path.normalize('NFD') ? 'NFD' : 'mixed';
  const escaped = path.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return `"${escaped}" (${form})`;
}

function csvCell(value: string): string {
  return /[",\n\r]/.test(value) || /^[=+\-@]/.test(value) ? `"${value.replace(/"/g, '""').replace(/^([=+\-@])/, "'$1")}"` : value;
}

const TITLES: Record<Exclude<AuditStatus, 'ok'>, string> = { missing: 'MISSING', 'other-spelling': 'OTHER SPELLING', invalid: 'INVALID', error: 'ERROR' };

/** Writes an audit as it runs: `start`, then `entry` for each entry, then `end` with the report. */
export interface AuditFormatter {
  start(): string;
  /** The output for one entry (`""` when the format leaves it out: ok paths in text and JSON). */
  entry(entry: AuditEntry): string;
  end(report: AuditReport): string;
}

/** Options of {@link auditFormatter} and {@link formatAudit}. */
export interface FormatAuditOptions {
  /** CSV: every path, the ok ones too (default: only the paths with a problem, as text and JSON give). */
  all?: boolean;
}

/**
 * The streaming form of an audit's output. `text`: a line per problem as it is found (`MISSING
 * profile_images/a.jpg  (x2)`), then the counts. `json`: one object, `{ problems: [...], total,
 * distinct, counts }`, its problems written as they come. `csv`: a row per problem (per path with `all`).
 */
export function auditFormatter(format: 'text' | 'json' | 'csv', options: FormatAuditOptions = {}): AuditFormatter {
  if (format === 'csv') {
    return {
      start: () => 'path,status,occurrences,error,stored_as\n',
      entry: (e) =>
        e.status === 'ok' && !options.all
          ? ''
          : `${[csvCell(e.path), e.status, String(e.occurrences), csvCell(e.error ?? ''), csvCell(e.storedAs ?? '')].join(',')}\n`,
      end: () => '',
    };
  }
  if (format === 'json') {
    let first = true;
    return {
      start: () => '{\n  "problems": [',
      entry: (e) => {
        if (e.status === 'ok') return '';
        const line = `${first ? '' : ','}\n    ${JSON.stringify(e)}`;
        first = false;
        return line;
      },
      end: (r) => `${first ? '' : '\n  '}],\n  "total": ${r.total},\n  "distinct": ${r.distinct},\n  "counts": ${JSON.stringify(r.counts)}\n}\n`,
    };
  }
  return {
    start: () => '',
    entry: (e) => {
      if (e.status === 'ok') return '';
      const stored = e.storedAs === undefined ? '' : `  ${spelled(e.path)} is stored as ${spelled(e.storedAs)}`;
      return `${TITLES[e.status]}  ${displayName(e.path)}${e.occurrences > 1 ? `  (x${e.occurrences})` : ''}${e.error ? `  ${e.error}` : ''}${stored}\n`;
    },
    end: (r) => {
      const c = r.counts;
      const respelled = c['other-spelling'] > 0 ? `, ${c['other-spelling']} under another spelling` : '';
      return `${r.total} paths, ${r.distinct} distinct: ${c.ok} ok, ${c.missing} missing${respelled}, ${c.invalid} invalid, ${c.error} errors\n`;
    },
  };
}

/**
 * A finished report as text, JSON or CSV: {@link auditFormatter} over the problems the report
 * kept (`maxProblems`; ok paths are in no report: use `onEntry` for a CSV of every path).
 */
export function formatAudit(report: AuditReport, format: 'text' | 'json' | 'csv', options: FormatAuditOptions = {}): string {
  const formatter = auditFormatter(format, options);
  return formatter.start() + report.problems.map((e) => formatter.entry(e)).join('') + formatter.end(report);
}

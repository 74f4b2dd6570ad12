import { isMediaStorageError } from '../core/errors.js';
import { normalizationTwins, tryValidateKey } from '../core/keys.js';
import type { MediaStorage } from '../core/types.js';
import { forEachConcurrent } from './pool.js';
import { displayName } from './progress.js';

/**
 * `other-spelling`: no object under the path, but one under another Unicode spelling of it (the
 * database says `José.jpg` composed, the file is `Jose\u0301.jpg` decomposed, as macOS names
 * files). Keys are byte-exact, so the app's reads of the path miss it: rename one of the two.
 */
export type AuditStatus = 'ok' | 'missing' | 'other-spelling' | 'invalid' | 'error';

export interface AuditEntry {
  /** The path as it was stored. */
  path: string;
  status: AuditStatus;
  /** For `other-spelling`: the key the object is stored under. */
  storedAs?: string;
  /** How many times the path was listed. */
  occurrences: number;
  /** For `error`: the error code and message. */
  error?: string;
}

export interface AuditReport {
  /** Non-empty lines read. */
  total: number;
  /** Distinct paths checked. */
  distinct: number;
  counts: Record<AuditStatus, number>;
  entries: AuditEntry[];
}

export interface AuditOptions {
  concurrency?: number;
  /** Strip this prefix from each path first (e.g. a MEDIA_URL such as "/media/"). */
  stripPrefix?: string;
  onProgress?: (checked: number, distinct: number) => void;
}

/** Reads one stored path per line; blank lines are ignored, CSV-style quotes removed. */
export function parseKeyList(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim().replace(/^"(.*)"$/, '$1'))
    .filter((line) => line !== '');
}

/**
 * Checks which stored paths (say, a profile-image column exported from the database) have no
 * object behind them. Each distinct path is checked once, with bounded concurrency.
 */
export async function auditKeys(storage: MediaStorage, paths: readonly string[], options: AuditOptions = {}): Promise<AuditReport> {
  const byPath = new Map<string, AuditEntry>();
  for (const raw of paths) {
    const path = options.stripPrefix && raw.startsWith(options.stripPrefix) ? raw.slice(options.stripPrefix.length) : raw;
    const entry = byPath.get(path);
    if (entry) entry.occurrences++;
    else byPath.set(path, { path, status: 'ok', occurrences: 1 });
  }
  const entries = [...byPath.values()];
  let checked = 0;
  await forEachConcurrent(entries, options.concurrency ?? 16, async (entry) => {
    const key = tryValidateKey(entry.path);
    if (!key) {
      entry.status = 'invalid';
    } else {
      try {
        entry.status = (await storage.exists(key)) ? 'ok' : 'missing';
        for (const twin of entry.status === 'missing' ? normalizationTwins(key) : []) {
          if (!(await storage.exists(twin))) continue;
          entry.status = 'other-spelling';
          entry.storedAs = twin;
          break;
        }
      } catch (err) {
        entry.status = 'error';
        entry.error = isMediaStorageError(err) ? `${err.code}: ${err.message}` : String(err);
      }
    }
    options.onProgress?.(++checked, entries.length);
  });
  const counts: Record<AuditStatus, number> = { ok: 0, missing: 0, 'other-spelling': 0, invalid: 0, error: 0 };
  for (const entry of entries) counts[entry.status]++;
  return { total: paths.length, distinct: entries.length, counts, entries };
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
  for (const entry of report.entries) {
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
    const better = !best || found > best.found || (found === best.found && (keys.length > best.paths || (keys.length === best.paths && prefix.length > best.prefix.length)));
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

/** Options of {@link formatAudit}. */
export interface FormatAuditOptions {
  /** CSV: every path, the ok ones too (default: only the paths with a problem, as text and JSON give). */
  all?: boolean;
}

/** The report as text (problems, then counts), JSON (problems and counts) or CSV (the problems; every path with `all`). */
export function formatAudit(report: AuditReport, format: 'text' | 'json' | 'csv', options: FormatAuditOptions = {}): string {
  if (format === 'json') return `${JSON.stringify({ total: report.total, distinct: report.distinct, counts: report.counts, problems: report.entries.filter((e) => e.status !== 'ok') }, null, 2)}\n`;
  if (format === 'csv') {
    const rows = options.all ? report.entries : report.entries.filter((e) => e.status !== 'ok');
    return `path,status,occurrences,error,stored_as\n${rows.map((e) => `${[csvCell(e.path), e.status, String(e.occurrences), csvCell(e.error ?? ''), csvCell(e.storedAs ?? '')].join(',')}\n`).join('')}`;
  }
  const lines: string[] = [];
  const titles: Record<Exclude<AuditStatus, 'ok'>, string> = { missing: 'MISSING', 'other-spelling': 'STORED UNDER ANOTHER UNICODE SPELLING', invalid: 'INVALID', error: 'ERROR' };
  for (const status of ['missing', 'other-spelling', 'invalid', 'error'] as const) {
    const group = report.entries.filter((e) => e.status === status);
    if (group.length === 0) continue;
    lines.push(`${titles[status]} (${group.length}):`);
    for (const e of group) {
      const stored = e.storedAs === undefined ? '' : `  ${spelled(e.path)} is stored as ${spelled(e.storedAs)}`;
      lines.push(`  ${displayName(e.path)}${e.occurrences > 1 ? `  (x${e.occurrences})` : ''}${e.error ? `  ${e.error}` : ''}${stored}`);
    }
  }
  const c = report.counts;
  const respelled = c['other-spelling'] > 0 ? `, ${c['other-spelling']} under another spelling` : '';
  lines.push(`${report.total} paths, ${report.distinct} distinct: ${c.ok} ok, ${c.missing} missing${respelled}, ${c.invalid} invalid, ${c.error} errors`);
  return `${lines.join('\n')}\n`;
}

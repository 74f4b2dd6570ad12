import { open } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { configFromEnv, createMediaStorage, maskUrl, parseStorageUrl, storageUrlOptions, type StorageConfig } from '../config/index.js';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { backendDefinitions, registerBackend, type BackendDefinition } from '../core/definition.js';
import { isMediaStorageError } from '../core/errors.js';
import type { MediaStorage } from '../core/types.js';
import { auditFormatter, auditKeys, readKeyList, suggestStripPrefix } from './audit.js';
import { DEFAULT_PROBE_TIMEOUT_MS, formatDoctorCheck, formatDoctorVerdict, runDoctor } from './doctor.js';
import { displayName, formatBytes, ProgressReporter } from './progress.js';
import { syncStorages, type SyncEvent } from './sync.js';
import { runVariants } from './variants.js';

/** Exit codes, as the help states them. */
export const EXIT = { ok: 0, problems: 1, usage: 2, interrupted: 130 } as const;

interface OptionSpec {
  type: 'string' | 'boolean';
  /** What the value is, in the help: `URL`, `N`. */
  value?: string;
  /** The option may be given more than once. */
  multiple?: boolean;
  help: string;
}

interface CommandSpec {
  usage: string;
  summary: string;
  options: Record<string, OptionSpec>;
  /** Paragraphs after the options. */
  notes: string[];
}

const COMMON: Record<string, OptionSpec> = {
  help: { type: 'boolean', help: 'show this help' },
};

const COMMANDS: Record<'doctor' | 'sync' | 'audit' | 'variants', CommandSpec> = {
  doctor: {
    usage: 'media-storage doctor [--url URL] [--json] [--timeout SECONDS]',
    summary: 'check the configured storage end to end',
    options: {
      url: { type: 'string', value: 'URL', help: 'the storage to check (default: the environment\'s, see "Storage URLs")' },
      json: { type: 'boolean', help: 'print the report as JSON at the end instead of line by line' },
      timeout: { type: 'string', value: 'SECONDS', help: `how long each probe may take (default ${DEFAULT_PROBE_TIMEOUT_MS / 1000})` },
    },
    notes: [
      'Prints the backend and settings in effect (secrets masked), misspelled variables, then saves, reads, fetches over HTTP (status, Content-Type, CORS) and deletes a probe object, each line as soon as it is known.',
      'Exits 0 when nothing failed, 1 when a check failed.',
    ],
  },
  sync: {
    usage: 'media-storage sync --from URL --to URL [options]',
    summary: 'copy objects that are missing or different',
    options: {
      from: { type: 'string', value: 'URL', help: 'where to copy from (a storage URL, or env)' },
      to: { type: 'string', value: 'URL', help: 'where to copy to (a storage URL, or env)' },
      prefix: { type: 'string', value: 'P', help: 'only keys starting with P' },
      concurrency: { type: 'string', value: 'N', help: 'copies in flight at once (default 8)' },
      'dry-run': { type: 'boolean', help: 'list what would be copied or deleted, change nothing' },
      delete: { type: 'boolean', help: 'DESTRUCTIVE: delete objects at --to that --from does not have (try --dry-run first)' },
      checksum: { type: 'boolean', help: 'compare MD5s as well as sizes, reading source files that have none (slower)' },
      strict: { type: 'boolean', help: 'exit 1 when source objects could not be copied because no key names them' },
      quiet: { type: 'boolean', help: 'no progress lines (the summary is still printed)' },
    },
    notes: [
      'Lists both sides once and copies what is missing or different (by size, and MD5 where both sides have it), each object under exactly its name, with retries. Resumable: saves are atomic, so an interrupted run leaves nothing partial and the next run copies only what is left.',
      'Ctrl-C stops the run: the copies in flight are aborted cleanly (no partial object, no multipart upload left), the summary is printed, and the exit code is 130. A second Ctrl-C exits at once.',
      'Exits 0 when everything was copied, 1 when copies or deletes failed (listed as FAILED; tried again next run).',
    ],
  },
  audit: {
    usage: 'media-storage audit --keys FILE|- [--url URL] [options]',
    summary: 'list stored paths that have no object',
    options: {
      keys: { type: 'string', value: 'FILE', help: 'the stored paths, one a line (- reads standard input)' },
      url: { type: 'string', value: 'URL', help: "the storage to check (default: the environment's)" },
      format: { type: 'string', value: 'FORMAT', help: 'text (default), json or csv: the paths with a problem and the counts' },
      all: { type: 'boolean', help: 'csv: every path, the ok ones too' },
      concurrency: { type: 'string', value: 'N', help: 'checks in flight at once (default 16)' },
      'strip-prefix': { type: 'string', value: 'P', help: 'remove P from each path first, e.g. /media/ when the paths are URLs' },
      'fail-on-missing': { type: 'boolean', help: 'exit 1 when a path is missing, invalid or stored under another spelling (a CI check)' },
      quiet: { type: 'boolean', help: 'no progress lines' },
    },
    notes: ['Each distinct path is checked once. Exits 0 unless a check failed (1), or with --fail-on-missing a path has no object (1).'],
  },
  variants: {
    usage: 'media-storage variants --prefix P (--config FILE | --variant SPEC ...) [--url URL] [options]',
    summary: 'generate the image variants photos stored before withImages lack',
    options: {
      prefix: { type: 'string', value: 'P', help: 'only photos whose keys start with P (--prefix "" for every photo)' },
      config: { type: 'string', value: 'FILE', help: 'the module exporting your withImages options (export { variants })' },
      variant: {
        type: 'string',
        value: 'SPEC',
        multiple: true,
        help: 'NAME=WxH[,fit][,format][,q=N][,densities=1+2], e.g. avatar=64x64,cover,webp; repeatable',
      },
      url: { type: 'string', value: 'URL', help: "the storage (default: the environment's)" },
      only: { type: 'string', value: 'NAME,...', help: 'only these variants' },
      concurrency: { type: 'string', value: 'N', help: 'photos processed at once (default 4)' },
      'dry-run': { type: 'boolean', help: 'list what would be generated, store nothing' },
      force: { type: 'boolean', help: 'generate again variants that exist' },
      quiet: { type: 'boolean', help: 'no progress lines' },
    },
    notes: ['Cloudinary renders variants from delivery URLs, so there is nothing to generate there. Exits 0 when every photo was done, 1 when one failed.'],
  },
};

const COMMAND_ORDER = ['doctor', 'sync', 'audit', 'variants'] as const;
type CommandName = (typeof COMMAND_ORDER)[number];

function optionLines(options: Record<string, OptionSpec>): string[] {
  const rows = Object.entries({ ...options, ...COMMON }).map(([name, spec]) => [`  --${name}${spec.value ? ` ${spec.value}` : ''}`, spec.help] as const);
  const width = Math.max(...rows.map(([left]) => left.length)) + 2;
  return rows.map(([left, help]) => `${left.padEnd(width)}${help}`);
}

function wrap(text: string, indent = ''): string {
  const words = text.split(' ');
  const lines: string[] = [];
  let line = '';
  for (const word of words) {
    if (line && line.length + word.length + 1 > 96 - indent.length) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines.map((l) => indent + l).join('\n');
}

/** The storage URL schemes and every `?option=` each takes, from the backends' definitions (plugins' too). */
function storageUrlHelp(): string {
  const lines = ['Storage URLs (--from, --to, --url; values URL-encoded, options after ?, joined with &):'];
  for (const definition of backendDefinitions()) {
    if (!definition.url) continue;
    lines.push(`  ${definition.url.example}${definition.url.note ? ` (${definition.url.note})` : ''}`);
    for (const [name, { spec, deprecated }] of storageUrlOptions(definition))
      if (spec.help && !deprecated) lines.push(`      ${`${name} `.padEnd(22)}${spec.help}`);
  }
  lines.push(
    '  env: the storage the environment configures, in this order: MEDIA_STORAGE_URL; the django-storages',
    '       AWS_* variables (AWS_STORAGE_BUCKET_NAME...); CLOUDINARY_URL; B2_*; AZURE_STORAGE_*; else the local disk',
    '       (MEDIA_ROOT, default ./media). Misspelled variables are named (did you mean ...?).',
    '  Example: s3://media-bucket/media?endpoint=http://127.0.0.1:9000&region=us-east-1&visibility=public',
  );
  return lines.join('\n');
}

function topHelp(): string {
  const width = Math.max(...COMMAND_ORDER.map((c) => c.length)) + 4;
  return [
    'media-storage <command> [options]',
    '',
    'Commands:',
    ...COMMAND_ORDER.map((c) => `  ${c.padEnd(width)}${COMMANDS[c].summary}`),
    '',
    'Run "media-storage <command> --help" for a command\'s options. The most used:',
    ...COMMAND_ORDER.flatMap((c) => [`  ${COMMANDS[c].usage}`]),
    ...optionLines(Object.fromEntries(['delete', 'checksum', 'dry-run', 'quiet'].map((name) => [name, COMMANDS.sync.options[name]!]))).filter(
      (line) => !line.startsWith('  --help'),
    ),
    '',
    storageUrlHelp(),
    '',
    'Exit codes: 0 success; 1 problems found (a failed doctor check, failed copies, audit errors or,',
    'with --fail-on-missing, missing paths); 2 wrong usage or configuration; 130 interrupted (Ctrl-C).',
    '',
    'Plugins: --require MODULE (repeatable, before or after the command) or MEDIA_STORAGE_PLUGINS=MODULE,MODULE load',
    'backend plugins first: a path (./storage-plugin.js) or a package name, resolved from the current folder. A module',
    'exporting a backend definition (default or `backend`) is registered; one may also call registerBackend itself.',
    '',
    'Options: --help, -h (this help), --version, -v. Docs: the docs/ folder of the package (node_modules/media-storage/docs).',
    '',
  ].join('\n');
}

function commandHelp(name: CommandName): string {
  const spec = COMMANDS[name];
  return [
    `${spec.usage}`,
    '',
    `${spec.summary[0]!.toUpperCase()}${spec.summary.slice(1)}.`,
    '',
    'Options:',
    ...optionLines(spec.options),
    '',
    ...spec.notes.map((n) => `${wrap(n)}\n`),
    'Storage URLs and exit codes: media-storage --help',
    '',
  ].join('\n');
}

/** The package's version, from its package.json (found from this file, in src/ or dist/). */
export function packageVersion(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'media-storage' && pkg.version) return pkg.version;
    } catch {
      // not here: one folder up
    }
    dir = path.dirname(dir);
  }
  return 'unknown';
}

/** A usage mistake: exit 2, with the command's help pointed to. */
class UsageError extends Error {}

interface Io {
  stdout: { write(s: string): unknown; isTTY?: boolean };
  stderr: { write(s: string): unknown; isTTY?: boolean };
  stdin: AsyncIterable<unknown>;
  env: NodeJS.ProcessEnv;
  /**
   * Subscribes to interrupts (Ctrl-C); returns the unsubscribe. Default: SIGINT and SIGTERM of
   * this process.
   */
  onInterrupt?: (handler: () => void) => () => void;
  /** Leaves at once (a second Ctrl-C). Default: process.exit. */
  exit?: (code: number) => void;
}

function processInterrupts(handler: () => void): () => void {
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}

type Role = 'source' | 'destination' | 'checked';

async function storageFrom(url: string | undefined, io: Io, label: string, role: Role): Promise<MediaStorage> {
  let config: StorageConfig;
  if (url === undefined || url === 'env') {
    config = configFromEnv(io.env, { warn: (message) => io.stderr.write(`WARNING ${message}\n`) });
  } else {
    config = parseStorageUrl(url, label);
  }
  // The ephemeral-disk warning is about writing uploads there; a disk that is only read from
  // (the old media folder being copied off) needs none.
  if (config.backend === 'local' && role !== 'destination') config = { ...config, warnOnEphemeralDisk: false };
  return createMediaStorage(config);
}

/** The key list file, opened before the first check (a wrong path fails at once), read as it is checked. */
async function openKeyList(file: string): Promise<AsyncIterable<unknown>> {
  const handle = await open(file, 'r');
  return handle.createReadStream();
}

/** The line `sync` prints for an event: what a dry run would do, and every problem; nothing for a plain copy or delete. */
function syncEventLine(event: SyncEvent, dry: boolean): string | undefined {
  if (event.type === 'copied') return dry ? `would copy ${displayName(event.key)}` : undefined;
  if (event.type === 'deleted') return dry ? `would delete ${displayName(event.key)}` : undefined;
  if (event.type === 'failed') return `FAILED ${displayName(event.failure.key)}: ${event.failure.code} ${event.failure.message}`;
  if (event.type === 'not-copied') return `NOT COPIED ${displayName(event.object.name)}: ${event.object.message}`;
  return `WARNING ${displayName(event.warning.key)}: ${event.warning.message}`;
}

function positiveInt(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${name} must be a whole number of at least 1 (got ${JSON.stringify(value)})`);
  return n;
}

function positiveSeconds(value: string | undefined, name: string, fallbackMs: number): number {
  if (value === undefined) return fallbackMs;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${name} must be a number of seconds above 0 (got ${JSON.stringify(value)})`);
  return Math.round(n * 1000);
}

/** parseArgs for one command, with its errors turned into plain words. */
function parseCommand(name: CommandName, args: string[]): Record<string, string | boolean | undefined> {
  const spec = COMMANDS[name];
  const options = Object.fromEntries(
    Object.entries({ ...spec.options, ...COMMON }).map(([option, { type, multiple }]) => [option, { type, ...(multiple ? { multiple } : {}) }]),
  );
  try {
    return parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false }).values as Record<
      string,
      string | boolean | undefined
    >;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const missing = /Option '--([\w-]+)(?: <value>)?' argument (?:missing|is ambiguous)/.exec(message);
    if (missing) {
      const option = missing[1]!;
      const hint =
        option === 'from' || option === 'to' || option === 'url'
          ? ` (a variable such as "$MEDIA_STORAGE_URL" that is not set? --${option} env means the storage the environment configures)`
          : '';
      throw new UsageError(`--${option} needs a value${hint}`);
    }
    const unknown = /Unknown option '([^']+)'/.exec(message);
    if (unknown)
      throw new UsageError(
        `unknown option ${unknown[1]} for ${name}; its options: ${Object.keys(spec.options)
          .map((o) => `--${o}`)
          .join(', ')}`,
      );
    const positional = /Unexpected argument '([^']+)'/.exec(message);
    if (positional) throw new UsageError(`unexpected argument ${JSON.stringify(positional[1])}: ${name} takes only options (a value with spaces needs quotes)`);
    throw new UsageError(message);
  }
}

/** A --from/--to/--url value that was typed but is empty: the shell expanded an unset variable. */
function requireStorageArg(value: string | boolean | undefined, option: string, what: string): string {
  if (value === undefined) throw new UsageError(`sync needs --${option}: ${what} (a storage URL, or env for the storage the environment configures)`);
  const text = String(value);
  if (text.trim() === '')
    throw new UsageError(
      `--${option} is empty (was it a variable such as "$MEDIA_STORAGE_URL" that is not set here?). Give a storage URL, or --${option} env for the storage the environment configures (MEDIA_STORAGE_URL, AWS_*, CLOUDINARY_URL, B2_*)`,
    );
  return text;
}

async function doctor(values: Record<string, string | boolean | undefined>, io: Io): Promise<number> {
  const json = values.json === true;
  const report = await runDoctor({
    url: values.url as string | undefined,
    env: io.env,
    timeoutMs: positiveSeconds(values.timeout as string | undefined, '--timeout', DEFAULT_PROBE_TIMEOUT_MS),
    onCheck: json ? undefined : (check) => io.stdout.write(formatDoctorCheck(check)),
  });
  io.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : formatDoctorVerdict(report));
  return report.healthy ? EXIT.ok : EXIT.problems;
}

async function sync(values: Record<string, string | boolean | undefined>, io: Io): Promise<number> {
  const fromUrl = requireStorageArg(values.from, 'from', 'where to copy from');
  const toUrl = requireStorageArg(values.to, 'to', 'where to copy to');
  const concurrency = positiveInt(values.concurrency as string | undefined, '--concurrency', 8);
  const from = await storageFrom(fromUrl, io, '--from', 'source');
  const to = await storageFrom(toUrl, io, '--to', 'destination');
  const progress = new ProgressReporter(io.stderr, !values.quiet);
  const dry = values['dry-run'] === true;
  io.stderr.write(
    `${dry ? '[dry run] ' : ''}sync ${maskUrl(fromUrl)} -> ${maskUrl(toUrl)}${values.delete && !dry ? ' (--delete: objects only at the destination are deleted)' : ''}\n`,
  );

  const interrupt = new AbortController();
  const unsubscribe = (io.onInterrupt ?? processInterrupts)(() => {
    if (interrupt.signal.aborted) {
      io.stderr.write(
        '\nInterrupted again: leaving now. A multipart upload may be left in an S3 bucket (a lifecycle rule "AbortIncompleteMultipartUpload" removes it).\n',
      );
      (io.exit ?? process.exit)(EXIT.interrupted);
      return;
    }
    io.stderr.write('\nInterrupted: aborting the copies in flight (nothing partial is kept), then the summary. Ctrl-C again to leave at once.\n');
    interrupt.abort(new Error('interrupted'));
  });
  let report;
  try {
    report = await syncStorages(from, to, {
      prefix: values.prefix as string | undefined,
      concurrency,
      dryRun: dry,
      delete: values.delete === true,
      checksum: values.checksum === true,
      signal: interrupt.signal,
      onProgress: (p) => progress.update({ label: 'checked', done: p.scanned, copied: p.copied, bytes: p.bytes, failed: p.failed }),
      // Printed as they happen: a run over millions of objects keeps none of them.
      onEvent: (event) => {
        const line = syncEventLine(event, dry);
        if (line) io.stdout.write(`${line}\n`);
      },
    });
  } finally {
    unsubscribe();
  }
  progress.finish({ label: 'checked', done: report.scanned, copied: report.copied, bytes: report.bytes, failed: report.failed });
  for (const key of report.interruptedKeys) io.stdout.write(`INTERRUPTED ${displayName(key)}: aborted, nothing kept; copied by the next run\n`);
  const seconds = report.durationMs / 1000;
  const notCopied = report.notCopiedCount > 0 ? `, ${report.notCopiedCount} not copied (no key names them; rename them at the source)` : '';
  const markers = report.folderMarkers > 0 ? `, ${report.folderMarkers} folder marker${report.folderMarkers === 1 ? '' : 's'} ignored` : '';
  const interrupted = report.interrupted ? `, ${report.interruptedKeys.length} interrupted` : '';
  const deleted = `, ${report.deleted} ${dry ? 'to delete' : 'deleted'}${report.interrupted && values.delete ? ' (none after the interruption)' : ''}`;
  io.stdout.write(
    `${report.interrupted ? 'INTERRUPTED after ' : ''}${report.scanned} objects: ${report.copied} ${dry ? 'to copy' : 'copied'} (${formatBytes(report.bytes)}), ${report.skipped} already there${deleted}, ${report.failed} failed${interrupted}${notCopied}${markers}, in ${seconds.toFixed(1)} s\n`,
  );
  if (report.interrupted) {
    io.stdout.write('Run the same command again to copy the rest.\n');
    return EXIT.interrupted;
  }
  return report.failed > 0 || (values.strict && report.notCopiedCount > 0) ? EXIT.problems : EXIT.ok;
}

async function audit(values: Record<string, string | boolean | undefined>, io: Io): Promise<number> {
  if (values.keys === undefined || values.keys === '') throw new UsageError('audit needs --keys FILE (or --keys - for standard input)');
  const format = (values.format ?? 'text') as 'text' | 'json' | 'csv';
  if (!['text', 'json', 'csv'].includes(format)) throw new UsageError(`--format must be text, json or csv (got ${JSON.stringify(values.format)})`);
  const concurrency = positiveInt(values.concurrency as string | undefined, '--concurrency', 16);
  // Read a line at a time and written as checked: a list of millions of paths is never held whole.
  const storage = await storageFrom(values.url as string | undefined, io, '--url', 'checked');
  const input = values.keys === '-' ? io.stdin : await openKeyList(String(values.keys));
  const progress = new ProgressReporter(io.stderr, !values.quiet);
  const output = auditFormatter(format, { all: values.all === true });
  io.stdout.write(output.start());
  const report = await auditKeys(storage, readKeyList(input), {
    concurrency,
    stripPrefix: values['strip-prefix'] as string | undefined,
    onProgress: (done, total) => progress.update({ label: 'checked', done, total }),
    onEntry: (entry) => {
      const text = output.entry(entry);
      if (text) io.stdout.write(text);
    },
  });
  progress.finish({ label: 'checked', done: report.total, total: report.total });
  io.stdout.write(output.end(report));
  if (report.counts.invalid > 0) {
    const hint = await suggestStripPrefix(storage, report);
    if (hint) {
      const found = hint.tried > 0 ? ` (${hint.found} of ${hint.tried} tried exist once it is removed)` : '';
      io.stderr.write(
        `HINT ${hint.paths} invalid path${hint.paths === 1 ? '' : 's'} start${hint.paths === 1 ? 's' : ''} with ${JSON.stringify(hint.prefix)}: they look like URLs of the files, not keys${found}. Run again with --strip-prefix ${hint.prefix}\n`,
      );
    }
  }
  // A path stored under another spelling is as good as missing for the app, which reads the path.
  const missing = report.counts.missing + report.counts['other-spelling'] + report.counts.invalid;
  return report.counts.error > 0 || (values['fail-on-missing'] && missing > 0) ? EXIT.problems : EXIT.ok;
}

type Values = Record<string, string | boolean | undefined>;

/** Each command, given its checked options (and the arguments as typed, for variants' own parser). */
const RUN: Record<CommandName, (values: Values, io: Io, args: string[]) => Promise<number>> = {
  doctor,
  sync,
  audit,
  // It writes the variants: a local disk there is a destination.
  variants: (_values, io, args) => runVariants(args, io, (url) => storageFrom(url, io, '--url', 'destination')),
};

/** `--require MODULE` (or `--require=MODULE`) anywhere in the arguments: the modules, and the other arguments. */
function extractRequires(argv: string[]): { modules: string[]; args: string[] } {
  const modules: string[] = [];
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--require') {
      const value = argv[++i];
      if (value === undefined || value === '') throw new UsageError('--require needs a module: a path (./storage-plugin.js) or a package name');
      modules.push(value);
    } else if (arg.startsWith('--require=')) modules.push(arg.slice('--require='.length));
    else args.push(arg);
  }
  return { modules, args };
}

function isDefinition(value: unknown): value is BackendDefinition {
  const d = value as Partial<BackendDefinition> | null;
  return !!d && typeof d === 'object' && typeof d.name === 'string' && Array.isArray(d.schemes) && typeof d.load === 'function';
}

/**
 * Loads backend plugins, as Node's own `--require` resolves them: a path from the current folder,
 * else a package from its node_modules. A module exporting a definition (default or `backend`)
 * gets it registered; one that calls registerBackend itself needs nothing more.
 */
export async function loadPlugins(modules: readonly string[], cwd = process.cwd()): Promise<void> {
  const require = createRequire(path.join(cwd, 'noop.js'));
  for (const spec of modules) {
    let target: string;
    if (/^\.{0,2}\//.test(spec) || path.isAbsolute(spec)) target = pathToFileURL(path.resolve(cwd, spec)).href;
    else {
      try {
        target = pathToFileURL(require.resolve(spec)).href;
      } catch {
        target = spec;
      }
    }
    let mod: Record<string, unknown>;
    try {
      mod = (await import(target)) as Record<string, unknown>;
    } catch (err) {
      throw new UsageError(`the plugin ${JSON.stringify(spec)} could not be loaded: ${err instanceof Error ? err.message : String(err)}`);
    }
    for (const exported of [mod.default, mod.backend]) if (isDefinition(exported)) registerBackend(exported);
  }
}

/** Runs the CLI; resolves to the exit code (0 ok, 1 problems found, 2 usage or configuration, 130 interrupted). */
export async function main(
  argvGiven: string[],
  io: Io = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env },
): Promise<number> {
  let argv: string[];
  try {
    const { modules, args } = extractRequires(argvGiven);
    argv = args;
    const fromEnv = (io.env.MEDIA_STORAGE_PLUGINS ?? '')
      .split(',')
      .map((m) => m.trim())
      .filter(Boolean);
    await loadPlugins([...fromEnv, ...modules]);
  } catch (err) {
    io.stderr.write(`media-storage: ${isMediaStorageError(err) ? `${err.code}: ` : ''}${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT.usage;
  }
  const [command, ...rest] = argv;
  try {
    if (command === undefined) {
      io.stderr.write(topHelp());
      return EXIT.usage;
    }
    if (command === 'help' || command === '--help' || command === '-h') {
      const topic = rest[0] as CommandName | undefined;
      io.stdout.write(topic && COMMAND_ORDER.includes(topic) ? commandHelp(topic) : topHelp());
      return EXIT.ok;
    }
    if (command === '--version' || command === '-v' || command === 'version') {
      io.stdout.write(`${packageVersion()}\n`);
      return EXIT.ok;
    }
    if (!COMMAND_ORDER.includes(command as CommandName)) {
      io.stderr.write(`Unknown command "${command}".\n\n${topHelp()}`);
      return EXIT.usage;
    }
    const name = command as CommandName;
    if (rest.includes('--version') || rest.includes('-v')) {
      io.stdout.write(`${packageVersion()}\n`);
      return EXIT.ok;
    }
    const values = parseCommand(name, rest);
    if (values.help) {
      io.stdout.write(commandHelp(name));
      return EXIT.ok;
    }
    return await RUN[name](values, io, rest);
  } catch (err) {
    const usage = err instanceof UsageError;
    io.stderr.write(`media-storage ${command}: ${isMediaStorageError(err) ? `${err.code}: ` : ''}${err instanceof Error ? err.message : String(err)}\n`);
    if (usage) io.stderr.write(`See: media-storage ${command} --help\n`);
    return EXIT.usage;
  }
}

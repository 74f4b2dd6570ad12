import { open } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { configFromEnv, createMediaStorage, maskUrl, parseStorageUrl } from '../config/index.js';
import { isMediaStorageError } from '../core/errors.js';
import { auditFormatter, auditKeys, readKeyList } from './audit.js';
import { formatDoctor, runDoctor } from './doctor.js';
import { displayName, formatBytes, ProgressReporter } from './progress.js';
import { syncStorages, type SyncEvent } from './sync.js';
import { runVariants, VARIANTS_USAGE } from './variants.js';

const USAGE = `media-storage <command> [options]

Commands:
  doctor [--url URL]                 check the configured storage end to end
  sync --from URL --to URL           copy objects that are missing or different
       [--prefix P] [--concurrency N] [--dry-run] [--delete] [--checksum] [--strict] [--quiet]
  audit --keys FILE|- [--url URL]    list stored paths that have no object
       [--format text|json|csv] [--concurrency N] [--strip-prefix P] [--fail-on-missing]
${VARIANTS_USAGE}

Storage URLs: file:///var/app/media, s3://bucket/prefix?region=..., cloudinary://key:secret@cloud,
b2://keyId:key@bucket/prefix, azure://container/prefix (with AZURE_STORAGE_CONNECTION_STRING),
memory://, or "env" for the environment's configuration
(MEDIA_STORAGE_URL, AWS_*, CLOUDINARY_URL, B2_*, AZURE_STORAGE_*, else ./media).
`;

interface Io {
  stdout: { write(s: string): unknown; isTTY?: boolean };
  stderr: { write(s: string): unknown; isTTY?: boolean };
  stdin: AsyncIterable<unknown>;
  env: NodeJS.ProcessEnv;
}

function storageFrom(url: string | undefined, io: Io, label: string) {
  if (!url || url === 'env') return createMediaStorage(configFromEnv(io.env));
  return createMediaStorage(parseStorageUrl(url, label));
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
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a whole number of at least 1`);
  return n;
}

/** Runs the CLI; resolves to the exit code. */
export async function main(argv: string[], io: Io = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env }): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (!command || command === 'help' || command === '--help' || command === '-h') {
      io.stdout.write(USAGE);
      return command ? 0 : 2;
    }
    if (command === 'doctor') {
      const { values } = parseArgs({ args: rest, options: { url: { type: 'string' }, json: { type: 'boolean' } } });
      const report = await runDoctor({ url: values.url, env: io.env });
      io.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatDoctor(report));
      return report.healthy ? 0 : 1;
    }
    if (command === 'sync') {
      const { values } = parseArgs({
        args: rest,
        options: {
          from: { type: 'string' },
          to: { type: 'string' },
          prefix: { type: 'string' },
          concurrency: { type: 'string' },
          'dry-run': { type: 'boolean' },
          delete: { type: 'boolean' },
          checksum: { type: 'boolean' },
          strict: { type: 'boolean' },
          quiet: { type: 'boolean' },
        },
      });
      if (!values.from || !values.to) throw new Error('sync needs --from and --to');
      const from = await storageFrom(values.from, io, '--from');
      const to = await storageFrom(values.to, io, '--to');
      const progress = new ProgressReporter(io.stderr, !values.quiet);
      const dry = !!values['dry-run'];
      io.stderr.write(`${dry ? '[dry run] ' : ''}sync ${maskUrl(values.from)} -> ${maskUrl(values.to)}\n`);
      const report = await syncStorages(from, to, {
        prefix: values.prefix,
        concurrency: positiveInt(values.concurrency, '--concurrency', 8),
        dryRun: dry,
        delete: !!values.delete,
        checksum: !!values.checksum,
        onProgress: (p) => progress.update({ label: dry ? 'checked' : 'synced', done: p.scanned, bytes: p.bytes, failed: p.failed }),
        // Printed as they happen: a run over millions of objects keeps none of them.
        onEvent: (event) => {
          const line = syncEventLine(event, dry);
          if (line) io.stdout.write(`${line}\n`);
        },
      });
      progress.finish({ label: dry ? 'checked' : 'synced', done: report.scanned, bytes: report.bytes, failed: report.failed });
      const seconds = report.durationMs / 1000;
      const notCopied = report.notCopiedCount > 0 ? `, ${report.notCopiedCount} not copied (no key names them; rename them at the source)` : '';
      const markers = report.folderMarkers > 0 ? `, ${report.folderMarkers} folder marker${report.folderMarkers === 1 ? '' : 's'} ignored` : '';
      io.stdout.write(
        `${report.scanned} objects: ${report.copied} ${dry ? 'to copy' : 'copied'} (${formatBytes(report.bytes)}), ${report.skipped} already there, ${report.deleted} ${dry ? 'to delete' : 'deleted'}, ${report.failed} failed${notCopied}${markers}, in ${seconds.toFixed(1)} s\n`,
      );
      return report.failed > 0 || (values.strict && report.notCopiedCount > 0) ? 1 : 0;
    }
    if (command === 'variants') return await runVariants(rest, io, (url) => storageFrom(url, io, '--url'));
    if (command === 'audit') {
      const { values } = parseArgs({
        args: rest,
        options: {
          keys: { type: 'string' },
          url: { type: 'string' },
          format: { type: 'string' },
          concurrency: { type: 'string' },
          'strip-prefix': { type: 'string' },
          'fail-on-missing': { type: 'boolean' },
          quiet: { type: 'boolean' },
        },
      });
      if (!values.keys) throw new Error('audit needs --keys FILE (or --keys - for standard input)');
      const format = (values.format ?? 'text') as 'text' | 'json' | 'csv';
      if (!['text', 'json', 'csv'].includes(format)) throw new Error('--format must be text, json or csv');
      // Read a line at a time and written as checked: a list of millions of paths is never held whole.
      const storage = await storageFrom(values.url, io, '--url');
      const input = values.keys === '-' ? io.stdin : await openKeyList(values.keys);
      const progress = new ProgressReporter(io.stderr, !values.quiet);
      const output = auditFormatter(format);
      io.stdout.write(output.start());
      const report = await auditKeys(storage, readKeyList(input), {
        concurrency: positiveInt(values.concurrency, '--concurrency', 16),
        stripPrefix: values['strip-prefix'],
        onProgress: (done, total) => progress.update({ label: 'checked', done, total }),
        onEntry: (entry) => {
          const text = output.entry(entry);
          if (text) io.stdout.write(text);
        },
      });
      progress.finish({ label: 'checked', done: report.total, total: report.total });
      io.stdout.write(output.end(report));
      // A path stored under another spelling is as good as missing for the app, which reads the path.
      return report.counts.error > 0 || (values['fail-on-missing'] && report.counts.missing + report.counts['other-spelling'] + report.counts.invalid > 0) ? 1 : 0;
    }
    io.stderr.write(`Unknown command "${command}".\n\n${USAGE}`);
    return 2;
  } catch (err) {
    io.stderr.write(`media-storage ${command}: ${isMediaStorageError(err) ? `${err.code}: ` : ''}${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
}

/**
 * `media-storage variants`: generates the image variants photos stored before `withImages` lack.
 * The variants come from the app's own module (`--config`, the same object it gives withImages)
 * or from `--variant` specs, so the keys the CLI writes are the keys the app asks for.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { MediaStorageError } from '../core/errors.js';
import type { MediaStorage } from '../core/types.js';
import { backfillVariants } from '../images/backfill.js';
import { withImages, type ImageOptions } from '../images/layer.js';
import type { VariantDefinition } from '../images/variants.js';
import { formatBytes, ProgressReporter } from './progress.js';

const FITS = new Set(['cover', 'contain', 'inside', 'fill']);
const FORMATS = new Set(['webp', 'avif', 'jpeg', 'png']);

function usage(message: string): Error {
  return new Error(`variants: ${message}`);
}

/** `avatar=64x64,cover,webp,q=80,densities=1+2` → `['avatar', { width: 64, height: 64, ... }]`. */
export function parseVariantSpec(spec: string): [string, VariantDefinition] {
  const eq = spec.indexOf('=');
  if (eq <= 0) throw usage(`--variant ${JSON.stringify(spec)}: expected NAME=WIDTHxHEIGHT[,options], e.g. avatar=64x64,cover,webp,densities=1+2`);
  const name = spec.slice(0, eq);
  const [size, ...rest] = spec.slice(eq + 1).split(',');
  const m = /^(\d*)x(\d*)$/.exec(size ?? '');
  if (!m || (m[1] === '' && m[2] === '')) throw usage(`--variant ${JSON.stringify(spec)}: the size is WIDTHxHEIGHT, WIDTHx or xHEIGHT`);
  const definition: VariantDefinition & Record<string, unknown> = {};
  if (m[1]) definition.width = Number(m[1]);
  if (m[2]) definition.height = Number(m[2]);
  for (const option of rest) {
    const [key, value] = option.includes('=') ? (option.split('=', 2) as [string, string]) : [option, undefined];
    if (value === undefined && FITS.has(key)) definition.fit = key as VariantDefinition['fit'];
    else if (value === undefined && FORMATS.has(key)) definition.format = key as VariantDefinition['format'];
    else if ((key === 'q' || key === 'quality') && value !== undefined) definition.quality = Number(value);
    else if (key === 'densities' && value !== undefined) definition.densities = value.split('+').map(Number);
    else if (key === 'position' && value !== undefined) definition.position = value as VariantDefinition['position'];
    else throw usage(`--variant ${JSON.stringify(spec)}: unknown option ${JSON.stringify(option)}`);
  }
  return [name, definition];
}

/** The image options of an app module: its `variants` export, or a default export holding `variants` (or being them). */
export async function loadImageOptions(file: string): Promise<ImageOptions> {
  const mod = (await import(pathToFileURL(path.resolve(file)).href)) as Record<string, unknown>;
  const candidate = (mod.imageOptions ?? mod.default ?? mod) as Record<string, unknown>;
  const options = (
    typeof candidate === 'object' && candidate !== null && 'variants' in candidate ? candidate : { variants: mod.variants ?? candidate }
  ) as ImageOptions;
  if (!options.variants || typeof options.variants !== 'object' || Object.keys(options.variants).length === 0) {
    throw usage(`${file} declares no variants: export { variants } or export default { variants } (the options given to withImages)`);
  }
  return options;
}

interface Io {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown; isTTY?: boolean };
}

/** Runs `media-storage variants`; resolves to the exit code (1 when a photo failed). */
export async function runVariants(args: string[], io: Io, open: (url: string | undefined) => Promise<MediaStorage>): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      url: { type: 'string' },
      prefix: { type: 'string' },
      config: { type: 'string' },
      variant: { type: 'string', multiple: true },
      only: { type: 'string' },
      concurrency: { type: 'string' },
      'dry-run': { type: 'boolean' },
      force: { type: 'boolean' },
      quiet: { type: 'boolean' },
    },
  });
  if (values.prefix === undefined) throw usage('--prefix is required (use --prefix "" for every photo)');
  if (!values.config && !values.variant?.length)
    throw usage('say which variants: --config FILE (the module with your withImages options) or --variant NAME=WxH,...');
  const options: ImageOptions = values.config ? await loadImageOptions(values.config) : {};
  if (values.variant?.length) options.variants = { ...options.variants, ...Object.fromEntries(values.variant.map(parseVariantSpec)) };
  const concurrency = values.concurrency === undefined ? 4 : Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw usage('--concurrency must be a whole number of at least 1');
  const images = withImages(await open(values.url), options);
  const only = values.only?.split(',').filter(Boolean);
  const dry = !!values['dry-run'];
  if (images.delivery === 'cloudinary') {
    io.stdout.write('Cloudinary renders variants from delivery URLs: nothing to generate or store.\n');
    return 0;
  }
  const progress = new ProgressReporter(io.stderr, !values.quiet);
  io.stderr.write(`${dry ? '[dry run] ' : ''}variants ${(only ?? [...images.variants.keys()]).join(', ')} of photos under ${JSON.stringify(values.prefix)}\n`);
  const report = await backfillVariants(images, {
    prefix: values.prefix,
    variants: only,
    concurrency,
    dryRun: dry,
    force: !!values.force,
    onProgress: (p) => progress.update({ label: 'photos', done: p.scanned, bytes: p.bytes, failed: p.failed }),
  }).catch((err: unknown) => {
    throw err instanceof MediaStorageError ? err : usage(String(err));
  });
  progress.finish({ label: 'photos', done: report.scanned, bytes: report.bytes, failed: report.failed });
  if (dry) for (const key of report.generatedKeys) io.stdout.write(`would generate ${key}\n`);
  for (const n of report.notImageKeys) io.stdout.write(`NOT AN IMAGE ${n.key}: ${n.message}\n`);
  for (const f of report.failures) io.stdout.write(`FAILED ${f.key}: ${f.code} ${f.message}\n`);
  io.stdout.write(
    `${report.scanned} photos: ${report.generated} variants ${dry ? 'to generate' : `generated (${formatBytes(report.bytes)})`}, ${report.complete} already complete, ${report.notImages} not images, ${report.failed} failed, in ${(report.durationMs / 1000).toFixed(1)} s\n`,
  );
  return report.failed > 0 ? 1 : 0;
}

import { backendDefinitions } from './definition.js';

/**
 * Platforms whose local disk is wiped on every deploy or restart, recognised by an environment
 * variable they set in every running instance.
 */
const EPHEMERAL_PLATFORMS: ReadonlyArray<readonly [variable: string, platform: string]> = [
  ['RENDER', 'Render'],
  ['DYNO', 'Heroku'],
  ['FLY_APP_NAME', 'Fly.io'],
  ['RAILWAY_ENVIRONMENT', 'Railway'],
  ['RAILWAY_ENVIRONMENT_NAME', 'Railway'],
  ['K_SERVICE', 'Google Cloud Run'],
  ['VERCEL', 'Vercel'],
  ['NETLIFY', 'Netlify'],
  ['AWS_LAMBDA_FUNCTION_NAME', 'AWS Lambda'],
  ['KOYEB_APP_NAME', 'Koyeb'],
  ['WEBSITE_INSTANCE_ID', 'Azure App Service'],
];

/** The name of the ephemeral platform this process runs on, or `undefined`. */
export function detectEphemeralPlatform(env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const [variable, platform] of EPHEMERAL_PLATFORMS) if (env[variable]) return platform;
  return undefined;
}

/** True when running in production on a platform whose disk does not survive a deploy. */
export function isEphemeralProduction(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.NODE_ENV !== 'production') return undefined;
  return detectEphemeralPlatform(env);
}

/**
 * The durable storages one can switch to, from the registered backends' definitions: their URL
 * forms and variables (`s3://bucket/prefix ...; or AWS_STORAGE_BUCKET_NAME ...`).
 */
export function durableStorageHint(): string {
  const durable = backendDefinitions().filter((d) => (d.durability ?? 'service') === 'service');
  const urls = durable.flatMap((d) => (d.url ? [d.url.example] : []));
  const variables = durable.flatMap((d) => {
    const first = Object.values(d.options).flatMap((spec) => (spec.required ? (spec.env ?? []) : []))[0] ?? d.env?.variables?.[0];
    return d.env && first ? [first] : [];
  });
  if (urls.length === 0) return 'a storage URL such as s3://bucket';
  return `${urls.join(', ')}${variables.length > 0 ? `, or the variables ${variables.join(', ')}...` : ''}`;
}

export function ephemeralDiskMessage(platform: string, root: string): string {
  return (
    `media-storage: files are being saved to the local disk (${root}) on ${platform}, whose disk is wiped at every deploy or restart. ` +
    `Uploaded files will vanish while your database still points at them. Use durable storage instead: set MEDIA_STORAGE_URL (${durableStorageHint()}). ` +
    'Pass warnOnEphemeralDisk: false to silence this warning.'
  );
}

let warned = false;

/** Emits the ephemeral-disk warning once per process. */
export function warnEphemeralDiskOnce(root: string, env: NodeJS.ProcessEnv = process.env): boolean {
  if (warned) return false;
  const platform = isEphemeralProduction(env);
  if (!platform) return false;
  warned = true;
  process.emitWarning(ephemeralDiskMessage(platform, root), { code: 'MEDIA_STORAGE_EPHEMERAL_DISK' });
  return true;
}

/** For tests: forget that the warning was emitted. */
export function resetEphemeralWarning(): void {
  warned = false;
}

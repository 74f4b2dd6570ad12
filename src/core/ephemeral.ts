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

export function ephemeralDiskMessage(platform: string, root: string): string {
  return (
    `media-storage: files are being saved to the local disk (${root}) on ${platform}, whose disk is wiped at every deploy or restart. ` +
    'Uploaded files will vanish while your database still points at them. Use durable storage instead: set MEDIA_STORAGE_URL ' +
    '(s3://bucket, cloudinary://key:secret@cloud, b2://keyId:key@bucket) or the AWS_*, CLOUDINARY_URL or B2_* variables. ' +
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

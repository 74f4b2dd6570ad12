/**
 * Misspelled configuration variables. `configFromEnv` reads a fixed set of names; a variable set
 * under a near miss (`MEDIA_STORAGE_URI`, `CLOUDNARY_URL`, `AWS_S3_ENDPOINT`) is otherwise ignored
 * in silence, and the app runs on the local disk or on amazonaws.com instead of what was meant.
 */
import { backendDefinitions, type BackendDefinition } from '../core/definition.js';
import { registerBuiltinBackends } from './backends.js';

/** Every variable a backend reads: its options' own and the others its env spec names. */
export function envVariablesOf(definition: BackendDefinition): string[] {
  const own = Object.values(definition.options).flatMap((spec) => spec.env ?? []);
  return definition.env ? [...new Set([...own, ...(definition.env.variables ?? [])])] : [];
}

/** Every variable `configFromEnv` reads: MEDIA_STORAGE_URL and each registered backend's (its definition's). */
export function configEnvNames(): string[] {
  registerBuiltinBackends();
  return ['MEDIA_STORAGE_URL', 'MEDIA_STORAGE_PLUGINS', ...backendDefinitions().flatMap(envVariablesOf)];
}

/** The variables `configFromEnv` reads for the built-in backends (see {@link configEnvNames} for plugins' too). */
export const CONFIG_ENV_NAMES: readonly string[] = Object.freeze(configEnvNames());

/**
 * Variables that other software reads under these prefixes (the AWS SDK, the Cloudinary SDK,
 * Backblaze's tools): set on purpose, never typos, even when they look close to one of ours.
 */
const OTHER_SOFTWARE = new Set([
  // The Azure CLI's and SDK samples' own.
  'AZURE_STORAGE_ACCOUNT',
  'AZURE_STORAGE_KEY',
  'AZURE_STORAGE_SAS_TOKEN',
  'AWS_PROFILE',
  'AWS_ENDPOINT_URL',
  'AWS_ENDPOINT_URL_S3',
  'AWS_CONFIG_FILE',
  'AWS_SHARED_CREDENTIALS_FILE',
  'AWS_ROLE_ARN',
  'AWS_ROLE_SESSION_NAME',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
  'AWS_CA_BUNDLE',
  'AWS_MAX_ATTEMPTS',
  'AWS_RETRY_MODE',
  'AWS_USE_FIPS_ENDPOINT',
  'AWS_USE_DUALSTACK_ENDPOINT',
  'AWS_REQUEST_CHECKSUM_CALCULATION',
  'AWS_RESPONSE_CHECKSUM_VALIDATION',
  'AWS_SDK_LOAD_CONFIG',
  'AWS_EXECUTION_ENV',
  'AWS_LAMBDA_FUNCTION_NAME',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN',
  'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED',
  'CLOUDINARY_ACCOUNT_URL',
  'CLOUDINARY_API_PROXY',
]);

/**
 * Names people reach for that are not ours, and the one meant: other libraries' spellings
 * (Laravel's AWS_BUCKET, the Cloudinary SDK's split variables, Backblaze's CLI).
 */
const KNOWN_MISSES: Record<string, string> = {
  AWS_BUCKET: 'AWS_STORAGE_BUCKET_NAME',
  AWS_BUCKET_NAME: 'AWS_STORAGE_BUCKET_NAME',
  AWS_S3_BUCKET: 'AWS_STORAGE_BUCKET_NAME',
  AWS_S3_BUCKET_NAME: 'AWS_STORAGE_BUCKET_NAME',
  S3_BUCKET: 'AWS_STORAGE_BUCKET_NAME',
  S3_BUCKET_NAME: 'AWS_STORAGE_BUCKET_NAME',
  AWS_S3_ENDPOINT: 'AWS_S3_ENDPOINT_URL',
  AWS_ENDPOINT: 'AWS_S3_ENDPOINT_URL',
  S3_ENDPOINT: 'AWS_S3_ENDPOINT_URL',
  AWS_S3_REGION: 'AWS_S3_REGION_NAME',
  AWS_SECRET_KEY: 'AWS_SECRET_ACCESS_KEY',
  AWS_ACCESS_KEY: 'AWS_ACCESS_KEY_ID',
  CLOUDINARY_CLOUD_NAME: 'CLOUDINARY_URL',
  CLOUDINARY_API_KEY: 'CLOUDINARY_URL',
  CLOUDINARY_API_SECRET: 'CLOUDINARY_URL',
  B2_KEY_ID: 'B2_APPLICATION_KEY_ID',
  B2_APP_KEY_ID: 'B2_APPLICATION_KEY_ID',
  B2_APP_KEY: 'B2_APPLICATION_KEY',
  B2_KEY: 'B2_APPLICATION_KEY',
  B2_BUCKET: 'B2_BUCKET_NAME',
  MEDIA_STORAGE: 'MEDIA_STORAGE_URL',
  STORAGE_URL: 'MEDIA_STORAGE_URL',
};

/** A variable that looks like a misspelling of one `configFromEnv` reads. */
export interface EnvTypo {
  /** The variable that is set. */
  name: string;
  /** The variable it most likely means. */
  suggestion: string;
  /** Whether the meant variable is unset too, so the configuration is not what was intended. */
  unsetSuggestion: boolean;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(above + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

// Only names in these families are compared: anything else in the environment (PATH, HOME, an
// app's own variables) is none of our business.
const FAMILY = /^(MEDIA_|AWS_|S3_|CLOUD|CLOUN|CLODU|CLUD|B2_|BACKBLAZE|STORAGE_)/;

/**
 * The set variables that look like misspellings of ones `configFromEnv` reads, with the name each
 * most likely means: near misses (one edited character in names of up to 12 characters, two in
 * longer ones), other libraries' spellings (`AWS_S3_ENDPOINT`, `CLOUDINARY_CLOUD_NAME`), and
 * lower-case spellings. Variables of the AWS SDK and other tools are never reported.
 */
export function findEnvTypos(env: NodeJS.ProcessEnv = process.env, known: readonly string[] = configEnvNames()): EnvTypo[] {
  const knownSet = new Set(known);
  const isSet = (name: string): boolean => (env[name] ?? '').trim() !== '';
  const typos: EnvTypo[] = [];
  for (const name of Object.keys(env).sort()) {
    if (!isSet(name) || knownSet.has(name)) continue;
    const upper = name.toUpperCase();
    if (OTHER_SOFTWARE.has(upper) || (upper === name && OTHER_SOFTWARE.has(name))) continue;
    if (!FAMILY.test(upper)) continue;
    let suggestion: string | undefined = upper !== name && knownSet.has(upper) ? upper : KNOWN_MISSES[upper];
    if (!suggestion) {
      let best = Infinity;
      for (const candidate of known) {
        const distance = editDistance(upper, candidate);
        if (distance < best && distance <= (candidate.length > 12 ? 2 : 1)) {
          best = distance;
          suggestion = candidate;
        }
      }
    }
    if (suggestion && suggestion !== name) typos.push({ name, suggestion, unsetSuggestion: !isSet(suggestion) });
  }
  return typos;
}

/** "MEDIA_STORAGE_URI is set, but media-storage reads MEDIA_STORAGE_URL: did you mean MEDIA_STORAGE_URL?" */
export function describeEnvTypo(typo: EnvTypo): string {
  const effect = typo.unsetSuggestion ? ` (${typo.suggestion} is not set, so ${typo.name} is ignored)` : '';
  const cloudinary =
    typo.suggestion === 'CLOUDINARY_URL' && /^CLOUDINARY_/i.test(typo.name)
      ? ' Give the cloud name, key and secret as one CLOUDINARY_URL=cloudinary://API_KEY:API_SECRET@CLOUD_NAME.'
      : '';
  return `${typo.name} is set, but media-storage does not read it: did you mean ${typo.suggestion}?${effect}${cloudinary}`;
}

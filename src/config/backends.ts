/**
 * The built-in backends, one line each. Their order is the order `configFromEnv` tries their
 * variables in (after MEDIA_STORAGE_URL; the local disk is the fallback whatever its place).
 * A backend added here is a folder src/<name>/ with its definition.ts, and this line.
 */
import { registerBackend } from '../core/definition.js';
import { localBackend } from '../local/definition.js';
import { memoryBackend } from '../memory/definition.js';
import { s3Backend } from '../s3/definition.js';
import { cloudinaryBackend } from '../cloudinary/definition.js';
import { b2Backend } from '../b2/definition.js';
import { azureBackend } from '../azure/definition.js';

export const BUILTIN_BACKENDS = [localBackend, memoryBackend, s3Backend, cloudinaryBackend, b2Backend, azureBackend] as const;

/** Registers the built-in backends (once; later calls do nothing). Every config entry point calls it first. */
export function registerBuiltinBackends(): void {
  for (const definition of BUILTIN_BACKENDS) registerBackend(definition);
}
registerBuiltinBackends();

import { codeFromNodeError, codeFromStatus } from '../core/error-mapping.js';
import type { MediaStorageErrorCode } from '../core/errors.js';

/** What {@link mapAzureError} decides for one failure. */
export interface AzureErrorMapping {
  code: MediaStorageErrorCode;
  message?: string;
  status?: number;
}

// Blob service error codes ("Blob service error codes", "Common REST API error codes") whose
// meaning is more precise than their HTTP status.
const CODES: Record<string, MediaStorageErrorCode> = {
  BlobNotFound: 'NOT_FOUND',
  CannotVerifyCopySource: 'NOT_FOUND',
  ContainerNotFound: 'CONFIG',
  ContainerBeingDeleted: 'CONFIG',
  AccountIsDisabled: 'CONFIG',
  InvalidResourceName: 'CONFIG',
  AuthenticationFailed: 'AUTH',
  InvalidAuthenticationInfo: 'AUTH',
  NoAuthenticationInformation: 'AUTH',
  AuthorizationFailure: 'PERMISSION',
  AuthorizationPermissionMismatch: 'PERMISSION',
  AuthorizationResourceTypeMismatch: 'PERMISSION',
  InsufficientAccountPermissions: 'PERMISSION',
  BlobAlreadyExists: 'ALREADY_EXISTS',
  ConditionNotMet: 'ALREADY_EXISTS',
  TargetConditionNotMet: 'ALREADY_EXISTS',
  InvalidRange: 'INVALID_INPUT',
  RequestBodyTooLarge: 'TOO_LARGE',
  BlockCountExceedsLimit: 'TOO_LARGE',
  OutOfRangeInput: 'INVALID_KEY',
  InvalidUri: 'INVALID_KEY',
  InvalidMetadata: 'INVALID_INPUT',
  Md5Mismatch: 'UNAVAILABLE',
  Crc64Mismatch: 'UNAVAILABLE',
  ServerBusy: 'UNAVAILABLE',
  InternalError: 'UNAVAILABLE',
  OperationTimedOut: 'UNAVAILABLE',
};

/** Where the storage points, for messages that tell the user what to fix. */
export interface AzureTarget {
  container: string;
  account?: string;
}

function explain(azureCode: string, target: AzureTarget): string | undefined {
  switch (azureCode) {
    case 'ContainerNotFound':
      return `the container "${target.container}" does not exist${target.account ? ` in the account "${target.account}"` : ''}; create it or fix the container option`;
    case 'AuthenticationFailed':
    case 'InvalidAuthenticationInfo':
      return 'the storage account rejected the credentials (AuthenticationFailed); check the AccountKey in AZURE_STORAGE_CONNECTION_STRING';
    case 'Md5Mismatch':
    case 'Crc64Mismatch':
      return 'the bytes the service received do not match their checksum (corrupted in transit); nothing was stored, try again';
    default:
      return undefined;
  }
}

/**
 * Maps an error of `@azure/storage-blob` (a RestError, after the SDK's own retries) to a
 * MediaStorageError code: the service's error code (`x-ms-error-code`, also on HEAD answers,
 * which have no body) first, then the HTTP status, then Node's network error codes. `undefined`
 * leaves the decision to the core's generic rules.
 */
export function mapAzureError(err: unknown, target: AzureTarget): AzureErrorMapping | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; statusCode?: unknown; message?: unknown; name?: unknown; details?: { errorCode?: unknown } };
  const status = typeof e.statusCode === 'number' ? e.statusCode : undefined;
  const azureCode = [e.code, e.details?.errorCode].find((c): c is string => typeof c === 'string' && c in CODES);
  let code = (azureCode ? CODES[azureCode] : undefined) ?? codeFromStatus(status) ?? codeFromNodeError(err);
  // Azurite answers a bad signature with AuthorizationFailure (Azure: AuthenticationFailed); its
  // message says which it is. A HEAD answer has no message, and stays PERMISSION.
  if (azureCode === 'AuthorizationFailure' && typeof e.message === 'string' && /failed to authenticate/i.test(e.message)) code = 'AUTH';
  if (!code) return undefined;
  const detail = azureCode ? explain(azureCode, target) : undefined;
  // The SDK's message can hold the whole response: its first line says what failed.
  const first = typeof e.message === 'string' ? e.message.split('\n')[0]!.trim() : '';
  const original = first || azureCode || (typeof e.code === 'string' ? e.code : `HTTP ${status}`);
  return { code, message: detail ? `${detail} (${original})` : original, status };
}

/** Whether an SDK error carries one of these codes (Node's `code` or the service's `errorCode`). */
export function isCode(err: unknown, ...codes: string[]): boolean {
  const e = err as { code?: unknown; details?: { errorCode?: unknown } } | null;
  return !!e && (codes.includes(String(e.code)) || codes.includes(String(e.details?.errorCode)));
}

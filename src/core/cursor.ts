/**
 * List cursors: opaque to callers (base64url), checked on the way back in, so a cursor that this
 * code did not make is INVALID_INPUT rather than a listing that silently starts somewhere else.
 */
import { MediaStorageError } from './errors.js';

const BASE64URL = /^[A-Za-z0-9_-]*$/;

function invalidCursor(): MediaStorageError {
  return new MediaStorageError('INVALID_INPUT', 'Invalid list cursor: pass the cursor of a previous page of this storage', { operation: 'list' });
}

/** The cursor for a position in a listing (the last key listed, a provider's token): its UTF-8 as base64url. */
export function encodeCursor(position: string): string {
  return Buffer.from(position, 'utf8').toString('base64url');
}

/**
 * The position {@link encodeCursor} made `cursor` from. INVALID_INPUT for anything it cannot have
 * made: characters outside base64url, or bytes that are not UTF-8 (checked by encoding back).
 */
export function decodeCursor(cursor: string): string {
  if (typeof cursor !== 'string' || cursor === '' || !BASE64URL.test(cursor)) throw invalidCursor();
  const position = Buffer.from(cursor, 'base64url').toString('utf8');
  if (encodeCursor(position) !== cursor) throw invalidCursor();
  return position;
}

/** A cursor holding structured state (several sources' positions): JSON, then as {@link encodeCursor}. */
export function encodeCursorState(state: unknown): string {
  return encodeCursor(JSON.stringify(state));
}

/**
 * The state {@link encodeCursorState} made `cursor` from, accepted only when `isState` says it
 * has the expected shape; INVALID_INPUT otherwise (bad encoding, not JSON, wrong shape).
 */
export function decodeCursorState<T>(cursor: string, isState: (value: unknown) => value is T): T {
  let value: unknown;
  try {
    value = JSON.parse(decodeCursor(cursor));
  } catch {
    throw invalidCursor();
  }
  if (!isState(value)) throw invalidCursor();
  return value;
}

import { describe, expect, it } from 'vitest';
import { isNotFound, MediaStorageError, redact } from '../src/core/errors.js';
import { codeFromNodeError, codeFromStatus, toMediaStorageError } from '../src/core/error-mapping.js';

describe('MediaStorageError', () => {
  it('carries code, backend, key and cause', () => {
    const cause = new Error('boom');
    const err = new MediaStorageError('UNAVAILABLE', 'down', { backend: 's3', key: 'a.jpg', cause });
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('MediaStorageError');
    expect(err.code).toBe('UNAVAILABLE');
    expect(err.backend).toBe('s3');
    expect(err.key).toBe('a.jpg');
    expect(err.cause).toBe(cause);
    expect(isNotFound(err)).toBe(false);
    expect(isNotFound(new MediaStorageError('NOT_FOUND', 'x'))).toBe(true);
    expect(isNotFound(new Error('x'))).toBe(false);
  });
  it('never shows a signature or secret', () => {
    const err = new MediaStorageError('AUTH', 'GET https://b.s3.amazonaws.com/a.jpg?X-Amz-Credential=AKIA/x&X-Amz-Signature=abcdef123 failed');
    expect(err.message).not.toContain('abcdef123');
    expect(err.message).not.toContain('AKIA/x');
    expect(redact('key=supersecretvalue here', ['supersecretvalue'])).toBe('key=[redacted] here');
    const wrapped = toMediaStorageError(new Error('bad secret hunter2hunter2'), { backend: 'x', operation: 'save', key: 'k' }).withSecretsRedacted(['hunter2hunter2']);
    expect(wrapped.message).not.toContain('hunter2hunter2');
    expect(wrapped.code).toBe('UNKNOWN');
  });
});

describe('code mapping', () => {
  it('maps HTTP statuses', () => {
    expect(codeFromStatus(404)).toBe('NOT_FOUND');
    expect(codeFromStatus(401)).toBe('AUTH');
    expect(codeFromStatus(403)).toBe('PERMISSION');
    expect(codeFromStatus(412)).toBe('ALREADY_EXISTS');
    expect(codeFromStatus(429)).toBe('UNAVAILABLE');
    expect(codeFromStatus(503)).toBe('UNAVAILABLE');
    expect(codeFromStatus(418)).toBeUndefined();
  });
  it('maps Node errors, including fetch wrappers', () => {
    expect(codeFromNodeError(Object.assign(new Error(), { code: 'ENOSPC' }))).toBe('UNAVAILABLE');
    expect(codeFromNodeError(Object.assign(new Error(), { code: 'EACCES' }))).toBe('PERMISSION');
    expect(codeFromNodeError(new TypeError('fetch failed', { cause: Object.assign(new Error(), { code: 'ECONNREFUSED' }) }))).toBe('UNAVAILABLE');
    expect(codeFromNodeError(Object.assign(new Error(), { name: 'AbortError' }))).toBe('ABORTED');
  });
});

import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { CauseSummary, isNotFound, MediaStorageError, redact, summarizeCause } from '../../src/core/errors.js';
import { codeFromNodeError, codeFromStatus, toMediaStorageError } from '../../src/core/error-mapping.js';

describe('MediaStorageError', () => {
  it('carries code, backend, key and cause', () => {
    const cause = new Error('boom');
    const err = new MediaStorageError('UNAVAILABLE', 'down', { backend: 's3', key: 'a.jpg', cause });
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('MediaStorageError');
    expect(err.code).toBe('UNAVAILABLE');
    expect(err.backend).toBe('s3');
    expect(err.key).toBe('a.jpg');
    expect(err.cause).toBeInstanceOf(CauseSummary);
    expect(err.cause).toMatchObject({ name: 'Error', message: 'boom' });
    expect(isNotFound(err)).toBe(false);
    expect(isNotFound(new MediaStorageError('NOT_FOUND', 'x'))).toBe(true);
    expect(isNotFound(new Error('x'))).toBe(false);
  });
  it('never shows a signature or secret', () => {
    const err = new MediaStorageError('AUTH', 'GET https://b.s3.amazonaws.com/a.jpg?X-Amz-Credential=AKIA/x&X-Amz-Signature=abcdef123 failed');
    expect(err.message).not.toContain('abcdef123');
    expect(err.message).not.toContain('AKIA/x');
    expect(redact('key=supersecretvalue here', ['supersecretvalue'])).toBe('key=[redacted] here');
    const wrapped = toMediaStorageError(new Error('bad secret hunter2hunter2'), { backend: 'x', operation: 'save', key: 'k' }).withSecretsRedacted([
      'hunter2hunter2',
    ]);
    expect(wrapped.message).not.toContain('hunter2hunter2');
    expect(wrapped.code).toBe('UNKNOWN');
  });
});

describe('causes are kept as scrubbed summaries', () => {
  const key = 'K001PLANTED/applicationKey+x';
  const basic = Buffer.from(`keyid:${key}`).toString('base64');

  it('keeps name, message, code, status and request id of an SDK error, and nothing of its request', () => {
    // The shape of an AxiosError from backblaze-b2: the config keeps the Basic credentials.
    const axios = Object.assign(new Error('Request failed with status code 401'), {
      name: 'AxiosError',
      code: 'ERR_BAD_REQUEST',
      config: { url: 'https://api.backblazeb2.com/b2api/v2/b2_authorize_account', headers: { Authorization: `Basic ${basic}` } },
      request: { _header: `GET /b2api/v2/b2_authorize_account HTTP/1.1\r\nAuthorization: Basic ${basic}\r\n` },
      response: { status: 401, headers: { 'x-request-id': 'req-123' }, data: { code: 'unauthorized' } },
    });
    const err = new MediaStorageError('AUTH', 'b2: save failed', { cause: axios });
    const cause = err.cause as CauseSummary;
    expect(cause).toBeInstanceOf(CauseSummary);
    expect(cause).toMatchObject({
      name: 'AxiosError',
      message: 'Request failed with status code 401',
      code: 'ERR_BAD_REQUEST',
      status: 401,
      requestId: 'req-123',
    });
    expect(Object.keys(cause).sort()).toEqual(['code', 'name', 'requestId', 'status']);
    expect(JSON.stringify(cause)).toBe(
      '{"name":"AxiosError","message":"Request failed with status code 401","code":"ERR_BAD_REQUEST","status":401,"requestId":"req-123"}',
    );
    expect(inspect(err, { depth: Infinity, showHidden: true })).not.toContain(basic);
    // The original's frames stay, so the cause still says where it was thrown.
    expect(cause.stack).toMatch(/^AxiosError: Request failed with status code 401\n\s+at /);
  });

  it('reads the AWS SDK fields, follows causes and aggregated errors, and stops at cycles', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' });
    const refused6 = Object.assign(new Error('connect ECONNREFUSED ::1:9'), { code: 'ECONNREFUSED' });
    const aggregate = new AggregateError([refused, refused6], '');
    const fetchFailed = new TypeError('fetch failed', { cause: aggregate });
    const aws = Object.assign(new Error('The request signature we calculated does not match'), {
      name: 'SignatureDoesNotMatch',
      Code: 'SignatureDoesNotMatch',
      $metadata: { httpStatusCode: 403, requestId: 'tx0001', extendedRequestId: 'id2' },
      $response: {
        statusCode: 403,
        body: { req: { _header: 'PUT / HTTP/1.1\r\nauthorization: AWS4-HMAC-SHA256 Credential=AKID/x, SignedHeaders=host, Signature=abcdef0123\r\n' } },
      },
      cause: fetchFailed,
    });
    const cyclic = Object.assign(new Error('loop'), { cause: undefined as unknown });
    cyclic.cause = cyclic;
    const summary = summarizeCause(aws) as CauseSummary;
    expect(summary).toMatchObject({ name: 'SignatureDoesNotMatch', code: 'SignatureDoesNotMatch', status: 403, requestId: 'tx0001', extendedRequestId: 'id2' });
    const fetchSummary = summary.cause as CauseSummary;
    expect(fetchSummary).toMatchObject({ name: 'TypeError', message: 'fetch failed' });
    const aggregateSummary = fetchSummary.cause as CauseSummary;
    expect(aggregateSummary.name).toBe('AggregateError');
    expect(aggregateSummary.errors).toHaveLength(2);
    expect(aggregateSummary.errors![0]).toMatchObject({ code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:9' });
    expect(inspect(summary, { depth: Infinity, showHidden: true })).not.toContain('abcdef0123');
    expect((summarizeCause(cyclic) as CauseSummary).cause).toBeUndefined();
    expect(summarizeCause('a string reason')).toMatchObject({ message: 'a string reason' });
  });

  it("removes a backend's secrets, in every spelling, from the message and the whole cause chain", () => {
    const inner = new Error(`token ${encodeURIComponent(key)} / ${Buffer.from(key).toString('base64')} rejected`);
    const err = toMediaStorageError(new Error(`upload with ${key} failed`, { cause: inner }), { backend: 'b2', operation: 'save' }).withSecretsRedacted([key]);
    const text = inspect(err, { depth: Infinity });
    for (const form of [key, encodeURIComponent(key), Buffer.from(key).toString('base64')]) expect(text).not.toContain(form);
    expect(err.withSecretsRedacted([key])).toBe(err);
    const clean = new MediaStorageError('NOT_FOUND', 'No object', { cause: new Error('404') });
    expect(clean.withSecretsRedacted([key])).toBe(clean);
  });

  it('redacts credentials in the shapes SDKs print them, but not the hints of its own messages', () => {
    expect(redact('Authorization: Basic dXNlcjpwYXNzd29yZA==\r\nHost: x')).toBe('Authorization: [redacted]\r\nHost: x');
    expect(redact('{"authorization":"4_abcdefgh"}')).toBe('{"authorization":"[redacted]"}');
    expect(redact('Credential=AKID/20240101/us-east-1/s3/aws4_request, Signature=0123abcd')).toBe('Credential=[redacted], Signature=[redacted]');
    expect(redact('Invalid Signature 0123456789abcdef0123. String to sign')).toBe('Invalid Signature [redacted]. String to sign');
    expect(redact('connect to https://user:hunter2@host/x failed')).toBe('connect to https://user:***@host/x failed');
    expect(redact('https://res.cloudinary.com/c/image/upload/s--AbCd1234--/v1/a.jpg')).toBe(
      'https://res.cloudinary.com/c/image/upload/s--[redacted]--/v1/a.jpg',
    );
    expect(redact('use cloudinary://API_KEY:API_SECRET@CLOUD_NAME')).toBe('use cloudinary://API_KEY:API_SECRET@CLOUD_NAME');
    expect(redact('AuthorizationHeaderMalformed')).toBe('AuthorizationHeaderMalformed');
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

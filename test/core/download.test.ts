import { describe, expect, it } from 'vitest';
import { downloadFilename, requestedDownload } from '../../src/core/download.js';

describe('core/download', () => {
  it('reads url({ download }) one way', () => {
    expect(requestedDownload(undefined)).toBeUndefined();
    expect(requestedDownload(false)).toBeUndefined();
    expect(requestedDownload(true)).toBe('');
    expect(requestedDownload('cv.pdf')).toBe('cv.pdf');
    expect(downloadFilename(true, 'people/7/cv.pdf')).toBe('cv.pdf');
    expect(downloadFilename('résumé.pdf', 'people/7/cv.pdf')).toBe('résumé.pdf');
    expect(downloadFilename(false, 'people/7/cv.pdf')).toBeUndefined();
  });

  it('refuses a value that is neither a boolean nor a name', () => {
    expect(() => requestedDownload(1 as unknown as string)).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
  });
});

import { describe, expect, it } from 'vitest';
import { importPeer, lazyPeer, missingPeerError, requirePeer } from '../../src/core/peer.js';

const peer = { packages: ['not-a-real-package-xyz', 'its-companion'], usedBy: 'The demo backend', backend: 'demo' } as const;

describe('core/peer', () => {
  it('turns a missing optional package into CONFIG "npm install …" (ESM import)', async () => {
    const err = await importPeer(() => import('not-a-real-package-xyz' as string), peer).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CONFIG', backend: 'demo', operation: 'configure' });
    expect((err as Error).message).toBe(
      'The demo backend needs the package "not-a-real-package-xyz", which is not installed: npm install not-a-real-package-xyz its-companion',
    );
    expect((err as Error).cause).toMatchObject({ code: 'ERR_MODULE_NOT_FOUND' });
  });

  it('does the same for a CommonJS require', async () => {
    const { createRequire } = await import('node:module');
    const require = createRequire(import.meta.url);
    expect(() => requirePeer(() => require('not-a-real-package-xyz'), peer)).toThrow(expect.objectContaining({ code: 'CONFIG' }));
  });

  it('leaves other failures as they are: a broken package must not read as a missing one', async () => {
    const broken = new Error('SyntaxError inside the SDK');
    await expect(importPeer(() => Promise.reject(broken), peer)).rejects.toBe(broken);
    // Missing, but some other module: not this peer.
    expect(missingPeerError(Object.assign(new Error("Cannot find package 'left-pad'"), { code: 'ERR_MODULE_NOT_FOUND' }), peer)).toBeUndefined();
  });

  it('lazyPeer imports once, and tries again after a failure', async () => {
    let calls = 0;
    let fail = true;
    const load = lazyPeer(async () => {
      calls++;
      if (fail) throw Object.assign(new Error("Cannot find package 'not-a-real-package-xyz'"), { code: 'ERR_MODULE_NOT_FOUND' });
      return { ok: true };
    }, peer);
    await expect(load()).rejects.toMatchObject({ code: 'CONFIG' });
    fail = false;
    const [a, b] = await Promise.all([load(), load()]);
    expect(a).toBe(b);
    expect(calls).toBe(2);
  });
});

import { withExistenceCache } from '../../src/avatar/index.js';
import { LocalStorage } from '../../src/local/index.js';
import { describeStorageContract } from '../../src/testing/index.js';
import { listen } from '../support/http.js';
import { tempDir } from '../support/tmp.js';

// The caching wrapper is a MediaStorage: it must honour the whole contract, exists included.
describeStorageContract('cached(local)', async () => {
  const tmp = await tempDir('contract-cached');
  let local!: LocalStorage;
  const server = await listen((req, res) => local.handler()(req, res));
  local = new LocalStorage({ root: tmp.dir, baseUrl: `${server.url}/media`, secret: 'contract-test-secret-0123456789' });
  return {
    storage: withExistenceCache(local, { positiveTtl: 60_000, negativeTtl: 60_000 }),
    cleanup: async () => {
      await server.close();
      await tmp.remove();
    },
  };
});

import { LocalStorage } from '../../src/local/index.js';
import { describeStorageContract } from '../../src/testing/index.js';
import { HOSTILE_INPUT_OPTIONS } from '../../src/testing/hostile-keys.js';
import { localSeeder } from '../support/foreign-seeders.js';
import { listen } from '../support/http.js';
import { tempDir } from '../support/tmp.js';

describeStorageContract(
  'local',
  async () => {
    const tmp = await tempDir('contract');
    let storage!: LocalStorage;
    const server = await listen((req, res) => storage.handler()(req, res));
    storage = new LocalStorage({ root: tmp.dir, baseUrl: `${server.url}/media`, secret: 'contract-test-secret-0123456789' });
    return {
      storage,
      // Files another program (a Django app, rsync from a Mac) left in the folder.
      seedForeign: localSeeder(tmp.dir),
      cleanup: async () => {
        await server.close();
        await tmp.remove();
      },
    };
  },
  HOSTILE_INPUT_OPTIONS,
);

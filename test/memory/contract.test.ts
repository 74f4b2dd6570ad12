import { MemoryStorage } from '../../src/memory/index.js';
import { describeStorageContract } from '../../src/testing/index.js';
import { HOSTILE_INPUT_OPTIONS } from '../../src/testing/hostile-keys.js';
import { memorySeeder } from '../support/foreign-seeders.js';
import { listen } from '../support/http.js';

describeStorageContract(
  'memory',
  async () => {
    let storage!: MemoryStorage;
    const server = await listen((req, res) => storage.handler()(req, res));
    storage = new MemoryStorage({ baseUrl: `${server.url}/media` });
    return { storage, seedForeign: memorySeeder(storage), cleanup: () => server.close() };
  },
  HOSTILE_INPUT_OPTIONS,
);

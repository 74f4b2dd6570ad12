import { withConcurrencyLimit, withEvents, withFaults, withRetry, withTimeout, type StorageEvent } from '../../src/layers/index.js';
import { MemoryStorage } from '../../src/memory/index.js';
import { describeStorageContract } from '../../src/testing/index.js';
import { listen } from '../support/http.js';

// Every layer at once, plus a few injected UNAVAILABLE answers that the retry layer absorbs, must
// keep the whole contract: the layers change nothing but what they are for.
describeStorageContract('memory under every layer', async () => {
  let inner!: MemoryStorage;
  const server = await listen((req, res) => inner.handler()(req, res));
  inner = new MemoryStorage({ baseUrl: `${server.url}/media` });
  const events: StorageEvent[] = [];
  let retries = 0;
  const faults = withFaults(inner).inject({ operation: ['stat', 'exists', 'list'], nth: 5, times: 3 });
  const storage = withEvents(
    withRetry(withTimeout(withConcurrencyLimit(faults, { limit: 32 }), { ms: 60_000 }), { baseDelayMs: 1, onRetry: () => retries++ }),
    (e) => events.push(e),
  );
  return {
    storage,
    cleanup: async () => {
      await server.close();
      // The layers were really in the path: events were seen and the staged faults fired.
      if (events.length < 100) throw new Error(`the events layer saw only ${events.length} operations`);
      if (faults.calls('exists') < 10) throw new Error('the fault layer saw too few calls');
      if (retries !== 3) throw new Error(`expected the 3 injected failures to be retried, saw ${retries} retries`);
    },
  };
});

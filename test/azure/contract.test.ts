import { AzureBlobStorage } from '../../src/azure/index.js';
import { describeStorageContract } from '../../src/testing/index.js';
import { HOSTILE_INPUT_OPTIONS } from '../../src/testing/hostile-keys.js';
import { azureSeeder } from '../support/foreign-seeders.js';
import { startAzurite } from '../support/azurite.js';
import { variants } from '../support/matrix.js';

// The whole contract against Azurite (Microsoft's emulator, started by the helper), which checks
// SharedKey signatures and SAS tokens: a private container (SAS URLs) and a public one (anonymous
// blob reads), with objects other software (the raw SDK) wrote.
for (const visibility of variants(['private', 'public'] as const)) {
  describeStorageContract(
    `azure (${visibility} container, Azurite)`,
    async () => {
      const azurite = await startAzurite();
      const container = await azurite.container(`contract-${visibility}`, visibility === 'public' ? 'blob' : undefined);
      // Small blocks so the contract's 10 MB and 30 MB bodies go up in blocks too.
      const storage = new AzureBlobStorage({
        connectionString: azurite.connectionString,
        container,
        location: 'media/',
        visibility,
        blockSize: 2 * 1024 * 1024,
        singleUploadThreshold: 4 * 1024 * 1024,
      });
      return { storage, seedForeign: azureSeeder(azurite.service.getContainerClient(container), 'media/'), cleanup: () => azurite.stop() };
    },
    // The public container proves anonymous URLs; the hostile corpus and the full concurrency bar run
    // on the private one (Azurite takes 20-30 s for the 1,000 saves alone). Azurite serves a public
    // container's blobs to anyone, whatever SAS a URL carries (a forged one included), so the
    // signed-URL tests cannot fail there either: they too run on the private container.
    visibility === 'public' ? { capabilities: { signedUrls: false } } : HOSTILE_INPUT_OPTIONS,
  );
}

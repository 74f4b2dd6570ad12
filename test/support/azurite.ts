/**
 * Azurite, Microsoft's Azure Storage emulator (npm `azurite`, a devDependency), started by the
 * tests themselves: the Blob service only, in memory, on a free loopback port, in a child
 * process. It checks SharedKey signatures and SAS tokens as Azure does. Nothing else is needed
 * for `npm test` or .ci/run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { BlobServiceClient } from '@azure/storage-blob';

const require = createRequire(import.meta.url);

/** Azurite's well-known development account (documented by Microsoft; not a secret). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface RunningAzurite {
  /** `http://127.0.0.1:PORT/devstoreaccount1` */
  blobEndpoint: string;
  connectionString: string;
  service: BlobServiceClient;
  /** Creates a container with a unique name (`public`: anonymous blob reads). */
  container(label: string, access?: 'blob'): Promise<string>;
  stop(): Promise<void>;
}

export async function startAzurite(): Promise<RunningAzurite> {
  const main = path.join(path.dirname(require.resolve('azurite/package.json')), 'dist/src/blob/main.js');
  const child: ChildProcess = spawn(
    process.execPath,
    [main, '--inMemoryPersistence', '--skipApiVersionCheck', '--disableTelemetry', '--loose', '--blobHost', '127.0.0.1', '--blobPort', '0'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Azurite did not start within 30 s: ${stderr}`)), 30_000);
    child.once('exit', (code) => reject(new Error(`Azurite exited with ${code}: ${stderr}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const match = /successfully listens on (http:\/\/\S+)/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
  });
  const blobEndpoint = `${url}/${AZURITE_ACCOUNT}`;
  const connectionString = `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${blobEndpoint};`;
  const service = BlobServiceClient.fromConnectionString(connectionString);
  let n = 0;
  return {
    blobEndpoint,
    connectionString,
    service,
    async container(label, access) {
      const name = `${label}-${Date.now().toString(36)}-${++n}`
        .toLowerCase()
        .replace(/[^a-z0-9-]/g, '-')
        .slice(0, 63);
      await service.getContainerClient(name).create(access ? { access } : {});
      return name;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildIfStale } from '../../scripts/build-if-stale.mjs';
import { tempDir } from './tmp.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface RunningExample {
  url: string;
  /** The example's process id. */
  pid: number;
  mediaDir: string;
  dataDir: string;
  output: () => string;
  stop: () => Promise<void>;
}

/**
 * Starts examples/crm as `npm start` would (built package, its own process) on an ephemeral
 * port with fresh data and media folders, and waits for the URL it prints.
 */
export async function startCrmExample(): Promise<RunningExample> {
  buildIfStale({ quiet: true });
  const media = await tempDir('crm-media');
  const data = await tempDir('crm-data');
  const child: ChildProcess = spawn(process.execPath, [path.join(root, 'examples/crm/server.js')], {
    cwd: root,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', CRM_MEDIA_DIR: media.dir, CRM_DATA_DIR: data.dir, NODE_ENV: 'test' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`The example did not print its URL in 20 s:\n${output}`)), 20_000);
    child.stdout!.on('data', () => {
      const match = /running at (http:\/\/\S+?)\/?\s/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`The example exited (${code}) before listening:\n${output}`));
    });
  });
  return {
    url,
    pid: child.pid!,
    mediaDir: media.dir,
    dataDir: data.dir,
    output: () => output,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      await media.remove();
      await data.remove();
    },
  };
}

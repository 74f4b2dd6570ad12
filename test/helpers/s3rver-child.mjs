// Runs s3rver in its own process: its list continuation tokens use a cipher that OpenSSL 3 only
// offers with --openssl-legacy-provider, a flag the test workers should not run with.
// Usage: node --openssl-legacy-provider s3rver-child.mjs <directory> <bucket>
// Prints {"port": N} once listening; exits when its stdin closes (the parent went away) or on SIGTERM.
import S3rver from 's3rver';

const [directory, bucket] = process.argv.slice(2);
const server = new S3rver({ address: '127.0.0.1', port: 0, directory, silent: true, configureBuckets: [{ name: bucket }] });
const { port } = await server.run();
process.stdout.write(`${JSON.stringify({ port })}\n`);

let closing = false;
async function stop() {
  if (closing) return;
  closing = true;
  await server.close().catch(() => undefined);
  process.exit(0);
}
process.on('SIGTERM', stop);
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();

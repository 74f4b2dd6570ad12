// Runs s3rver in its own process: its list continuation tokens use a cipher that OpenSSL 3 only
// offers with --openssl-legacy-provider, a flag the test workers should not run with.
// Usage: node --openssl-legacy-provider s3rver-child.mjs <directory> <bucket>
// Prints {"port": N} once listening; exits when its stdin closes (the parent went away) or on SIGTERM.
import { createRequire } from 'node:module';
import { readdirSync } from 'node:fs';
import { rmdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import S3rver from 's3rver';

// S3 lists keys "in UTF-8 binary order" (ListObjectsV2 reference). s3rver walks its folders in
// readdir order and compares names as UTF-16 strings, so `a/x` comes before `a-b` and `\u{1F600}`
// before `\uFF21`; listings without a delimiter (all this project asks for) are put in S3's order.
const require = createRequire(import.meta.url);
const FilesystemStore = require('s3rver/lib/stores/filesystem');
const S3Object = require('s3rver/lib/models/object');
const { walk } = require('s3rver/lib/utils');
const OBJECT_SUFFIX = '._S3rver_object';
const utf8Order = (a, b) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
// A DeleteObject always succeeds on S3. s3rver removes the folders a delete empties, and two
// deletes (or a delete and a put) under one folder at once race there: its readdir-then-rmdir
// throws ENOENT or ENOTEMPTY, answered as a 500 InternalError. The object files are gone by then;
// only the tidying raced, so it stops quietly where another request got there first.
FilesystemStore.prototype.deleteObject = async function deleteObject(bucket, key) {
  await Promise.all(
    ['object', 'object.md5', 'metadata.json'].map((type) =>
      unlink(this.getResourcePath(bucket, key, type)).catch((err) => {
        if (err.code !== 'ENOENT') throw err;
      }),
    ),
  );
  const bucketPath = this.getBucketPath(bucket);
  const parts = key.split('/');
  parts.pop(); // the last part is in the file name
  try {
    while (parts.length && readdirSync(path.join(bucketPath, ...parts)).length === 0) {
      await rmdir(path.join(bucketPath, ...parts));
      parts.pop();
    }
  } catch (err) {
    if (err.code !== 'ENOENT' && err.code !== 'ENOTEMPTY') throw err;
  }
};
const walkedListing = FilesystemStore.prototype.listObjects;
FilesystemStore.prototype.listObjects = async function listObjects(bucket, options) {
  if (options.delimiter) return walkedListing.call(this, bucket, options);
  const { startAfter = '', prefix = '', maxKeys = Infinity } = options;
  const bucketPath = this.getBucketPath(bucket);
  const keys = [];
  for (const file of walk(bucketPath)) {
    if (!file.endsWith(OBJECT_SUFFIX)) continue;
    const key = FilesystemStore.decodeKeyPath(file.slice(bucketPath.length + 1, -OBJECT_SUFFIX.length));
    if (key.startsWith(prefix) && utf8Order(key, startAfter) > 0) keys.push(key);
  }
  keys.sort(utf8Order);
  const page = keys.slice(0, maxKeys);
  const described = await Promise.all(
    page.map((key) =>
      this.getMetadata(bucket, key).then(
        (metadata) => new S3Object(bucket, key, null, metadata),
        (err) => (err.code === 'ENOENT' ? undefined : Promise.reject(err)),
      ),
    ),
  );
  return { objects: described.filter(Boolean), commonPrefixes: [], isTruncated: keys.length > maxKeys };
};

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

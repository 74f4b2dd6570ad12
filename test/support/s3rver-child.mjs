// Runs s3rver in its own process: its list continuation tokens use a cipher that OpenSSL 3 only
// offers with --openssl-legacy-provider, a flag the test workers should not run with.
// Usage: node --openssl-legacy-provider s3rver-child.mjs <directory> <bucket>
// Prints {"port": N} once listening; exits when its stdin closes (the parent went away) or on SIGTERM.
import { createRequire } from 'node:module';
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream, readdirSync } from 'node:fs';
import { copyFile, mkdir, open, readFile, rename, rmdir, unlink } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
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
// S3 shows an object only once its upload is complete ("Amazon S3 never adds partial objects",
// PutObject reference), and a reader gets one version whole. s3rver writes a body straight into
// the object's file and its metadata beside it, so a list or GET during an upload, or after one
// the client abandoned, saw a partial object (an interrupted sync in CI listed a 0-byte file), and
// a GET during an overwrite got a mix of two. Here a body (a put's, a copy's) goes to a temporary
// file, removed if abandoned; once whole it is renamed into place, with its checksum and
// metadata, in the key's turn: the operations on one key that touch what is in place (commit,
// describe and open for reading, delete) run one at a time, and a reader holds the open file.
const turns = new Map();
function inTurn(file, work) {
  const run = (turns.get(file) ?? Promise.resolve()).then(work);
  const settled = run.then(
    () => undefined,
    () => undefined,
  );
  turns.set(file, settled);
  settled.then(() => turns.get(file) === settled && turns.delete(file));
  return run;
}
/** A new temporary file in the bucket's own folder (one file system, so the rename is atomic), under a short name: a key near S3's 1,024 bytes leaves no room in its file name for a suffix. */
async function partialFile(store, bucket) {
  const partials = path.join(store.getBucketPath(bucket), '.partial');
  await mkdir(partials, { recursive: true });
  return path.join(partials, randomUUID());
}
/**
 * Puts a whole body in place with its checksum and metadata, in the key's turn. The folder is made
 * again if a delete's tidying (below, outside any turn) removed it meanwhile.
 */
function commitBody(store, bucket, key, metadata, md5, partial) {
  const objectPath = store.getResourcePath(bucket, key, 'object');
  return inTurn(objectPath, async () => {
    for (let attempt = 1; ; attempt++) {
      try {
        await mkdir(path.dirname(objectPath), { recursive: true });
        await store.putMetadata(bucket, key, metadata, md5);
        return await rename(partial, objectPath);
      } catch (err) {
        if (err.code !== 'ENOENT' || attempt === 3) throw err;
      }
    }
  });
}
const describeObject = FilesystemStore.prototype.getMetadata;
FilesystemStore.prototype.getMetadata = function getMetadata(bucket, key) {
  return inTurn(this.getResourcePath(bucket, key, 'object'), () => describeObject.call(this, bucket, key));
};
FilesystemStore.prototype.putObject = async function putObject(object) {
  const partial = await partialFile(this, object.bucket);
  const md5 = createHash('md5');
  let size = 0;
  const content = Buffer.isBuffer(object.content) ? Readable.from([object.content]) : object.content;
  try {
    await pipeline(
      content,
      async function* count(chunks) {
        for await (const chunk of chunks) {
          md5.update(chunk);
          size += chunk.length;
          yield chunk;
        }
      },
      createWriteStream(partial),
    );
    const digest = md5.digest('hex');
    await commitBody(this, object.bucket, object.key, object.metadata, digest, partial);
    return { size, md5: digest };
  } catch (err) {
    await unlink(partial).catch(() => undefined);
    throw err;
  }
};
FilesystemStore.prototype.getObject = async function getObject(bucket, key, options) {
  const objectPath = this.getResourcePath(bucket, key, 'object');
  let handle;
  let metadata;
  try {
    [handle, metadata] = await inTurn(objectPath, async () => {
      const opened = await open(objectPath, 'r');
      return [opened, await describeObject.call(this, bucket, key).catch((err) => opened.close().then(() => Promise.reject(err)))];
    });
  } catch (err) {
    if (err.code === 'ENOENT') return null;
    throw err;
  }
  // As s3rver answers ranges, over the file opened in the key's turn.
  const lastByte = Math.max(0, Number(metadata['content-length']) - 1);
  const ranged = options && (options.start !== undefined || options.end);
  const range = { start: options?.start || 0, end: Math.min(options?.end || Infinity, lastByte) };
  const satisfiable = !(range.start < 0 || range.end < range.start);
  if (!satisfiable) await handle.close();
  const object = new S3Object(bucket, key, satisfiable ? handle.createReadStream(range) : null, metadata);
  if (ranged) object.range = range;
  return object;
};
FilesystemStore.prototype.copyObject = async function copyObject(srcBucket, srcKey, destBucket, destKey, replacementMetadata) {
  const source = this.getResourcePath(srcBucket, srcKey, 'object');
  const destination = this.getResourcePath(destBucket, destKey, 'object');
  if (source === destination) {
    if (replacementMetadata) {
      await inTurn(destination, async () => {
        const md5 = await readFile(`${source}.md5`, 'utf8').catch(() => undefined);
        await this.putMetadata(destBucket, destKey, replacementMetadata, md5);
      });
    }
    return this.getMetadata(destBucket, destKey);
  }
  const partial = await partialFile(this, destBucket);
  try {
    const [metadata, md5] = await inTurn(source, async () => {
      await copyFile(source, partial);
      const stored = JSON.parse(await readFile(this.getResourcePath(srcBucket, srcKey, 'metadata.json'), 'utf8').catch(() => '{}'));
      return [stored, await readFile(`${source}.md5`, 'utf8').catch(() => undefined)];
    });
    await commitBody(this, destBucket, destKey, replacementMetadata ?? metadata, md5, partial);
  } catch (err) {
    await unlink(partial).catch(() => undefined);
    throw err;
  }
  return this.getMetadata(destBucket, destKey);
};
// A DeleteObject always succeeds on S3. s3rver removes the folders a delete empties, and two
// deletes (or a delete and a put) under one folder at once race there: its readdir-then-rmdir
// throws ENOENT or ENOTEMPTY, answered as a 500 InternalError. The object files are gone by then;
// only the tidying raced, so it stops quietly where another request got there first.
FilesystemStore.prototype.deleteObject = async function deleteObject(bucket, key) {
  await inTurn(this.getResourcePath(bucket, key, 'object'), () =>
    Promise.all(
      ['object', 'object.md5', 'metadata.json'].map((type) =>
        unlink(this.getResourcePath(bucket, key, type)).catch((err) => {
          if (err.code !== 'ENOENT') throw err;
        }),
      ),
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
const server = new S3rver({ address: '127.0.0.1', port: 0, directory, silent: !process.env.S3RVER_VERBOSE, configureBuckets: [{ name: bucket }] });
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

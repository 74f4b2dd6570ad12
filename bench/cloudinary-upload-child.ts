// One streamed upload in a fresh process, so its peak RSS is its own. Run by cloudinary-upload.ts.
import http from 'node:http';
import { Readable } from 'node:stream';
import { createRequire } from 'node:module';

const [variant, uploadPrefix, sizeText, chunkText] = process.argv.slice(2) as [string, string, string, string];
const size = Number(sizeText);
const chunkSize = Number(chunkText);
const account = { cloud_name: 'bench-cloud', api_key: '999999999999999', api_secret: 'bench-secret-abcdefghijkl' };

/** `size` bytes in 64 KiB pieces, as a file or request stream delivers them. */
function body(): Readable {
  const piece = Buffer.alloc(64 * 1024, 0x5a);
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= size) return this.push(null);
      const n = Math.min(piece.length, size - sent);
      sent += n;
      this.push(n === piece.length ? piece : piece.subarray(0, n));
    },
  });
}

const require = createRequire(import.meta.url);
// Sampled, not getrusage's maxRSS: Linux carries the parent's peak RSS over fork and exec, and the
// parent (the fake Cloudinary) holds every uploaded byte.
const peak = { rss: 0, heapUsed: 0, external: 0, arrayBuffers: 0 };
const sampler = setInterval(() => {
  const m = process.memoryUsage();
  peak.rss = Math.max(peak.rss, m.rss);
  peak.heapUsed = Math.max(peak.heapUsed, m.heapUsed);
  peak.external = Math.max(peak.external, m.external);
  peak.arrayBuffers = Math.max(peak.arrayBuffers, m.arrayBuffers);
}, 5);
const started = process.hrtime.bigint();
if (variant === 'media-storage') {
  const { CloudinaryStorage } = require('../dist/cloudinary/index.cjs') as typeof import('../src/cloudinary/index.js');
  const storage = new CloudinaryStorage({
    cloudName: account.cloud_name,
    apiKey: account.api_key,
    apiSecret: account.api_secret,
    uploadPrefix,
    chunkSize,
    fetch: () => Promise.resolve(new Response(null, { status: 404 })),
  });
  const info = await storage.save('bench/big.bin', body());
  if (info.size !== size) throw new Error(`stored ${info.size} bytes`);
  storage.close();
} else {
  const { v2 } = require('cloudinary') as {
    v2: { uploader: Record<string, (o: object, cb: (e: unknown, r?: { bytes: number }) => void) => NodeJS.WritableStream> };
  };
  const method = variant === 'sdk upload_chunked_stream' ? 'upload_chunked_stream' : 'upload_stream';
  const agent = new http.Agent();
  await new Promise<void>((resolve, reject) => {
    const sink = v2.uploader[method]!(
      { ...account, upload_prefix: uploadPrefix, agent, resource_type: 'raw', public_id: 'bench/raw.bin', chunk_size: chunkSize, disable_promises: true },
      (err, result) => {
        if (err) reject(new Error(JSON.stringify(err)));
        else if (result?.bytes !== size) reject(new Error(`stored ${result?.bytes} bytes`));
        else resolve();
      },
    );
    body().pipe(sink);
  });
  agent.destroy();
}
const ms = Number(process.hrtime.bigint() - started) / 1e6;
clearInterval(sampler);
const mibOf = (n: number): number => Math.round(n / 1048576);
peak.rss = Math.max(peak.rss, process.memoryUsage().rss);
process.send!({
  ms,
  maxRssMiB: peak.rss / 1048576,
  peakHeapMiB: mibOf(peak.heapUsed),
  peakExternalMiB: mibOf(peak.external),
  peakArrayBuffersMiB: mibOf(peak.arrayBuffers),
});

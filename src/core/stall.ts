import { Readable } from 'node:stream';

/**
 * A download stream that fails with `onStall()` when the server sends nothing for `ms` while the
 * reader is waiting for bytes. The clock runs only while the reader asks for data: a reader that
 * pauses (a slow client of an HTTP handler) is never timed out, which an idle-socket timeout would
 * do, since a paused reader stops the socket too.
 */
export function failOnStall(source: Readable, ms: number, onStall: () => Error): Readable {
  let timer: NodeJS.Timeout | undefined;
  const disarm = (): void => {
    clearTimeout(timer);
    timer = undefined;
  };
  const out = new Readable({
    read() {
      disarm();
      timer = setTimeout(() => out.destroy(onStall()), ms);
      source.resume();
    },
    destroy(err, callback) {
      disarm();
      if (!source.destroyed) source.destroy();
      callback(err);
    },
  });
  source.pause();
  source.on('data', (chunk: Buffer) => {
    disarm();
    if (!out.push(chunk)) source.pause();
  });
  source.once('end', () => {
    disarm();
    out.push(null);
  });
  source.once('error', (err) => out.destroy(err));
  source.once('close', () => {
    if (!source.readableEnded && !out.destroyed)
      out.destroy(Object.assign(new Error('the connection closed before the body was complete'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
  });
  return out;
}

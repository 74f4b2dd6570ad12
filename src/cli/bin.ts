#!/usr/bin/env node
// The AWS SDK prints an 8-line notice about its future Node versions on the first S3 call of every
// command; it concerns the SDK's own releases, not this run. (Set the variable to "false" to see it.)
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/**
 * Leaves once the output is written, whatever is still open: a probe the doctor gave up on may
 * keep a socket to an endpoint that never answers for minutes.
 */
function leave(code: number): void {
  process.exitCode = code;
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}

import('./index.js')
  .then(({ main }) => main(process.argv.slice(2)))
  .then(leave, (err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    leave(2);
  });

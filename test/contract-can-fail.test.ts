import { execFile } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const run = promisify(execFile);

interface JsonReport {
  numFailedTests: number;
  numPassedTests: number;
  testResults: Array<{ assertionResults: Array<{ title: string; status: string }> }>;
}

it('the contract suite fails a backend whose exists() always answers true', async () => {
  const out = path.join(os.tmpdir(), `broken-contract-${process.pid}.json`);
  const vitest = path.resolve('node_modules/vitest/vitest.mjs');
  await run(process.execPath, [vitest, 'run', '--config', 'test/fixtures/vitest.contract-fixtures.config.ts', '--reporter=json', `--outputFile=${out}`], {
    cwd: path.resolve('.'),
    env: { ...process.env, CI: '1' },
  }).catch((err: { code?: number }) => {
    // vitest exits non-zero when tests fail: that is the expected outcome here.
    expect(err.code).toBe(1);
  });
  const report = JSON.parse(await readFile(out, 'utf8')) as JsonReport;
  await rm(out, { force: true });
  const failed = report.testResults.flatMap((f) => f.assertionResults.filter((a) => a.status === 'failed').map((a) => a.title));
  expect(report.numFailedTests).toBeGreaterThan(0);
  expect(failed).toContain('exists is false before save, true after, false after delete');
  expect(failed).toContain('an already-aborted signal stores nothing and gives ABORTED');
  // Everything not touching exists() still passes, so the failures are the bug's, not the harness's.
  expect(report.numPassedTests).toBeGreaterThan(20);
}, 120_000);

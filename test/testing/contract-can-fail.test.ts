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
  testResults: Array<{ assertionResults: Array<{ title: string; status: string; ancestorTitles: string[] }> }>;
}

/** Runs the broken backends of test/support/fixtures through the contract suite (once for both tests). */
let fixtureRun: Promise<JsonReport> | undefined;
function runFixtures(): Promise<JsonReport> {
  fixtureRun ??= runContractFixtures();
  return fixtureRun;
}

/** Titles of the tests that failed (or passed) for one fixture backend. */
function titles(report: JsonReport, backend: string, status: 'failed' | 'passed'): string[] {
  return report.testResults.flatMap((f) =>
    f.assertionResults.filter((a) => a.status === status && a.ancestorTitles[0] === `MediaStorage contract: ${backend}`).map((a) => a.title),
  );
}

async function runContractFixtures(): Promise<JsonReport> {
  const out = path.join(os.tmpdir(), `broken-contract-${process.pid}.json`);
  const vitest = path.resolve('node_modules/vitest/vitest.mjs');
  await run(
    process.execPath,
    [vitest, 'run', '--config', 'test/support/fixtures/vitest.contract-fixtures.config.ts', '--reporter=json', `--outputFile=${out}`],
    {
      cwd: path.resolve('.'),
      env: { ...process.env, CI: '1' },
    },
  ).catch((err: { code?: number }) => {
    // vitest exits non-zero when tests fail: that is the expected outcome here.
    expect(err.code).toBe(1);
  });
  const report = JSON.parse(await readFile(out, 'utf8')) as JsonReport;
  await rm(out, { force: true });
  return report;
}

it('the contract suite fails a backend whose exists() always answers true', async () => {
  const report = await runFixtures();
  const failed = titles(report, 'broken: exists always true', 'failed');
  expect(report.numFailedTests).toBeGreaterThan(0);
  expect(failed).toContain('exists is false before save, true after, false after delete');
  expect(failed).toContain('an already-aborted signal stores nothing and gives ABORTED');
  // Everything not touching exists() still passes, so the failures are the bug's, not the harness's.
  expect(titles(report, 'broken: exists always true', 'passed').length).toBeGreaterThan(20);
}, 240_000);

it('the foreign-object and metadata tests fail backends that list what they cannot read or lose metadata', async () => {
  const report = await runFixtures();
  const twins = 'NFD and NFC twins written by other software are two objects, each usable by its own key and never by the other [seedForeign]';
  const odd = 'names that are not keys are left out of list() and reported in skipped, and every listed key works [seedForeign]';
  const meta = 'keeps metadata values outside printable ASCII exactly, with names lower-cased as S3 and B2 store them [capability metadata]';
  const foreignMeta = 'metadata other software wrote (non-ASCII as S3 and its console encode it) reads back as meant [capability metadata] [seedForeign]';
  // Each bug fails the test written for it, and the other two still pass on that backend.
  expect(titles(report, 'broken: normalises keys on reads', 'failed')).toEqual(expect.arrayContaining([twins]));
  expect(titles(report, 'broken: normalises keys on reads', 'passed')).toEqual(expect.arrayContaining([meta]));
  expect(titles(report, 'broken: lists what it cannot read', 'failed')).toEqual([odd]);
  expect(titles(report, 'broken: lists what it cannot read', 'passed')).toEqual(expect.arrayContaining([twins, meta, foreignMeta]));
  expect(titles(report, 'broken: drops non-ASCII metadata', 'failed')).toEqual([meta]);
  expect(titles(report, 'broken: drops non-ASCII metadata', 'passed')).toEqual(expect.arrayContaining([twins, odd]));
}, 240_000);

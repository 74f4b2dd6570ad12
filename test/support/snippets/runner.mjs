// Runs many documentation snippets in one Node process, one after another, so the docs test costs
// two processes (ESM and CommonJS) instead of two per block.
// Usage: node runner.mjs <esm|cjs> <plan.json> <results.json>
// The plan is [{ id, file, cwd }]; each file's default export is an async function, the snippet. Each runs in its own folder with the environment restored after it;
// an error, a rejection nobody awaited or a snippet that hangs is recorded against that snippet.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { format } from 'node:util';

const [mode, planFile, resultsFile] = process.argv.slice(2);
const plan = JSON.parse(readFileSync(planFile, 'utf8'));
const TIMEOUT_MS = Number(process.env.SNIPPET_TIMEOUT_MS ?? 30_000);
const results = {};
let current;

const describe = (err) => (err instanceof Error ? `${err.stack ?? err.message}${err.cause ? `\ncause: ${format(err.cause)}` : ''}` : format(err));
const stray = (err) => {
  if (current) (current.stray ??= []).push(describe(err));
};
process.on('unhandledRejection', stray);
process.on('uncaughtException', stray);

const savedEnv = { ...process.env };
const savedCwd = process.cwd();
for (const { id, file, cwd } of plan) {
  current = { ok: false };
  results[id] = current;
  const started = Date.now();
  process.chdir(cwd);
  let timer;
  try {
    const mod = mode === 'cjs' ? createRequire(file)(file) : await import(pathToFileURL(file).href);
    await Promise.race([
      mod.default(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`the snippet did not finish within ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
      }),
    ]);
    // A rejection nobody awaited surfaces on a later turn: give it one.
    await new Promise((resolve) => setImmediate(resolve));
    current.ok = !current.stray;
  } catch (err) {
    current.error = describe(err);
  } finally {
    clearTimeout(timer);
  }
  current.ms = Date.now() - started;
  for (const name of Object.keys(process.env)) if (!(name in savedEnv)) delete process.env[name];
  Object.assign(process.env, savedEnv);
  process.chdir(savedCwd);
}
current = undefined;
writeFileSync(resultsFile, JSON.stringify(results, null, 2));
// Snippets may leave servers listening (an `app.listen`): they end with the process.
process.exit(0);

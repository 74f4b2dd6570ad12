// Issue 17, point 4: every fenced code block of README.md, docs/*.md and examples/*/README.md is
// extracted and run, so the docs cannot drift from the code again:
// - TypeScript blocks are compiled with `tsc --strict` (together, against the built package's
//   types), then run as ESM and as CommonJS against the built package;
// - JavaScript blocks run as ESM and as CommonJS;
// - blocks that are vitest files (they import media-storage/testing) run under vitest;
// - shell blocks run in bash (`npx media-storage` is the built CLI), JSON blocks are parsed;
// - a block needing a server runs against this file's own (s3rver, the fake Cloudinary: fixtures.ts).
// A block the runner must not run says why on the line before it: `<!-- snippet: skip: reason -->`
// or `<!-- snippet: compile-only: reason -->`. Free names a snippet uses (an `app`, `agents`) come
// from support/snippets/prelude.ts. Output samples and templates (no language, `text`, `ejs`) are listed.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildIfStale } from '../../scripts/build-if-stale.mjs';
import { consumerProject, type ConsumerProject } from '../support/consumer.js';
import { documentedFiles, extractSnippets, ROOT, type Snippet } from '../support/snippets/extract.js';
import { DEFAULT_FIXTURES, FIXTURES, type Fixture } from '../support/snippets/fixtures.js';
import { preludeFor } from '../support/snippets/prelude.js';

const execFileAsync = promisify(execFile);
const snippets = documentedFiles().flatMap(extractSnippets);
/** Explicit skips are few, and each says why: a block that is skipped is a block that can drift. */
const MAX_SKIPS = 10;

const isCode = (s: Snippet): boolean => s.kind === 'ts' || s.kind === 'tsx' || s.kind === 'js';
/** A shell block that only installs packages from the registry: checked against package.json, not run. */
const isInstallBlock = (s: Snippet): boolean =>
  s.kind === 'sh' &&
  s.code
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .every((l) => /^npm (?:install|i)\s/.test(l));
const isVitestFile = (s: Snippet): boolean => /from ['"]media-storage\/testing['"]/.test(s.code);
/** JSX needs a UI library to run; it is compiled. */
const runnable = (s: Snippet): boolean => isCode(s) && s.kind !== 'tsx' && !s.directive?.skip && !s.directive?.compileOnly;
const slug = (s: Snippet): string => s.id.replace(/[^\w]+/g, '_');

/** One block's run in support/snippets/runner.mjs. */
interface RunResult {
  ok: boolean;
  ms: number;
  error?: string;
  /** Errors thrown or rejections left unhandled while it ran. */
  stray?: string[];
}

/** Imports (which must stay at the top of a module) and the rest, with `export` dropped so it can sit in a function. */
function split(code: string): { imports: string[]; body: string } {
  const source = ts.createSourceFile('snippet.tsx', code, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TSX);
  const imports: string[] = [];
  let body = '';
  let last = 0;
  for (const statement of source.statements) {
    if (ts.isImportDeclaration(statement)) {
      body += code.slice(last, statement.getStart(source));
      imports.push(code.slice(statement.getStart(source), statement.getEnd()));
      last = statement.getEnd();
    }
  }
  body += code.slice(last);
  return { imports, body: body.replace(/^export\s+(?=(?:const|let|var|function|class|async|interface|type)\b)/gm, '') };
}

/**
 * The program run for a snippet: prelude and snippet imports, then the prelude's declarations and
 * the snippet in an exported async function, which support/snippets/runner.mjs calls (top-level await works
 * in CommonJS too); vitest files stay at the top level, where vitest collects them.
 */
function program(snippet: Snippet, freeNames: ReadonlySet<string>): { text: string; firstLine: number } {
  const prelude = preludeFor(freeNames, snippet.file);
  const { imports, body } = split(snippet.code);
  if (isVitestFile(snippet)) {
    const head = [...prelude.imports, ...imports, ...prelude.declarations].join('\n');
    return { text: `${head}\n${body}\n`, firstLine: head.split('\n').length + 1 };
  }
  const opening = `${[...prelude.imports, ...imports].join('\n')}\nexport default async function __snippet(): Promise<void> {\n${prelude.declarations.join('\n')}\n`;
  return { text: `${opening}${body}\n}\n`, firstLine: opening.split('\n').length };
}

const COMPILER_OPTIONS = (typeRoot: string): ts.CompilerOptions => ({
  strict: true,
  noEmit: true,
  skipLibCheck: true,
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  lib: ['lib.es2023.d.ts', 'lib.dom.d.ts'],
  types: ['node'],
  typeRoots: [typeRoot],
  jsx: ts.JsxEmit.Preserve,
  esModuleInterop: true,
});

/** Parsed declaration files (lib, @types/node, the package's types), shared by both compilations. */
const parsedDeclarations = new Map<string, ts.SourceFile | undefined>();

/** Compiles files and gives each one's diagnostics. */
function compile(files: string[], options: ts.CompilerOptions): Map<string, ts.Diagnostic[]> {
  const host = ts.createCompilerHost(options);
  const parse = host.getSourceFile.bind(host);
  host.getSourceFile = (name, language, ...rest) => {
    if (!name.endsWith('.d.ts') && !name.endsWith('.d.cts') && !name.endsWith('.d.mts')) return parse(name, language, ...rest);
    if (!parsedDeclarations.has(name)) parsedDeclarations.set(name, parse(name, language, ...rest));
    return parsedDeclarations.get(name);
  };
  const compiled = ts.createProgram({ rootNames: files, options, host });
  const byFile = new Map<string, ts.Diagnostic[]>();
  for (const diagnostic of ts.getPreEmitDiagnostics(compiled)) {
    const file = diagnostic.file ? path.resolve(diagnostic.file.fileName) : 'global';
    byFile.set(file, [...(byFile.get(file) ?? []), diagnostic]);
  }
  return byFile;
}

function transpile(text: string, module: ts.ModuleKind): string {
  return ts.transpileModule(text, {
    compilerOptions: { module, target: ts.ScriptTarget.ES2022, esModuleInterop: true, jsx: ts.JsxEmit.Preserve, verbatimModuleSyntax: false },
  }).outputText;
}

describe('documentation snippets', () => {
  let project: ConsumerProject;
  const fixtures: Fixture[] = [];
  let env: NodeJS.ProcessEnv;
  const typeErrors = new Map<string, string[]>();
  const freeNames = new Map<string, Set<string>>();
  const programs = new Map<string, { text: string; firstLine: number }>();
  let runDir = 0;
  /** What support/snippets/runner.mjs saw of each block, per module format, and what it printed. */
  const runs = new Map<'esm' | 'cjs', { results: Record<string, RunResult>; output: string }>();
  const vitestResults = new Map<string, RunResult & { passed: number }>();

  beforeAll(async () => {
    buildIfStale({ quiet: true });
    project = await consumerProject('snippets', () => true, { copy: false });
    await writeFile(path.join(project.dir, 'package.json'), '{ "name": "snippet-app", "private": true, "type": "module" }\n');
    // Commands the docs show that belong to the user's world, not ours.
    const stubs = path.join(project.dir, 'stubs');
    await mkdir(stubs);
    await writeFile(
      path.join(stubs, 'psql'),
      '#!/bin/sh\n# the photo column of the docs\' database\nprintf "profile_images/a.jpg\\nprofile_images/gone.jpg\\n"\n',
      { mode: 0o755 },
    );
    const needed = new Set([...DEFAULT_FIXTURES, ...snippets.flatMap((s) => s.directive?.needs ?? [])]);
    for (const name of needed) {
      const factory = FIXTURES[name];
      if (!factory) throw new Error(`a snippet needs the fixture "${name}", which test/support/snippets/fixtures.ts does not define`);
      fixtures.push(await factory());
    }
    env = {
      PATH: `${path.join(project.dir, 'node_modules/.bin')}:${stubs}:${process.env.PATH}`,
      HOME: project.dir,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      npm_config_update_notifier: 'false',
      npm_config_offline: 'true',
      ...Object.assign({}, ...fixtures.map((f) => f.env)),
    };

    // Which names each block uses without defining them: the compiler says so (JavaScript read as
    // TypeScript for this); the prelude supplies those.
    const namesDir = path.join(project.dir, 'free-names');
    const checkDir = path.join(project.dir, 'typecheck');
    await mkdir(namesDir);
    await mkdir(checkDir);
    const jsx = path.join(checkDir, 'jsx.d.ts');
    await writeFile(jsx, 'declare namespace JSX { interface IntrinsicElements { [name: string]: Record<string, unknown> } interface Element {} }\n');
    const code = snippets.filter((s) => isCode(s) && !s.directive?.skip);
    const nameFiles = new Map<string, Snippet>();
    for (const snippet of code) {
      const file = path.join(namesDir, `${slug(snippet)}.${snippet.kind === 'tsx' ? 'tsx' : 'ts'}`);
      await writeFile(file, `${snippet.code}\nexport {};\n`);
      nameFiles.set(file, snippet);
    }
    const typeRoot = path.join(project.dir, 'node_modules/@types');
    for (const [file, diagnostics] of compile([...nameFiles.keys(), jsx], { ...COMPILER_OPTIONS(typeRoot), noImplicitAny: false })) {
      const snippet = nameFiles.get(file);
      if (!snippet) continue;
      const names = new Set<string>();
      for (const d of diagnostics) {
        const match = /^(?:Cannot find name|No value exists in scope for the shorthand property) '([\w$]+)'/.exec(
          ts.flattenDiagnosticMessageText(d.messageText, '\n'),
        );
        if (match) names.add(match[1]!);
      }
      freeNames.set(snippet.id, names);
    }
    for (const snippet of code) programs.set(snippet.id, program(snippet, freeNames.get(snippet.id) ?? new Set()));

    // One strict compilation of every TypeScript block, with its prelude.
    const files = new Map<string, { snippet: Snippet; firstLine: number }>();
    for (const snippet of code.filter((s) => s.kind === 'ts' || s.kind === 'tsx')) {
      const { text, firstLine } = programs.get(snippet.id)!;
      const file = path.join(checkDir, `${slug(snippet)}.${snippet.kind}`);
      await writeFile(file, text);
      files.set(file, { snippet, firstLine });
    }
    for (const [file, diagnostics] of compile([...files.keys(), jsx], COMPILER_OPTIONS(typeRoot))) {
      const owner = files.get(file);
      for (const diagnostic of diagnostics) {
        const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
        const line = diagnostic.file && diagnostic.start !== undefined ? diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start).line + 1 : 0;
        const where = owner ? `${owner.snippet.file}:${owner.snippet.line + line - owner.firstLine + 1}` : file;
        const key = owner?.snippet.id ?? 'global';
        typeErrors.set(key, [...(typeErrors.get(key) ?? []), `${where}: TS${diagnostic.code} ${message}`]);
      }
    }

    // Every runnable block, as ESM and as CommonJS: one process per format, run side by side.
    const batch = code.filter((s) => runnable(s) && !isVitestFile(s));
    await Promise.all(
      (
        [
          ['esm', ts.ModuleKind.ESNext, 'mjs'],
          ['cjs', ts.ModuleKind.CommonJS, 'cjs'],
        ] as const
      ).map(async ([mode, module, ext]) => {
        const plan: Array<{ id: string; file: string; cwd: string }> = [];
        for (const snippet of batch) {
          const cwd = await workDir();
          const file = path.join(cwd, `${slug(snippet)}.${ext}`);
          await writeFile(file, transpile(programs.get(snippet.id)!.text, module));
          plan.push({ id: snippet.id, file, cwd });
        }
        const planFile = path.join(project.dir, `plan-${mode}.json`);
        const resultsFile = path.join(project.dir, `results-${mode}.json`);
        await writeFile(planFile, JSON.stringify(plan));
        const output = await exec(process.execPath, [path.join(ROOT, 'test/support/snippets/runner.mjs'), mode, planFile, resultsFile], project.dir, 300_000);
        runs.set(mode, { results: JSON.parse(await readFile(resultsFile, 'utf8')) as Record<string, RunResult>, output });
      }),
    );
    // The vitest files (contract-suite templates) in one vitest run.
    const vitestFiles = code.filter((s) => runnable(s) && isVitestFile(s));
    if (vitestFiles.length > 0) {
      const dir = await workDir();
      for (const snippet of vitestFiles)
        await writeFile(path.join(dir, `${slug(snippet)}.test.mjs`), transpile(programs.get(snippet.id)!.text, ts.ModuleKind.ESNext));
      const report = path.join(project.dir, 'vitest-report.json');
      await exec(
        process.execPath,
        [path.join(ROOT, 'node_modules/vitest/vitest.mjs'), 'run', '--root', dir, '--reporter', 'json', '--outputFile', report],
        dir,
        300_000,
      ).catch(() => undefined);
      const json = JSON.parse(await readFile(report, 'utf8')) as {
        testResults: Array<{
          name: string;
          status: string;
          message?: string;
          assertionResults: Array<{ fullName: string; status: string; failureMessages: string[] }>;
        }>;
      };
      for (const snippet of vitestFiles) {
        const file = json.testResults.find((r) => path.basename(r.name) === `${slug(snippet)}.test.mjs`);
        const failed = file?.assertionResults.filter((a) => a.status === 'failed') ?? [];
        vitestResults.set(snippet.id, {
          ok: !!file && file.status === 'passed' && file.assertionResults.length > 0,
          ms: 0,
          error: !file
            ? 'vitest did not run it'
            : `${file.message ?? ''}\n${failed.map((a) => `${a.fullName}: ${a.failureMessages.join('\n')}`).join('\n')}`.slice(0, 8000),
          passed: file?.assertionResults.filter((a) => a.status === 'passed').length ?? 0,
        });
      }
    }
  }, 600_000);

  afterAll(async () => {
    for (const fixture of fixtures) await fixture.stop().catch(() => undefined);
    if (!process.env.SNIPPETS_KEEP) await project?.remove();
  }, 60_000);

  /** A fresh folder for one run: the old media/ folder the docs copy from, and nothing else. */
  async function workDir(): Promise<string> {
    const dir = path.join(project.dir, `run-${++runDir}`);
    await mkdir(path.join(dir, 'media/profile_images'), { recursive: true });
    await writeFile(path.join(dir, 'media/profile_images/a.jpg'), Buffer.from('ffd8ffe000104a464946', 'hex'));
    // The photo column exported from the database, as the migration guide makes it.
    await writeFile(path.join(dir, 'paths.txt'), 'profile_images/a.jpg\nprofile_images/gone.jpg\n');
    // The app's withImages options, as the variants command's --config reads them.
    await writeFile(
      path.join(dir, 'images.config.js'),
      "export default { variants: { avatar: { width: 64, height: 64, fit: 'cover', format: 'webp', densities: [1, 2] } } };\n",
    );
    return dir;
  }

  async function exec(file: string, args: string[], cwd: string, timeout = 60_000): Promise<string> {
    try {
      const { stdout, stderr } = await execFileAsync(file, args, { cwd, env, timeout, maxBuffer: 16 * 1024 * 1024 });
      return `${stdout}${stderr}`;
    } catch (err) {
      const e = err as { code?: number; signal?: string; stdout?: string; stderr?: string };
      throw new Error(
        `${path.basename(file)} ${args.map((a) => path.basename(a)).join(' ')} in ${cwd}: exit ${e.code ?? e.signal}\n--- stdout\n${e.stdout}\n--- stderr\n${(e.stderr ?? '').slice(-4000)}`,
        { cause: err },
      );
    }
  }

  it('the compiler finds every type error of the prelude-free checks in a snippet, never outside one', () => {
    expect(typeErrors.get('global') ?? []).toEqual([]);
  });

  it('finds the blocks of every documented file, with few explained skips', () => {
    expect(snippets.length).toBeGreaterThan(40);
    const skips = snippets.filter((s) => s.directive?.skip !== undefined);
    for (const s of snippets) {
      if (s.directive?.skip === '' || s.directive?.compileOnly === '') throw new Error(`${s.id}: a skip or compile-only needs its reason`);
    }
    expect(skips.length, skips.map((s) => `${s.id}: ${s.directive!.skip}`).join('\n')).toBeLessThanOrEqual(MAX_SKIPS);
    console.log(
      `[snippets] ${snippets.length} blocks: ${snippets.filter(runnable).length} run, ${snippets.filter((s) => isCode(s) && !runnable(s) && !s.directive?.skip).length} compiled only, ${snippets.filter((s) => s.kind === 'sh' && !s.directive?.skip && !isInstallBlock(s)).length} shell run, ${snippets.filter((s) => isInstallBlock(s) && !s.directive?.skip).length} installs checked against package.json, ${snippets.filter((s) => s.kind === 'json').length} JSON parsed, ${snippets.filter((s) => s.kind === 'text').length} output samples or templates, ${skips.length} skipped:\n${skips.map((s) => `  ${s.id}: ${s.directive!.skip}`).join('\n')}`,
    );
  });

  for (const snippet of snippets) {
    const reason = snippet.directive?.skip;
    if (reason !== undefined) {
      if (snippet.kind === 'sh') {
        // Not run (it installs, benchmarks or needs an account), but what it names must exist.
        it(`${snippet.id} is not run (${reason}); the npm scripts and files it names exist`, () => {
          const scripts = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
          for (const [, name] of snippet.code.matchAll(/\bnpm run ([\w:-]+)/g)) expect(Object.keys(scripts), `npm run ${name}`).toContain(name);
          for (const [file] of snippet.code.matchAll(/\b(?:test|bench|examples|scripts)\/[\w./-]+\.(?:ts|mjs|js|md)\b/g))
            expect(existsSync(path.join(ROOT, file)), file).toBe(true);
        });
      } else {
        it.skip(`${snippet.id} (${snippet.lang}) skipped: ${reason}`, () => undefined);
      }
      continue;
    }
    if (snippet.kind === 'text') continue;

    if (snippet.kind === 'json') {
      it(`${snippet.id} is valid JSON`, () => {
        expect(() => JSON.parse(snippet.code)).not.toThrow();
      });
      continue;
    }

    if (snippet.kind === 'ts' || snippet.kind === 'tsx') {
      it(`${snippet.id} compiles under tsc --strict`, () => {
        expect(typeErrors.get(snippet.id) ?? [], (typeErrors.get(snippet.id) ?? []).join('\n')).toEqual([]);
      });
    }

    if (isInstallBlock(snippet)) {
      // Installing from the registry is not run; what it installs must be this package or one it
      // declares (an optional peer, or what the examples use), at a version range it accepts.
      it(`${snippet.id} installs only media-storage and packages it declares`, () => {
        const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;
        const declared = new Set(['media-storage', ...Object.keys(pkg.peerDependencies ?? {}), ...Object.keys(pkg.devDependencies ?? {})]);
        for (const line of snippet.code.split('\n')) {
          for (const word of line.replace(/#.*/, '').trim().split(/\s+/).slice(2)) {
            if (word.startsWith('-')) continue;
            const name = word.replace(/^(@?[^@]+)@.*$/, '$1');
            expect(declared, `${snippet.id}: npm install ${word}`).toContain(name);
          }
        }
      });
      continue;
    }

    if (snippet.kind === 'sh') {
      it(`${snippet.id} runs in bash`, async () => {
        const dir = await workDir();
        await exec('bash', ['-e', '-o', 'pipefail', '-c', snippet.code], dir, 120_000);
      }, 150_000);
      continue;
    }

    if (!runnable(snippet)) {
      if (snippet.kind === 'js') {
        it(`${snippet.id} parses (compile-only: ${snippet.directive?.compileOnly})`, () => {
          const out = ts.transpileModule(snippet.code, { reportDiagnostics: true, compilerOptions: { allowJs: true } });
          expect(out.diagnostics ?? []).toEqual([]);
        });
      }
      continue;
    }

    if (isVitestFile(snippet)) {
      it(`${snippet.id} passes under vitest (ESM)`, () => {
        const result = vitestResults.get(snippet.id);
        expect(result?.ok, result?.error).toBe(true);
      });
      continue;
    }

    for (const [format, mode] of [
      ['ESM', 'esm'],
      ['CommonJS', 'cjs'],
    ] as const) {
      it(`${snippet.id} runs as ${format}`, () => {
        const result = runs.get(mode)?.results[snippet.id];
        expect(result, `${snippet.id} was not run`).toBeDefined();
        expect(result!.ok, `${result!.error ?? ''}${result!.stray ? `\nunhandled: ${result!.stray.join('\n')}` : ''}`).toBe(true);
      });
    }
  }
});

/** GitHub's anchor for a heading: lower-cased, punctuation dropped, spaces as hyphens. */
function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

describe('documentation links', () => {
  // The published package ships README.md, docs/ and the examples' sources (package.json "files"),
  // so a relative link works on npm and in node_modules as on GitHub only if its target ships too.
  const packed = new Set(
    (JSON.parse(execFileSyncText('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'])) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map(
      (f) => f.path,
    ),
  );

  it('the package ships its docs and the examples the README links to', () => {
    for (const file of documentedFiles()) expect(packed, file).toContain(file);
  });

  for (const file of documentedFiles()) {
    it(`every relative link of ${file} points at a shipped file (and an existing heading)`, () => {
      const text = readFileSync(path.join(ROOT, file), 'utf8').replace(/```[\s\S]*?```/g, '');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(target!)) continue;
        const [linkPath, fragment] = target!.split('#') as [string, string | undefined];
        const resolved = linkPath === '' ? file : path.posix.normalize(path.posix.join(path.posix.dirname(file), linkPath));
        expect(packed, `${file}: ${target} (${resolved})`).toContain(resolved);
        if (fragment && resolved.endsWith('.md')) {
          const headings = readFileSync(path.join(ROOT, resolved), 'utf8')
            .split('\n')
            .filter((l) => /^#{1,6} /.test(l))
            .map((l) => anchorOf(l.replace(/^#+ /, '')));
          expect(headings, `${file}: ${target}`).toContain(fragment);
        }
      }
    });
  }
});

function execFileSyncText(command: string, args: string[]): string {
  return execFileSync(command, args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
}

// Every name the package exports has a doc comment: reads the built declarations (dist/, made by
// `npm run build`) of the root and every subpath entry, as a user's editor sees them, and lists
// exported names without one. Names in scripts/tsdoc-baseline.json (undocumented when this check
// came in) are reported but do not fail; document one and remove it from there. `--update`
// rewrites the baseline to what is missing now.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { subpathEntries } from './entry-points.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BASELINE = path.join(ROOT, 'scripts', 'tsdoc-baseline.json');
const entries = [['media-storage', 'dist/index.d.ts'], ...subpathEntries().map((name) => [`media-storage/${name}`, `dist/${name}/index.d.ts`])];
for (const [, file] of entries) if (!existsSync(path.join(ROOT, file))) throw new Error(`${file} is missing: run npm run build first`);

const program = ts.createProgram(
  entries.map(([, file]) => path.join(ROOT, file)),
  { noEmit: true, skipLibCheck: true, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext },
);
const checker = program.getTypeChecker();
const missing = [];
for (const [specifier, file] of entries) {
  const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(path.join(ROOT, file)));
  for (const exported of moduleSymbol ? checker.getExportsOfModule(moduleSymbol) : []) {
    const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
    const documented = symbol.getDocumentationComment(checker).length > 0 || (symbol.declarations ?? []).some((d) => ts.getJSDocCommentsAndTags(d).length > 0);
    if (!documented) missing.push(`${specifier}: ${exported.name}`);
  }
}
missing.sort();
if (process.argv.includes('--update')) {
  writeFileSync(BASELINE, `${JSON.stringify(missing, null, 2)}\n`);
  console.log(`tsdoc: baseline written, ${missing.length} undocumented exports`);
} else {
  const baseline = new Set(existsSync(BASELINE) ? JSON.parse(readFileSync(BASELINE, 'utf8')) : []);
  const fresh = missing.filter((name) => !baseline.has(name));
  console.log(`tsdoc: ${missing.length} exported names without a doc comment (${missing.length - fresh.length} in the baseline)`);
  if (fresh.length > 0) {
    console.error(`Exported without a doc comment (add /** ... */ to the declaration):\n  ${fresh.join('\n  ')}`);
    process.exit(1);
  }
}

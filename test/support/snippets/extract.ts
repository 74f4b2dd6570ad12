// Finds every fenced code block of README.md, docs/*.md and examples/*/README.md, with the
// `<!-- snippet: ... -->` directive written on the line before it, if any.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

export const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..');

/**
 * What a block is, by its info string: code that is type-checked and run, shell that is run,
 * JSON that is parsed, or text that is none of these (output samples, templates).
 */
export type Kind = 'ts' | 'tsx' | 'js' | 'sh' | 'json' | 'text';

export interface Snippet {
  /** `docs/s3.md:12`: the file and the line of the opening fence. */
  id: string;
  file: string;
  line: number;
  lang: string;
  kind: Kind;
  code: string;
  /**
   * The directive before the block: `skip: reason` (not run), `compile-only: reason` (checked, not
   * run), `needs: fixture[, fixture]` (run with those fixtures' servers, see fixtures.ts).
   */
  directive?: { skip?: string; compileOnly?: string; needs: string[] };
}

const KINDS: Record<string, Kind> = {
  ts: 'ts',
  typescript: 'ts',
  tsx: 'tsx',
  js: 'js',
  javascript: 'js',
  mjs: 'js',
  sh: 'sh',
  bash: 'sh',
  shell: 'sh',
  json: 'json',
};

/** The Markdown files whose blocks are checked: new docs are picked up without registering. */
export function documentedFiles(): string[] {
  const docs = readdirSync(path.join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`);
  const examples = readdirSync(path.join(ROOT, 'examples'), { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => `examples/${d.name}/README.md`)
    .filter((f) => {
      try {
        readFileSync(path.join(ROOT, f));
        return true;
      } catch {
        return false;
      }
    });
  return ['README.md', ...docs.sort(), ...examples.sort()];
}

function parseDirective(text: string): Snippet['directive'] {
  const directive: NonNullable<Snippet['directive']> = { needs: [] };
  for (const part of text
    .split(/;\s*(?=(?:skip|compile-only|needs):)/)
    .map((p) => p.trim())
    .filter(Boolean)) {
    const [name, ...rest] = part.split(':');
    const value = rest.join(':').trim();
    if (name === 'skip') directive.skip = value;
    else if (name === 'compile-only') directive.compileOnly = value;
    else if (name === 'needs')
      directive.needs.push(
        ...value
          .split(',')
          .map((v) => v.trim())
          .filter(Boolean),
      );
    else throw new Error(`unknown snippet directive "${part}" (use skip: reason, compile-only: reason or needs: fixture)`);
  }
  return directive;
}

export function extractSnippets(file: string): Snippet[] {
  const lines = readFileSync(path.join(ROOT, file), 'utf8').split('\n');
  const snippets: Snippet[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([\w+-]*)/.exec(lines[i]!);
    if (!open) continue;
    const [, indent, fence, lang] = open;
    let end = i + 1;
    while (end < lines.length && !lines[end]!.trimStart().startsWith(fence!)) end++;
    const before = lines
      .slice(0, i)
      .reverse()
      .find((l) => l.trim() !== '');
    const directive = before && /^\s*<!--\s*snippet:(.*?)-->\s*$/.exec(before);
    snippets.push({
      id: `${file}:${i + 1}`,
      file,
      line: i + 1,
      lang: lang!,
      kind: KINDS[lang!.toLowerCase()] ?? 'text',
      code: lines
        .slice(i + 1, end)
        .map((l) => (l.startsWith(indent!) ? l.slice(indent!.length) : l))
        .join('\n'),
      ...(directive ? { directive: parseDirective(directive[1]!) } : {}),
    });
    i = end;
  }
  return snippets;
}

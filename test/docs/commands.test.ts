// Every command the documentation gives runs as written on a fresh machine: TypeScript runs on
// the project's Node 22 (npm scripts or `npx node`), never on whatever `node` is first on PATH
// (Debian's Node 20 refuses .ts files with ERR_UNKNOWN_FILE_EXTENSION), and every `npm run X`
// names a script package.json has.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('../../', import.meta.url).pathname;

function files(dir: string, ext: RegExp): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && ext.test(e.name) && !e.parentPath.includes('node_modules'))
    .map((e) => join(e.parentPath, e.name).slice(ROOT.length));
}

/** The documents people read commands from: the README, docs/, deploy/, examples/ and test/ notes,
 *  and the "Run:" lines at the top of each benchmark. */
const DOCUMENTS = [
  'README.md', ...files('docs', /\.md$/), ...files('deploy', /\.md$/), ...files('examples', /\.md$/), ...files('test', /README\.md$/),
  ...files('bench', /\.ts$/).filter((f) => !f.startsWith('bench/lib/')),
];

const scripts = Object.keys((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts);

/** `node [flags] file.ts`, and the word before it (which must be npx). */
const NODE_TS = /(\S+\s+)?\bnode\s+(?:-{1,2}[\w-]+(?:=\S+)?\s+)*[\w./-]+\.ts\b/g;
const NPM_RUN = /\bnpm run ([\w:-]+)/g;

function problemsIn(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  // In code, only comments document commands.
  const lines = file.endsWith('.ts') ? text.split('\n').filter((l) => /^\s*\/\//.test(l)) : text.split('\n');
  const problems: string[] = [];
  // A wrapped Markdown line can split a command: look at each line joined with the next.
  lines.forEach((line, i) => {
    const joined = `${line} ${lines[i + 1] ?? ''}`;
    for (const m of joined.matchAll(NODE_TS)) {
      if (m.index >= line.length) continue;
      if ((m[1] ?? '').replace(/\W/g, '') !== 'npx') {
        problems.push(`${file}:${i + 1}: "${m[0].trim()}" needs Node 22: use an npm script or npx node`);
      }
    }
    for (const m of line.matchAll(NPM_RUN)) {
      if (!scripts.includes(m[1]!)) problems.push(`${file}:${i + 1}: "npm run ${m[1]}" is not a script in package.json`);
    }
  });
  return problems;
}

describe('documented commands', () => {
  it('run TypeScript on the project\'s Node and name existing npm scripts', () => {
    expect(DOCUMENTS.length).toBeGreaterThan(10);
    expect(DOCUMENTS.flatMap(problemsIn)).toEqual([]);
  });

  it('catches the commands that fail on the system Node', () => {
    // The checker itself: these are the shapes issue 20 found in docs/benchmarks.md.
    const found = (line: string) => [...`${line} `.matchAll(NODE_TS)].filter((m) => (m[1] ?? '').replace(/\W/g, '') !== 'npx').length;
    expect(found('sudo node bench/convergence.ts 3 5')).toBe(1);
    expect(found('(`HALB_LOG_LEVEL=debug node bench/convergence.ts 1 2`,')).toBe(1);
    expect(found('node --max-old-space-size=128 bench/scale.ts')).toBe(1);
    expect(found('npx node bench/render.ts')).toBe(0);
    expect(found('Regenerate: `npx node test/digitalocean/openapi/make-subset.ts [bundle.yaml]`')).toBe(0);
    expect(found('npm run bench:convergence -- 3 5')).toBe(0);
  });
});

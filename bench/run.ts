// `npm run bench`: every benchmark in this folder, one after the other, each printing its own
// figures. Root is needed for the fabric benchmark (network namespaces); without it, it is
// skipped with a note. `npm run bench -- render kube` runs only the named ones.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';

const dir = new URL('./', import.meta.url).pathname;
const wanted = process.argv.slice(2);
const benches = readdirSync(dir).filter((f) => f.endsWith('.ts') && f !== 'run.ts').sort()
  .filter((f) => !wanted.length || wanted.some((w) => f.startsWith(w)));
let failed = 0;
for (const file of benches) {
  console.log(`\n== ${file}`);
  if (file.startsWith('fabric') && process.getuid?.() !== 0) {
    console.log('skipped: needs root (network namespaces)');
    continue;
  }
  const r = spawnSync(process.execPath, [dir + file], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);

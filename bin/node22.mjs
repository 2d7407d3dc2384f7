// halb's commands run their TypeScript directly on Node 22's type stripping; no build step.
// If an older node started one (for example the system node found first on PATH, or kubectl
// running the kubectl-halb plugin), it re-runs on the Node 22 that the `node` devDependency
// ships, so the commands work straight after `npm ci`. Plain JavaScript: it must load on Node 20.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Imports `entry` (relative to `self`, the calling script's import.meta.url) on Node 22 or later. */
export async function runOnNode22(self, entry, name) {
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (major > 22 || (major === 22 && minor >= 18)) {
    await import(new URL(entry, self).href);
    return;
  }
  const bundled = fileURLToPath(new URL('../node_modules/node/bin/node', import.meta.url));
  if (!existsSync(bundled)) {
    console.error(`${name}: Node ${process.versions.node} is too old; Node 22.19 or later is required (run npm ci).`);
    process.exit(1);
  }
  const result = spawnSync(bundled, [fileURLToPath(self), ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(result.status ?? 1);
}

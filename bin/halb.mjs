#!/usr/bin/env node
// The halb CLI runs its TypeScript directly on Node 22's type stripping; no build step.
// If an older node started us (for example the system node found first on PATH), re-run on
// the Node 22 that the `node` devDependency ships, so `npx halb` works straight after `npm ci`.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  const bundled = fileURLToPath(new URL('../node_modules/node/bin/node', import.meta.url));
  if (!existsSync(bundled)) {
    console.error(`halb: Node ${process.versions.node} is too old; Node 22.19 or later is required (run npm ci).`);
    process.exit(1);
  }
  const result = spawnSync(bundled, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(result.status ?? 1);
}
await import('../src/cli/main.ts');

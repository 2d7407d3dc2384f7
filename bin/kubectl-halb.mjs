#!/usr/bin/env node
// The kubectl plugin: kubectl finds `kubectl-halb` on PATH and runs it for `kubectl halb ...`.
// On Node 22 (node22.mjs re-runs it there when an older node started it).
import { runOnNode22 } from './node22.mjs';

await runOnNode22(import.meta.url, '../src/plugin/main.ts', 'kubectl-halb');

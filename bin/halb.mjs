#!/usr/bin/env node
// The halb CLI, on Node 22 (node22.mjs re-runs it there when an older node started it).
import { runOnNode22 } from './node22.mjs';

await runOnNode22(import.meta.url, '../src/cli/main.ts', 'halb');

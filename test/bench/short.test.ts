// CI's short version of every benchmark (`npm run bench` runs the full ones): few trials, each
// benchmark as its own process, as `npm run bench:<name>` would run it. A benchmark exits 1 only
// when a bound is broken by a wide margin (here three times a time bound, as the machine is
// shared with the rest of the suite; any failed request, false failover, duplicate, orphan or
// half-written config), so timing noise does not fail CI.
// Figures go to a scratch folder, not over the committed bench/results.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = new URL('../../', import.meta.url).pathname;
const results = mkdtempSync(join(tmpdir(), 'halb-bench-short-'));
afterAll(() => rmSync(results, { recursive: true, force: true }));

const runs: [name: string, args: string[], env: Record<string, string>, timeoutMs: number][] = [
  ['render', [], {}, 120_000],
  ['kube', ['100'], {}, 120_000],
  ['digitalocean-resync', [], {}, 120_000],
  ['fabric-floating', ['3'], {}, 120_000],
  ['fabric-lifecycle', ['2'], {}, 120_000],
  ['failover', ['1'], { HALB_BENCH_PROFILES: 'default' }, 300_000],
  ['convergence', ['1', '2'], {}, 300_000],
  ['reload', ['5'], {}, 300_000],
  // 8 server edits and 2 certificate rotations under 20 keep-alive connections: none cut, no reload.
  ['runtime', ['8', '2', '20'], {}, 300_000],
  ['planned-failover', ['1'], {}, 300_000],
  ['idle', ['30'], {}, 300_000],
  ['faults', ['--short'], {}, 600_000],
];

describe('every benchmark, short', () => {
  it.each(runs)('%s %j', (name, args, env, timeoutMs) => {
    const r = spawnSync(process.execPath, [join(ROOT, 'bench', `${name}.ts`), ...args], {
      encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, HALB_BENCH_MARGIN: '3', ...env, HALB_BENCH_RESULTS_DIR: results },
    });
    const output = `${r.stdout}\n${r.stderr}`;
    console.log(`--- bench ${name} ${args.join(' ')} ---\n${output.trim().split('\n').slice(-25).join('\n')}`);
    expect(r.signal, `${name} timed out`).toBeNull();
    expect(r.status, `${name} exited ${r.status}`).toBe(0);
  }, 620_000);
});

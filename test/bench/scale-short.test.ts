// CI's run of the scale benchmark: `node bench/scale.ts --short` (10 objects created through the
// DigitalOcean simulator under its real rate limits, 2 stand-in hosts each, 35 s of steady
// state). It fails only when a bound is broken by a wide margin (twice the bound): the bounds
// live in the benchmark, and this checks what it wrote.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = new URL('../../', import.meta.url).pathname;
// Figures go to a scratch folder, not over the committed bench/results.
const RESULTS = mkdtempSync(join(tmpdir(), 'halb-scale-short-'));
afterAll(() => rmSync(RESULTS, { recursive: true, force: true }));
const RESULT = join(RESULTS, 'scale-short.json');
// The benchmark is run by Node 22 (type stripping), whichever node runs vitest.
const NODE = existsSync(join(ROOT, 'node_modules/.bin/node')) ? join(ROOT, 'node_modules/.bin/node') : process.execPath;

interface Result {
  allReady: boolean;
  objects: number;
  hostsConfigured: number;
  hostsTotal: number;
  masters: number;
  targets: { target: string; value: number; bound: number }[];
}

describe('scale benchmark, short', () => {
  it('brings every object Ready and keeps memory, DigitalOcean requests and resync within twice their bounds', async () => {
    const output: string[] = [];
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(NODE, [join(ROOT, 'bench/scale.ts'), '--short'], {
        cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HALB_BENCH_RESULTS_DIR: RESULTS },
      });
      child.stdout.on('data', (c: Buffer) => output.push(c.toString()));
      child.stderr.on('data', (c: Buffer) => output.push(c.toString()));
      child.once('exit', resolve);
    });
    const printed = output.join('');
    expect(existsSync(RESULT), printed).toBe(true);
    const result = JSON.parse(readFileSync(RESULT, 'utf8')) as Result;
    expect(result.allReady, printed).toBe(true);
    expect(result.hostsConfigured).toBe(result.objects * 2);
    expect(result.masters).toBe(result.objects);
    for (const t of result.targets) expect(t.value, `${t.target}\n${printed}`).toBeLessThanOrEqual(2 * t.bound);
    expect(code, printed).toBe(0);
  }, 180_000);
});

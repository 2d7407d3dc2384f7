// deploy/argocd/health.lua in Argo CD's own Lua VM: halb-argocd (test/upstream/argocd) calls
// argo-cd's util/lua with the script as the argocd-cm health customization of HALoadBalancer,
// exactly as Argo CD's application controller does: gopher-lua, the libraries Argo CD opens for
// a customization (base, table, package, its safe os), `obj` decoded as Argo CD decodes it.
// Every case of deploy/argocd/health_test.yaml must come out as the file says.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { upstreamBinaries, upstreamBuilt } from '../../src/sandbox/kube-real/upstream.ts';

const DIR = join(import.meta.dirname, '../../deploy/argocd');
const built = process.env.HALB_KUBE === 'real' || upstreamBuilt(['halb-argocd']);
if (!built) console.log('skipped: halb-argocd is not built (test/upstream/build.sh halb-argocd)');

interface Health { status: string; message: string }

function argocd(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const { 'halb-argocd': binary } = upstreamBinaries(['halb-argocd']);
  return new Promise((resolve) => {
    execFile(binary, args, { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

describe.skipIf(!built)('deploy/argocd/health.lua in Argo CD\'s Lua VM', () => {
  const cases = (parse(readFileSync(join(DIR, 'health_test.yaml'), 'utf8')) as
    { tests: { healthStatus: Health; inputPath: string }[] }).tests;
  const scratch = mkdtempSync(join(tmpdir(), 'halb-argocd-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('gives every case of health_test.yaml the status and message it lists', async () => {
    expect(cases.length).toBeGreaterThanOrEqual(10);
    const r = await argocd(['health', join(DIR, 'health.lua'), ...cases.map((c) => join(DIR, c.inputPath))]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const answers = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Health);
    expect(answers.map((a, i) => ({ input: cases[i]!.inputPath, ...a })))
      .toEqual(cases.map((c) => ({ input: c.inputPath, ...c.healthStatus })));
  });

  it('refuses a script that reaches for a library Argo CD does not open to customizations', async () => {
    const broken = join(scratch, 'broken.lua');
    writeFileSync(broken, readFileSync(join(DIR, 'health.lua'), 'utf8').replace('local hs =', 'local _ = string.lower("X")\nlocal hs ='));
    const r = await argocd(['health', broken, join(DIR, cases[0]!.inputPath)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/string/);
  });
});

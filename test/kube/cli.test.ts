// `halb sandbox kube` as a person runs it: a foreground process that writes a kubeconfig, serves
// kubectl, and keeps its objects in --state across a restart.
import { spawn } from 'node:child_process';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { FIXTURES, KUBECTL, requireKubectl, waitFor } from './helpers.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const NODE = process.execPath;

async function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

function runCli(args: string[]): { output: () => string; exited: Promise<number>; stop: () => Promise<number> } {
  const script = `import { sandboxKubeCommand } from ${JSON.stringify(join(ROOT, 'src/sandbox/cli/kube.ts'))}; ` +
    `process.exitCode = await sandboxKubeCommand(${JSON.stringify(args)});`;
  const child = spawn(NODE, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number>((r) => child.on('exit', (code) => r(code ?? -1)));
  return {
    output: () => out,
    exited,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

describe('halb sandbox kube', () => {
  requireKubectl();
  const dir = mkdtempSync(join(tmpdir(), 'halb-kube-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('prints help and rejects bad flags', async () => {
    const help = runCli(['--help']);
    expect(await help.exited).toBe(0);
    expect(help.output()).toContain('Usage: halb sandbox kube');
    const bad = runCli(['--port', 'abc']);
    expect(await bad.exited).toBe(2);
    expect(bad.output()).toContain('--port: expected an integer 0-65535, got "abc"');
    const noDir = runCli(['--port', '0', '--state', join(dir, 'missing/state.json')]);
    expect(await noDir.exited).toBe(1);
    expect(noDir.output()).toContain(`state file ${join(dir, 'missing/state.json')}: cannot write: ENOENT`);
  });

  it('serves kubectl from the written kubeconfig and keeps state across a restart', async () => {
    const port = await freePort();
    const kubeconfig = join(dir, 'kc.yaml');
    const state = join(dir, 'state.json');
    const args = ['--port', String(port), '--kubeconfig', kubeconfig, '--state', state, '--log-level', 'warn'];
    const kubectl = (a: string[]) =>
      promisify(execFile)(KUBECTL, [...a, `--cache-dir=${join(dir, 'cache')}`], {
        env: { ...process.env, KUBECONFIG: kubeconfig, HOME: dir },
      });
    let cli = runCli(args);
    try {
      await waitFor('the listening line', () => cli.output().includes(`listening on http://127.0.0.1:${port}`), 30_000);
      expect(readFileSync(kubeconfig, 'utf8')).toContain('insecure-skip-tls-verify: true');
      // One command with the CRD and a resource of its kind: on a cold discovery cache kubectl
      // fails the resource ("ensure CRDs are installed first"), as it does against a real cluster;
      // the same command again finds the kind.
      const both = ['apply', '-f', join(ROOT, 'crds'), '-f', join(FIXTURES, 'web.yaml')];
      const first = await kubectl(both).catch((err: { stdout: string; stderr: string }) => err);
      expect(first.stdout).toBe('customresourcedefinition.apiextensions.k8s.io/haloadbalancers.halb.dev created\n');
      expect(first.stderr).toContain(
        'no matches for kind "HALoadBalancer" in version "halb.dev/v1alpha1"\nensure CRDs are installed first');
      expect((await kubectl(both)).stdout)
        .toBe('customresourcedefinition.apiextensions.k8s.io/haloadbalancers.halb.dev unchanged\nhaloadbalancer.halb.dev/web created\n');
      expect((await kubectl(['get', 'halb'])).stdout).toMatch(/^NAME\s+READY\s+FLOATING-IP\s+ACTIVE\s+AGE\nweb\s+\d+s\n$/);
      const rv = Number((await kubectl(['get', 'halb', 'web', '-o', 'jsonpath={.metadata.resourceVersion}'])).stdout);
      expect(await cli.stop()).toBe(0);
      cli = runCli(args);
      await waitFor('the restart', () => cli.output().includes('listening on'), 30_000);
      expect((await kubectl(['get', 'halb', 'web', '-o', 'jsonpath={.spec.region}'])).stdout).toBe('nyc3');
      await kubectl(['label', 'halb', 'web', 'restarted=yes']);
      expect(Number((await kubectl(['get', 'halb', 'web', '-o', 'jsonpath={.metadata.resourceVersion}'])).stdout)).toBeGreaterThan(rv);
    } finally {
      expect(await cli.stop()).toBe(0);
    }
  });
});

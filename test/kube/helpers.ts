// Shared setup for the emulator's integration tests: a fresh emulator on a free port, a
// kubeconfig and a kubectl cache in a temp folder, and a kubectl runner that never reads ~/.kube.
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeEmulator, KubeEmulatorOptions } from '../../src/sandbox/kube/index.ts';
import { startKubeEmulator } from '../../src/sandbox/kube/index.ts';

import { waitFor as poll } from '../wait.ts';

/** The shared poller, with this suite's patience (10_000 ms) and pace (50 ms). */
export const waitFor = <T>(
  what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000, intervalMs = 50,
): Promise<T> =>
  poll(what, fn, timeoutMs, intervalMs);

export const KUBECTL = process.env.KUBECTL ?? '/usr/bin/kubectl';
export const FIXTURES = join(import.meta.dirname, 'fixtures');
export const CRD_FILE = join(import.meta.dirname, '../../crds/haloadbalancer.yaml');

export interface Harness {
  emu: KubeEmulator;
  dir: string;
  kubeconfig: string;
  kubectl: (args: string[], stdin?: string) => Promise<{ code: number; stdout: string; stderr: string }>;
  /** Starts `kubectl args` in the background (for -w and blocking deletes). */
  spawnKubectl: (args: string[]) => { child: ChildProcess; output: () => string; exited: Promise<number> };
  close: () => Promise<void>;
}

/** These tests exist to run the real kubectl; without it they must fail, not pass vacuously. */
export function requireKubectl(): void {
  try {
    accessSync(KUBECTL, constants.X_OK);
  } catch {
    throw new Error(`kubectl not found at ${KUBECTL}: install kubectl v1.32 or set KUBECTL to its path`);
  }
}

export async function startHarness(opts: KubeEmulatorOptions = {}): Promise<Harness> {
  requireKubectl();
  const dir = mkdtempSync(join(tmpdir(), 'halb-kube-'));
  const emu = await startKubeEmulator({ port: 0, ...opts });
  const kubeconfig = join(dir, 'kubeconfig');
  emu.writeKubeconfig(kubeconfig);
  const base = ['--kubeconfig', kubeconfig, `--cache-dir=${join(dir, 'cache')}`];
  const env = { ...process.env, HOME: dir, KUBECONFIG: kubeconfig };
  const children = new Set<ChildProcess>();
  return {
    emu, dir, kubeconfig,
    kubectl: (args, stdin) => new Promise((resolve) => {
      const child = execFile(KUBECTL, [...base, ...args], { env, timeout: 30_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
      });
      if (stdin !== undefined) child.stdin!.end(stdin);
    }),
    spawnKubectl(args) {
      const child = spawn(KUBECTL, [...base, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      children.add(child);
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number>((resolve) => child.on('exit', (code) => {
        children.delete(child);
        resolve(code ?? -1);
      }));
      return { child, output: () => out, exited };
    },
    async close() {
      for (const c of children) c.kill('SIGTERM');
      await emu.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A kubectl runner that expects success with nothing on stderr, and returns stdout. */
export function kubectlOK(h: Harness): (args: string[], stdin?: string) => Promise<string> {
  return async (args, stdin) => {
    const r = await h.kubectl(args, stdin);
    if (r.code !== 0 || r.stderr !== '') throw new Error(`kubectl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  };
}

/** Applies the HALoadBalancer CRD and waits until the emulator serves it. */
export async function installCRD(h: Harness): Promise<void> {
  const ok = kubectlOK(h);
  await ok(['apply', '-f', CRD_FILE]);
  await ok(['wait', '--for=condition=Established', 'crd/haloadbalancers.halb.dev', '--timeout=5s']);
}

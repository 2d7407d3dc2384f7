// What the sandbox benchmarks share: a whole sandbox in this process (emulator, simulator,
// fabric with the real daemons, operator), kubectl, the HALoadBalancer read straight from the
// emulator, commands inside droplets, statistics, a table and a JSON summary.
import { execFile } from 'node:child_process';
import { cpus, totalmem, tmpdir } from 'node:os';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger } from '../../src/log.ts';
import { destroySandbox, startSandbox, type RunningSandbox } from '../../src/sandbox/sandbox.ts';
import type { SimulatorDelays } from '../../src/sandbox/digitalocean/simulator.ts';
import { DEBIAN_13, ensureRootfs } from '../../src/sandbox/fabric/index.ts';

import { waitFor as poll } from '../../test/wait.ts';

/** The shared poller, with this suite's patience (60_000 ms) and pace (100 ms). */
export const waitFor = <T>(
  what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 60_000, intervalMs = 100,
): Promise<T> =>
  poll(what, fn, timeoutMs, intervalMs);

export const ROOT = new URL('../../', import.meta.url).pathname;
const KUBECTL = process.env.KUBECTL ?? '/usr/bin/kubectl';

export interface LBStatus {
  floatingIP?: string;
  activeNode?: string;
  nodes?: { name: string; vrrpState: string; configHash?: string }[];
  conditions?: { type: string; status: string; reason: string; message: string }[];
}

export interface Bench {
  sandbox: RunningSandbox;
  clientNamespace: string;
  kubectl(args: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string }>;
  /** The object as the emulator holds it, without kubectl's start-up cost in a polling loop. */
  get(name: string): Promise<{ spec?: Record<string, unknown>; status?: LBStatus } | undefined>;
  /** A JSON merge patch of the object, straight to the emulator. */
  patch(name: string, patch: unknown): Promise<void>;
  exec(droplet: string, argv: string[]): Promise<string>;
  close(): Promise<void>;
}

/** Root is needed for network namespaces; without it the benchmark says so and exits 0. */
export function skipWithoutRoot(): void {
  if (process.getuid?.() !== 0) {
    console.log('skipped: needs root (network namespaces)');
    process.exit(0);
  }
}

function run(
  file: string, args: string[], env: NodeJS.ProcessEnv, stdin?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(file, args, { env, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
    if (stdin !== undefined) child.stdin!.end(stdin);
  });
}

/**
 * The droplet image the benchmarks' load balancers run: HALB_DROPLET_IMAGE, else the API's
 * default (ubuntu-24-04-x64, this machine's binaries).
 */
export const DROPLET_IMAGE = process.env.HALB_DROPLET_IMAGE || 'ubuntu-24-04-x64';

export async function startBench(
  options: { delays: Partial<SimulatorDelays>; resyncIntervalMs?: number; operator?: boolean },
): Promise<Bench> {
  const stateDir = mkdtempSync(join(tmpdir(), 'halb-bench-'));
  const log = createLogger({ level: process.env.HALB_LOG_LEVEL ?? 'silent', name: 'bench' });
  // Built (or found cached) before the sandbox routes its ranges: it downloads.
  if (DROPLET_IMAGE === DEBIAN_13.slug) await ensureRootfs({ log });
  let sandbox: RunningSandbox;
  try {
    sandbox = await startSandbox({
      stateDir, log, operator: options.operator ?? true, delays: options.delays,
      resyncIntervalMs: options.resyncIntervalMs ?? 2000, backstopGraceMs: 10_000,
    });
  } catch (err) {
    await destroySandbox(stateDir, log);
    throw err;
  }
  const env = { ...process.env, HOME: stateDir, KUBECONFIG: sandbox.status.kubeconfig };
  const path = (name: string) => `${sandbox.kube.url}/apis/halb.dev/v1alpha1/namespaces/default/haloadbalancers/${name}`;
  let closed = false;
  const bench: Bench = {
    sandbox,
    clientNamespace: sandbox.fabric.clientNamespace,
    kubectl: (args, stdin) => run(KUBECTL, [`--cache-dir=${join(stateDir, 'kubectl-cache')}`, ...args], env, stdin),
    async get(name) {
      const r = await fetch(path(name));
      return r.ok ? await r.json() as { spec?: Record<string, unknown>; status?: LBStatus } : undefined;
    },
    async patch(name, patch) {
      const r = await fetch(path(name), {
        method: 'PATCH', headers: { 'content-type': 'application/merge-patch+json' }, body: JSON.stringify(patch),
      });
      if (!r.ok) throw new Error(`patching ${name} failed: ${r.status} ${await r.text()}`);
    },
    async exec(droplet, argv) {
      return (await sandbox.fabric.execInDroplet(droplet, argv)).stdout;
    },
    async close() {
      if (closed) return;
      closed = true;
      await sandbox.stop();
      await destroySandbox(stateDir, log);
    },
  };
  // Ctrl-C, or a timeout's SIGTERM (CI's short runs), still removes the namespaces and processes.
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(signal, () => { void bench.close().finally(() => process.exit(code)); });
  }
  return bench;
}

/** How far past a time bound a benchmark may land before it exits 1: twice the bound, or
 *  HALB_BENCH_MARGIN times it (CI's short runs share two cores with the test suite). */
export const failMargin = (): number => Number(process.env.HALB_BENCH_MARGIN ?? 2);

/** A count given on the command line (argv[position]), or the default: a whole number >= 1. */
export function countArgument(position: number, name: string, fallback: number): number {
  const raw = process.argv[position];
  const value = Number(raw ?? fallback);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name}: expected a whole number >= 1, got ${raw}`);
  return value;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const nowMs = () => performance.timeOrigin + performance.now();


export const isReady = (s: LBStatus | undefined) => s?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

/** `kubectl apply` of a two-node HALoadBalancer, then its status once it is Ready. */
export async function applyUntilReady(b: Bench, name: string, failover: Record<string, unknown> = {}): Promise<LBStatus> {
  const applied = await b.kubectl(['apply', '-f', '-'], manifest(name, failover));
  if (applied.code !== 0) throw new Error(`kubectl apply failed: ${applied.stderr}`);
  return waitFor(`${name} Ready`, async () => {
    const o = await b.get(name);
    return isReady(o?.status) ? o!.status! : undefined;
  }, 180_000, 250);
}

/** The manifest of examples/basic.yaml under another name, with spec overrides. */
export function manifest(name: string, failover: Record<string, unknown> = {}): string {
  return JSON.stringify({
    apiVersion: 'halb.dev/v1alpha1', kind: 'HALoadBalancer', metadata: { name },
    spec: {
      region: 'nyc3',
      credentials: { tokenSecretRef: { name: 'do-api', key: 'token' }, sshKeySecretRef: { name: 'halb-ssh', key: 'ssh-privatekey' } },
      droplets: { count: 2, image: DROPLET_IMAGE },
      frontends: [{ name: 'www', port: 80, protocol: 'http', defaultBackend: 'web' }],
      backends: [{
        name: 'web', balance: 'roundrobin', port: 80, healthCheck: { protocol: 'http', path: '/' },
        servers: [{ name: 'web-1', address: '10.10.0.21' }, { name: 'web-2', address: '10.10.0.22' }],
      }],
      failover,
    },
  });
}

export interface Summary { n: number; p50: number; p95: number; max: number; min: number }

/** Nearest-rank percentiles (with 3 trials, p95 is the max). */
export function summarize(xs: readonly number[]): Summary {
  const s = [...xs].sort((a, b) => a - b);
  const rank = (p: number) => s[Math.max(0, Math.ceil(p * s.length) - 1)]!;
  return s.length
    ? { n: s.length, p50: rank(0.5), p95: rank(0.95), max: s.at(-1)!, min: s[0]! }
    : { n: 0, p50: NaN, p95: NaN, max: NaN, min: NaN };
}

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function machine(): Record<string, unknown> {
  return {
    cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version,
    platform: process.platform,
  };
}

/** Writes bench/results/<name>.json (HALB_BENCH_RESULTS_DIR elsewhere: CI's short runs must
 *  not overwrite the committed figures). */
export function writeResult(name: string, result: Record<string, unknown>): string {
  const dir = process.env.HALB_BENCH_RESULTS_DIR ?? join(ROOT, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  writeFileSync(file, `${JSON.stringify({ benchmark: name, date: new Date().toISOString(), machine: machine(), ...result }, null, 2)}\n`);
  return file;
}

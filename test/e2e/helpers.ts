// A whole sandbox for end-to-end tests: the Kubernetes API (the real upstream server when built,
// else the emulator: see ../kube-server.ts), the simulator, the fabric and the operator, in this
// process, from a temporary state folder (so its namespaces carry their own prefix). kubectl is
// the real one. Short simulated delays keep the suite quick.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import pino from 'pino';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { createLogger } from '../../src/log.ts';
import { destroySandbox, startSandbox, type KubeKind, type RunningSandbox } from '../../src/sandbox/sandbox.ts';
import { DEBIAN_13, ensureRootfs } from '../../src/sandbox/fabric/index.ts';
import { describeE2EKube, e2eKube } from '../kube-server.ts';
import { leaveFailureDigest, objectStateLines } from '../failure-digest.ts';

import { waitFor as poll } from '../wait.ts';

/** The shared poller, with this suite's patience (60_000 ms) and pace (250 ms). */
export const waitFor = <T>(
  what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 60_000, intervalMs = 250,
): Promise<T> =>
  poll(what, fn, timeoutMs, intervalMs);

export const KUBECTL = process.env.KUBECTL ?? '/usr/bin/kubectl';

/**
 * The droplet image the suite's load balancers run: HALB_DROPLET_IMAGE, else the API's default
 * (ubuntu-24-04-x64, this machine's binaries). CI runs the suite once more on debian-13-x64.
 */
export const DROPLET_IMAGE = process.env.HALB_DROPLET_IMAGE || 'ubuntu-24-04-x64';

/** A manifest (file or YAML/JSON text) with spec.droplets.image set to DROPLET_IMAGE. */
export function withImage(manifest: string, image = DROPLET_IMAGE): string {
  const text = manifest.includes('\n') || manifest.startsWith('{') ? manifest : readFileSync(manifest, 'utf8');
  return parseAllDocuments(text).map((doc) => {
    const object = doc.toJS() as { kind?: string; spec?: { droplets?: Record<string, unknown> } } | null;
    if (object?.kind === 'HALoadBalancer' && object.spec) object.spec.droplets = { ...object.spec.droplets, image };
    return stringify(object);
  }).join('---\n');
}
export const ROOT = new URL('../../', import.meta.url).pathname;

/** What of vitest's task a failure report reads. */
interface FailedTask {
  name: string;
  file?: { name: string };
  result?: { state?: string; errors?: { message?: string }[] };
}

export interface E2E {
  sandbox: RunningSandbox;
  stateDir: string;
  kubectl(args: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Runs a command inside a sandbox host's namespaces (client, droplet). */
  inHost(host: string, argv: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  curlFloatingIP(ip: string, timeoutSeconds?: number, https?: boolean): Promise<string | undefined>;
  /** The sandbox's log since start (info and up unless HALB_LOG_LEVEL says otherwise), printed
   *  after a failed test: CI keeps only the test output, and a timing failure needs the story. */
  printLogIfFailed(ctx: { task: FailedTask }): Promise<void>;
  /** The sandbox's log records so far (operator, simulator, fabric), parsed. */
  logRecords(): Record<string, unknown>[];
  /** A client requesting the floating IP over and over until stopped; counts what failed. */
  clientLoop(
    ip: string, options?: { timeoutSeconds?: number; pauseMs?: number; https?: boolean },
  ): { stop(): Promise<{ sent: number; failed: number }> };
  close(): Promise<void>;
}

function run(
  file: string, args: string[], env: NodeJS.ProcessEnv, stdin?: string, timeout = 60_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(file, args, { env, timeout }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
    if (stdin !== undefined) child.stdin!.end(stdin);
  });
}

export async function startE2E(options: { operator?: boolean; kube?: KubeKind; prometheus?: boolean } = {}): Promise<E2E> {
  const kube = options.kube ?? e2eKube();
  if (!options.kube) console.log(`Kubernetes API: ${describeE2EKube()}`);
  const stateDir = mkdtempSync(join(tmpdir(), 'halb-e2e-'));
  const logFile = join(stateDir, 'sandbox.log');
  const log = createLogger({ level: process.env.HALB_LOG_LEVEL ?? 'info', name: 'e2e' }, pino.destination({ dest: logFile, sync: true }));
  let sandbox: RunningSandbox;
  // Built (or found in the cache) before the sandbox routes its ranges: it downloads.
  if (DROPLET_IMAGE === DEBIAN_13.slug) await ensureRootfs({ log });
  try {
    sandbox = await startSandbox({
      stateDir, log, operator: options.operator ?? true, kube, prometheus: options.prometheus ?? false,
      delays: { dropletActiveMs: 500, reservedIpActionMs: 500, dropletActionMs: 300 },
      resyncIntervalMs: 2000, backstopGraceMs: 10_000,
    });
  } catch (err) {
    await destroySandbox(stateDir, log);
    throw err;
  }
  const env = { ...process.env, HOME: stateDir, KUBECONFIG: sandbox.status.kubeconfig };
  const namespaceOf = (host: string) => {
    const h = sandbox.fabric.status().hosts.find((x) => x.name === host);
    if (!h) throw new Error(`no host ${host} in the sandbox`);
    return h;
  };
  const e2e: E2E = {
    sandbox, stateDir,
    kubectl: (args, stdin) => run(KUBECTL, [`--cache-dir=${join(stateDir, 'kubectl-cache')}`, ...args], env, stdin),
    inHost: (host, argv) => {
      const h = namespaceOf(host);
      if (h.role === 'loadbalancer') {
        return sandbox.fabric.execInDroplet(host, argv).then(
          (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
          (err: Error) => ({ code: 1, stdout: '', stderr: err.message }),
        );
      }
      return run('ip', ['netns', 'exec', h.namespace, ...argv], env);
    },
    async curlFloatingIP(ip, timeoutSeconds = 2, https = false) {
      // -f: an HTTP error (a 503 from HAProxy) counts as a failure too. -k: self-signed test certificates.
      const r = await e2e.inHost('client', ['curl', '-sfk', '-m', String(timeoutSeconds), `${https ? 'https' : 'http'}://${ip}/`]);
      return r.code === 0 ? r.stdout.trim() : undefined;
    },
    logRecords() {
      return readFileSync(logFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    async printLogIfFailed(ctx) {
      if (ctx.task.result?.state !== 'fail') return;
      const lines = readFileSync(logFile, 'utf8').split('\n').filter((l) => l && !l.includes('"served request"'));
      console.log(`--- sandbox log for "${ctx.task.name}" (last ${Math.min(lines.length, 300)} of ${lines.length} lines) ---\n` +
        `${lines.slice(-300).join('\n')}`);
      const errors = (ctx.task.result.errors ?? []).map((e) => e.message ?? '');
      // What the cluster says of the load balancers now: often the first thing to read.
      const listed = await e2e.kubectl(['get', 'halb', '-A', '-o', 'json']);
      leaveFailureDigest(ctx.task.file?.name ?? 'a test file', ctx.task.name, errors,
        lines.map((l) => JSON.parse(l) as Record<string, unknown>), objectStateLines(listed.stdout || listed.stderr));
    },
    clientLoop(ip, options = {}) {
      let sent = 0;
      let failed = 0;
      let running = true;
      const loop = (async () => {
        while (running) {
          sent++;
          if ((await e2e.curlFloatingIP(ip, options.timeoutSeconds ?? 2, options.https)) === undefined) failed++;
          if (options.pauseMs) await new Promise((r) => setTimeout(r, options.pauseMs));
        }
      })();
      return {
        async stop() {
          running = false;
          await loop;
          return { sent, failed };
        },
      };
    },
    async close() {
      await sandbox.stop();
      await destroySandbox(stateDir, log);
    },
  };
  return e2e;
}

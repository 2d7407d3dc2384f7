// The real control plane (upstream kube-apiserver, kube-controller-manager, etcd) for tests that
// need the reference server itself, without the sandbox's fabric: nothing here needs root or
// network namespaces, everything listens on 127.0.0.1. The tests run when test/upstream/build.sh
// has built the binaries (HALB_KUBE=real makes a missing build an error instead of a skip).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { createLogger } from '../../src/log.ts';
import { startRealKube, type RealKube } from '../../src/sandbox/kube-real/control-plane.ts';
import { CONTROL_PLANE_TOOLS, upstreamBinaries, upstreamBuilt } from '../../src/sandbox/kube-real/upstream.ts';

export const KUBECTL = process.env.KUBECTL ?? '/usr/bin/kubectl';
export const ROOT = new URL('../../', import.meta.url).pathname;

/** Whether the real server is there to test against; with HALB_KUBE=real its absence throws. */
export function realKubeBuilt(): boolean {
  if (process.env.HALB_KUBE === 'real') {
    upstreamBinaries(CONTROL_PLANE_TOOLS);
    return true;
  }
  return upstreamBuilt(CONTROL_PLANE_TOOLS);
}

export const SKIP_REASON = 'the real kube-apiserver is not built (test/upstream/build.sh etcd kube-apiserver kube-controller-manager)';

export interface Run { code: number; stdout: string; stderr: string }

export function run(file: string, args: string[], env: NodeJS.ProcessEnv, stdin?: string, timeout = 60_000): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(file, args, { env, timeout, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
    if (stdin !== undefined) child.stdin!.end(stdin);
  });
}

export interface ControlPlane {
  kube: RealKube;
  dir: string;
  kubeconfig: string;
  /** The real kubectl as the admin. */
  kubectl(args: string[], stdin?: string): Promise<Run>;
  /** Audit records (audit.k8s.io/v1 Events) of ServiceAccount requests, from `since` lines on. */
  audit(since?: number): AuditRecord[];
  close(): Promise<void>;
}

export interface AuditRecord {
  verb: string;
  user: { username: string };
  objectRef?: { resource?: string; subresource?: string; apiGroup?: string; namespace?: string; name?: string };
  responseStatus?: { code?: number; reason?: string };
  requestURI: string;
  stage: string;
}

export async function startControlPlane(): Promise<ControlPlane> {
  const dir = mkdtempSync(join(tmpdir(), 'halb-real-'));
  const log = createLogger({ level: process.env.HALB_LOG_LEVEL ?? 'info', name: 'kube-real' },
    pino.destination({ dest: join(dir, 'test.log'), sync: true }));
  let kube: RealKube;
  try {
    kube = await startRealKube({ dir: join(dir, 'kube'), logger: log });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const kubeconfig = join(dir, 'kubeconfig');
  kube.writeKubeconfig(kubeconfig);
  const env = { ...process.env, HOME: dir, KUBECONFIG: kubeconfig };
  return {
    kube, dir, kubeconfig,
    kubectl: (args, stdin) => run(KUBECTL, [`--cache-dir=${join(dir, 'kubectl-cache')}`, ...args], env, stdin),
    audit(since = 0) {
      let text = '';
      try {
        text = readFileSync(kube.auditLog, 'utf8');
      } catch {
        return [];
      }
      return text.split('\n').slice(since).filter(Boolean)
        .map((l) => JSON.parse(l) as AuditRecord).filter((r) => r.stage === 'ResponseComplete');
    },
    async close() {
      await kube.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** How many lines the audit log holds now: read records after this point with audit(since). */
export function auditLines(kube: RealKube): number {
  try {
    return readFileSync(kube.auditLog, 'utf8').split('\n').filter(Boolean).length;
  } catch {
    return 0;
  }
}

export interface OperatorProcess {
  child: ChildProcess;
  /** What it wrote so far: its log (stdout, JSON lines at --log-level) and stderr, as they came. */
  output(): string;
  stop(): Promise<void>;
}

/**
 * `halb operator` as its own process, as deployed: its ServiceAccount's kubeconfig, the Lease in
 * its own namespace, a resync every second so a test sees each pass quickly.
 */
export function startOperatorProcess(
  options: { kubeconfig: string; leaseNamespace: string; doEndpoint: string; namespace?: string; logLevel?: string },
): OperatorProcess {
  const child = spawn(process.execPath, [join(ROOT, 'bin/halb.mjs'), 'operator',
    '--kubeconfig', options.kubeconfig, '--do-endpoint', options.doEndpoint,
    '--lease-namespace', options.leaseNamespace, '--resync', '1', '--metrics-port=-1', '--log-level', options.logLevel ?? 'warn',
    ...(options.namespace ? ['--namespace', options.namespace] : [])], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => { output += c.toString(); });
  child.stderr!.on('data', (c: Buffer) => { output += c.toString(); });
  return {
    child,
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const killed = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killed);
    },
  };
}

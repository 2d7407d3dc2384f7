// `halb sandbox up --demo` (`npm run sandbox`): builds the sandbox with realistic delays,
// applies examples/basic.yaml with the real kubectl, shows progress line by line, curls the
// floating IP, kills HAProxy on the MASTER and shows the failover and the outage a client saw,
// then a planned failover with the kubectl plugin and the requests a client saw fail (none);
// then exposes a Service of type LoadBalancer with halb's class and curls its EXTERNAL-IP.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { RunningSandbox } from './sandbox.ts';

const KUBECTL = process.env.KUBECTL ?? 'kubectl';
/** The kubectl plugin, run as kubectl runs it (kubectl-halb on PATH is the same program). */
const PLUGIN = fileURLToPath(new URL('../../bin/kubectl-halb.mjs', import.meta.url));
/** The manifest the demo applies (the GitOps tests re-apply it too). */
export const DEMO_MANIFEST = fileURLToPath(new URL('../../examples/basic.yaml', import.meta.url));

interface Status {
  floatingIP?: string;
  activeNode?: string;
  nodes?: { name: string; vrrpState: string }[];
  lastFailover?: { from: string; to: string };
  conditions?: { type: string; status: string; reason: string; message: string }[];
}

function run(
  file: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 30_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { env, timeout: timeoutMs }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

export async function runDemo(sandbox: RunningSandbox, say: (line: string) => void): Promise<void> {
  const env = { ...process.env, KUBECONFIG: sandbox.status.kubeconfig };
  const kubectl = (...args: string[]) => run(KUBECTL, args, env);
  const started = Date.now();
  const stamp = () => `[${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s]`;
  const client = sandbox.fabric.status().hosts.find((h) => h.role === 'client')!.namespace;
  const curl = (ip: string, timeout = 1) =>
    run('ip', ['netns', 'exec', client, 'curl', '-s', '-m', String(timeout), `http://${ip}/`], env, (timeout + 1) * 1000);
  const status = async (): Promise<Status> => {
    const r = await kubectl('get', 'halb', 'basic', '-o', 'jsonpath={.status}');
    return r.code === 0 && r.stdout ? JSON.parse(r.stdout) as Status : {};
  };

  say(`${stamp()} kubectl apply -f examples/basic.yaml`);
  const applied = await kubectl('apply', '-f', DEMO_MANIFEST);
  say(`${stamp()} ${(applied.stdout || applied.stderr).trim()}`);
  if (applied.code !== 0) throw new Error('kubectl apply failed');

  // One line per change of the Ready condition's message: what the operator is waiting on.
  let last = '';
  let current: Status = {};
  for (const deadline = Date.now() + 300_000; Date.now() < deadline;) {
    current = await status();
    const ready = current.conditions?.find((c) => c.type === 'Ready');
    const line = ready ? `Ready=${ready.status} ${ready.reason}: ${ready.message}` : 'waiting for the operator';
    if (line !== last) say(`${stamp()} ${line}`);
    last = line;
    if (ready?.status === 'True') break;
    await new Promise((r) => setTimeout(r, 500));
  }
  if (current.conditions?.find((c) => c.type === 'Ready')?.status !== 'True') {
    throw new Error('the load balancer did not become Ready within 5 minutes');
  }

  say(`\n$ kubectl get halb -o wide\n${(await kubectl('get', 'halb', '-o', 'wide')).stdout.trimEnd()}\n`);
  const ip = current.floatingIP!;
  for (let i = 0; i < 4; i++) say(`${stamp()} curl http://${ip}/ from halb-client -> ${(await curl(ip)).stdout.trim() || 'no answer'}`);

  const master = current.activeNode!;
  say(`\n${stamp()} killing HAProxy on the MASTER, ${master}, while a client polls http://${ip}/ every 100 ms`);
  let firstFailure: number | undefined;
  let recovered: number | undefined;
  let failures = 0;
  let polling = true;
  const poller = (async () => {
    while (polling) {
      const t = Date.now();
      const ok = (await curl(ip, 1)).code === 0;
      if (!ok) {
        failures++;
        firstFailure ??= t;
      } else if (firstFailure !== undefined && recovered === undefined) {
        recovered = Date.now();
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  await new Promise((r) => setTimeout(r, 300));
  const killedAt = Date.now();
  await sandbox.fabric.execInDroplet(master, ['sh', '-c', 'kill $(cat /run/haproxy.pid)']);
  let after: Status = current;
  for (const deadline = Date.now() + 60_000; Date.now() < deadline;) {
    after = await status();
    if (after.activeNode && after.activeNode !== master) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  await new Promise((r) => setTimeout(r, 1000));
  polling = false;
  await poller;
  if (after.activeNode === master) throw new Error('no failover was observed within 60 s');
  const outage = firstFailure !== undefined && recovered !== undefined
    ? `${recovered - firstFailure} ms (${failures} failed requests)`
    : 'none seen by the client';
  const shownAfter = ((Date.now() - killedAt) / 1000).toFixed(1);
  say(`${stamp()} failover: ${master} -> ${after.activeNode}; status showed it ${shownAfter} s after the kill ` +
    '(the operator looks again every 5 s; keepalived and the failover script moved the IP without it)');
  say(`${stamp()} outage seen by the client: ${outage}`);
  say(`\n$ kubectl get halb -o wide\n${(await kubectl('get', 'halb', '-o', 'wide')).stdout.trimEnd()}`);

  // A planned failover: keepalived hands over on the operator's request, the old MASTER serves
  // until the IP has moved.
  await waitForBackup(status);
  const plugin = (...args: string[]) => run(process.execPath, [PLUGIN, ...args], env, 120_000);
  say(`\n${stamp()} a planned failover, while a client polls http://${ip}/ every 100 ms:\n$ kubectl halb failover basic`);
  const planned = pollWhile(() => curl(ip, 1));
  const moved = await plugin('failover', 'basic');
  const seen = await planned.stop();
  say((moved.stdout + moved.stderr).trimEnd());
  say(`${stamp()} requests during the planned failover: ${seen.sent}, failed: ${seen.failed}`);
  say(`\n$ kubectl halb status basic\n${(await plugin('status', 'basic')).stdout.trimEnd()}`);
  const events = (await kubectl('describe', 'halb', 'basic')).stdout.split('Events:')[1]?.trimEnd() ?? '';
  say(`\n$ kubectl describe halb basic (events)\n${events}`);
  await serviceDemo({ kubectl, curl, stamp, say });
}

interface DemoTools {
  kubectl: (...args: string[]) => Promise<{ code: number; stdout: string; stderr: string }>;
  curl: (ip: string, timeout?: number) => Promise<{ code: number; stdout: string }>;
  stamp: () => string;
  say: (line: string) => void;
}

/** A Service of type LoadBalancer with halb's class, made with kubectl expose: its EXTERNAL-IP
 *  is a halb load balancer in front of the sandbox's cluster nodes' NodePorts. */
async function serviceDemo({ kubectl, curl, stamp, say }: DemoTools): Promise<void> {
  const commands: string[][] = [
    ['create', 'service', 'clusterip', 'shop', '--tcp=80:8080'],
    ['expose', 'service', 'shop', '--name=shop-lb', '--type=LoadBalancer', '--port=80', '--target-port=8080',
      '--overrides={"spec":{"loadBalancerClass":"halb.dev/haproxy"}}'],
  ];
  say('\nServices of type LoadBalancer: the sandbox\'s cluster nodes answer on every NodePort with their name and the port.');
  say(`$ kubectl get nodes\n${(await kubectl('get', 'nodes')).stdout.trimEnd()}`);
  for (const args of commands) {
    const r = await kubectl(...args);
    const shown = args.map((a) => (a.startsWith('--overrides') ? `'${a}'` : a)).join(' ');
    say(`${stamp()} kubectl ${shown}\n${(r.stdout || r.stderr).trimEnd()}`);
    if (r.code !== 0) throw new Error(`kubectl ${args[0]} failed`);
  }
  say(`$ kubectl get svc shop-lb\n${(await kubectl('get', 'svc', 'shop-lb')).stdout.trimEnd()}`);
  const wait = await kubectl('wait', 'svc/shop-lb', '--for=jsonpath={.status.loadBalancer.ingress[0].ip}', '--timeout=300s');
  if (wait.code !== 0) throw new Error(`the Service got no EXTERNAL-IP: ${wait.stderr.trim()}`);
  say(`${stamp()} $ kubectl get svc shop-lb\n${(await kubectl('get', 'svc', 'shop-lb')).stdout.trimEnd()}`);
  const ip = (await kubectl('get', 'svc', 'shop-lb', '-o', 'jsonpath={.status.loadBalancer.ingress[0].ip}')).stdout;
  for (let i = 0; i < 4; i++) say(`${stamp()} curl http://${ip}/ from halb-client -> ${(await curl(ip)).stdout.trim() || 'no answer'}`);
}

/** Until the failed node is back as a healthy BACKUP (the operator restarts its HAProxy). */
async function waitForBackup(status: () => Promise<Status>): Promise<void> {
  for (const deadline = Date.now() + 60_000; Date.now() < deadline;) {
    const s = await status();
    const settled = s.nodes?.length && s.nodes.every((n) => n.vrrpState === 'MASTER' || n.vrrpState === 'BACKUP');
    if (settled && s.nodes!.some((n) => n.vrrpState === 'BACKUP')) return;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Sends a request every 100 ms until stopped; counts what failed. */
function pollWhile(request: () => Promise<{ code: number }>): { stop(): Promise<{ sent: number; failed: number }> } {
  let polling = true;
  let sent = 0;
  let failed = 0;
  const loop = (async () => {
    while (polling) {
      sent++;
      if ((await request()).code !== 0) failed++;
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return { stop: async () => { polling = false; await loop; return { sent, failed }; } };
}

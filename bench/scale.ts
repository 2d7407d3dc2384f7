// How the operator holds up at 1,000 HALoadBalancers (2 nodes each), with no data plane: the
// Kubernetes emulator and the DigitalOcean simulator (real rate limits: 250 per minute, 5,000 per
// hour) in this process, the operator in its own process (with the CLI's defaults: resync 30 s,
// concurrency 4), and the 2,000 hosts answered by a lightweight SSH stand-in on 127.0.0.0/8
// (bench/lib/ssh-standin.ts): real SSH, no HAProxy or keepalived. Measures the time until all
// are Ready, the operator's peak RSS, DigitalOcean requests per minute once all are Ready, and
// how long one resync of every object takes. Prints a table, writes bench/results/scale.json
// (scale-short.json with --short). Needs no root.
//
//   npm run bench:scale                          1,000 objects whose droplets and reserved IPs exist
//                                             (seeded: creating them takes hours at 5,000/hour)
//   npm run bench:scale -- --provision create    the operator creates everything through the API
//   npm run bench:scale -- --objects 200 --steady-seconds 120
//   npm run bench:scale -- --short               CI: 10 objects, created, 35 s of steady state
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { buildCRD, CRD_NAME } from '../src/api/crd.ts';
import { nodeName } from '../src/api/derived.ts';
import { COMMON_TAG, nodeTag, uidTag } from '../src/digitalocean/naming.ts';
import { sshKeyFingerprint } from '../src/digitalocean/provider.ts';
import { createLogger } from '../src/log.ts';
import { startKubeEmulator, type KubeEmulator } from '../src/sandbox/kube/index.ts';
import { startDigitalOceanSimulator, type DigitalOceanSimulator, type RecordedResponse } from '../src/sandbox/digitalocean/simulator.ts';
import { isReady, manifest, nowMs, ROOT, sleep, table, writeResult, type LBStatus } from './lib/harness.ts';
import { startSshStandin, type SshStandin } from './lib/ssh-standin.ts';
import { generateEd25519KeyPair } from '../src/ssh-keys.ts';

const BOUNDS = { rssMiB: 256, doRequestsPerMinute: 60, resyncSeconds: 60 };
const RESYNC_MS = 30_000; // the operator's default (halb operator --resync)
const BURST = 250; // DigitalOcean: per minute
const HOURLY = 5000;

const { values: args } = parseArgs({
  options: {
    objects: { type: 'string' },
    short: { type: 'boolean', default: false },
    provision: { type: 'string' },
    'steady-seconds': { type: 'string' },
    'ready-timeout-minutes': { type: 'string' },
    'max-old-space-mib': { type: 'string' },
    'max-semi-space-mib': { type: 'string' },
    'node-defaults': { type: 'boolean', default: false },
    'max-ssh-sessions': { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  console.log('Usage: npm run bench:scale -- [--objects N] [--provision seed|create] [--steady-seconds S] ' +
    '[--ready-timeout-minutes M] [--node-defaults] [--max-old-space-mib MIB] [--max-semi-space-mib MIB] [--max-ssh-sessions N] [--short]');
  process.exit(0);
}
const whole = (name: string, text: string | undefined, fallback: number, min: number): number => {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name}: expected a whole number >= ${min}, got ${JSON.stringify(text)}`);
  return n;
};
const short = args.short;
const objects = whole('objects', args.objects, short ? 10 : 1000, 1);
const provision = args.provision ?? (short ? 'create' : 'seed');
if (provision !== 'seed' && provision !== 'create') {
  throw new Error(`--provision: expected seed or create, got ${JSON.stringify(provision)}`);
}
// At least one minute in a full run; CI takes 35 s (one resync and a little) and scales it.
const steadyMs = whole('steady-seconds', args['steady-seconds'], short ? 35 : 60, 1) * 1000;
const readyTimeoutMs = whole('ready-timeout-minutes', args['ready-timeout-minutes'], short ? 2 : 60, 1) * 60_000;
// The operator runs with the memory settings the Deployment gives it (NODE_OPTIONS and
// MALLOC_ARENA_MAX in deploy/base/deployment.yaml), or with Node's and glibc's defaults for this
// machine (--node-defaults). The two flags below override the Deployment's heap caps.
const deploymentEnv = args['node-defaults'] ? {} : memoryEnvOfDeployment();
// The old space (node --max-old-space-size), to see what the operator needs.
const maxOldSpaceMiB = args['max-old-space-mib'] === undefined ? undefined : whole('max-old-space-mib', args['max-old-space-mib'], 0, 16);
// And the young generation's semi-spaces (node --max-semi-space-size; Node 22's default is 16 MiB, three of them).
const maxSemiSpaceMiB = args['max-semi-space-mib'] === undefined ? undefined
  : whole('max-semi-space-mib', args['max-semi-space-mib'], 0, 1);
// The operator's budget of kept SSH sessions (halb operator --max-ssh-sessions; unset: its default).
const maxSshSessions = args['max-ssh-sessions'] === undefined ? undefined : whole('max-ssh-sessions', args['max-ssh-sessions'], 0, 0);
// The default run writes scale.json; any other names itself (scale-create-100-heap128.json).
const resultName = short ? 'scale-short'
  : [
    'scale',
    ...(provision === 'create' ? ['create'] : []),
    ...(objects !== 1000 ? [String(objects)] : []),
    ...(maxOldSpaceMiB ? [`heap${maxOldSpaceMiB}`] : []),
    ...(maxSemiSpaceMiB ? [`semi${maxSemiSpaceMiB}`] : []),
    ...(maxSshSessions !== undefined ? [`sessions${maxSshSessions}`] : []),
    ...(args['node-defaults'] ? ['node-defaults'] : []),
  ].join('-');

/** NODE_OPTIONS and MALLOC_ARENA_MAX as the operator's Deployment sets them. */
function memoryEnvOfDeployment(): Record<string, string> {
  const file = join(ROOT, 'deploy/base/deployment.yaml');
  const deployment = parseYaml(readFileSync(file, 'utf8')) as { spec: { template: { spec: { containers: Container[] } } } };
  const env = deployment.spec.template.spec.containers.find((c) => c.name === 'operator')?.env ?? [];
  const picked = Object.fromEntries(env.filter((e) => ['NODE_OPTIONS', 'MALLOC_ARENA_MAX'].includes(e.name) && e.value !== undefined)
    .map((e) => [e.name, e.value!]));
  if (!picked.NODE_OPTIONS) throw new Error(`${file}: the operator container sets no NODE_OPTIONS`);
  return picked;
}
interface Container { name: string; env?: { name: string; value?: string }[] }

/** Minutes to send `requests` under 250 per minute and 5,000 per rolling hour, from a fresh budget. */
function minutesUnderLimits(requests: number): number {
  if (requests <= 0) return 0;
  const fullHours = Math.floor((requests - 1) / HOURLY);
  return fullHours * 60 + (requests - fullHours * HOURLY) / BURST;
}

const procStatus = (pid: number, field: 'VmRSS' | 'VmHWM'): number | undefined => {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
};

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat (100 ticks a second). */
const cpuSeconds = (pid: number): number => {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
};

const stateDir = mkdtempSync(join(tmpdir(), 'halb-bench-scale-'));
let sim: DigitalOceanSimulator | undefined;
let kube: KubeEmulator | undefined;
let standin: SshStandin | undefined;
let operator: ChildProcess | undefined;
const cleanup = async () => {
  if (operator && operator.exitCode === null) {
    const exited = new Promise((r) => operator!.once('exit', r));
    operator.kill('SIGTERM');
    await Promise.race([exited, sleep(10_000)]);
    if (operator.exitCode === null) operator.kill('SIGKILL');
  }
  await standin?.close();
  await kube?.close();
  await sim?.close();
  rmSync(stateDir, { recursive: true, force: true });
};
process.once('SIGINT', () => { void cleanup().finally(() => process.exit(130)); });

try {
  console.log(`scale: ${objects} HALoadBalancers x 2 nodes, provision=${provision}; ` +
    'hosts are an SSH stand-in on 127.0.0.0/8 (no HAProxy, no keepalived, no data plane)');
  const operatorKey = generateEd25519KeyPair('halb-operator');
  const responses: Pick<RecordedResponse, 'at' | 'method' | 'route' | 'status'>[] = [];
  standin = await startSshStandin({
    metadata: (id, path) => {
      const r = sim!.metadata(id, path);
      return r.status === 200 ? r.body.trim() : undefined;
    },
  });
  const hosts = standin;
  // Public and reserved addresses are data only: nothing is ever sent to them (SSH goes to the
  // loopback stand-in), and 2,000 droplets do not fit the sandbox's /24s.
  sim = await startDigitalOceanSimulator({
    host: '127.0.0.1',
    port: 0,
    // Warnings only (a stand-in host that could not be added, a failed timer): the first thing to read when a host never answers.
    logger: createLogger({ level: 'warn', name: 'simulator' }, process.stderr),
    addressing: { publicCidr: '10.200.0.0/16', reservedCidr: '10.201.0.0/16' },
    dropletLimit: objects * 2 + 100,
    reservedIpLimit: objects + 10,
    hooks: {
      onDropletCreated: (d) => hosts.addHost({
        publicIPv4: d.publicIPv4, dropletId: d.id, name: d.name, authorizedKeys: d.sshPublicKeys, userData: d.userData,
      }),
      onDropletDeleted: (d) => hosts.removeHost(d.publicIPv4),
      onResponse: (r) => responses.push({ at: r.at, method: r.method, route: r.route, status: r.status }),
    },
    keepResponses: 1,
  });
  const simulator = sim;
  kube = await startKubeEmulator({ host: '127.0.0.1', port: 0 });
  const kubeURL = kube.url;
  const kubeconfig = join(stateDir, 'kubeconfig');
  kube.writeKubeconfig(kubeconfig);
  const post = async (path: string, body: unknown): Promise<Record<string, unknown>> => {
    const r = await fetch(`${kubeURL}${path}`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    if (!r.ok) throw new Error(`POST ${path}: ${r.status} ${await r.text()}`);
    return await r.json() as Record<string, unknown>;
  };
  await post('/apis/apiextensions.k8s.io/v1/customresourcedefinitions', buildCRD());
  const crdURL = `${kubeURL}/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${CRD_NAME}`;
  for (let i = 0; i < 100 && !(await fetch(crdURL)).ok; i++) await sleep(50);
  await post('/api/v1/namespaces/default/secrets', {
    apiVersion: 'v1', kind: 'Secret', metadata: { name: 'do-api' }, type: 'Opaque', stringData: { token: 'dop_v1_bench_scale' },
  });
  await post('/api/v1/namespaces/default/secrets', {
    apiVersion: 'v1', kind: 'Secret', metadata: { name: 'halb-ssh' }, type: 'kubernetes.io/ssh-auth',
    stringData: { 'ssh-privatekey': operatorKey.private },
  });

  const names = Array.from({ length: objects }, (_, i) => `scale-${String(i + 1).padStart(4, '0')}`);
  const listPath = '/apis/halb.dev/v1alpha1/namespaces/default/haloadbalancers';
  // What an object short of Ready says about itself: the first thing to read when the run fails.
  const printOneNotReady = async (name: string) => {
    const object = await (await fetch(`${kubeURL}${listPath}/${name}`)).json() as { status?: { conditions?: unknown[] } };
    console.log(`${name} is not Ready; its conditions: ${JSON.stringify(object.status?.conditions ?? [], null, 1)}`);
  };
  const startOperatorProcess = () => {
    const heapFlag = [
      ...(maxOldSpaceMiB ? [`--max-old-space-size=${maxOldSpaceMiB}`] : []),
      ...(maxSemiSpaceMiB ? [`--max-semi-space-size=${maxSemiSpaceMiB}`] : []),
    ];
    const child = spawn(process.execPath, [...heapFlag, join(ROOT, 'bench/lib/scale-operator.ts'), JSON.stringify({
      kubeconfig, doEndpoint: simulator.endpoint, apiBaseURL: simulator.url, sshPort: hosts.port,
      ...(process.env.HALB_LOG_LEVEL ? { logLevel: process.env.HALB_LOG_LEVEL } : {}),
      ...(maxSshSessions !== undefined ? { maxSshSessions } : {}),
    })], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...deploymentEnv } });
    return child;
  };

  let t0: number;
  if (provision === 'seed') {
    // What an earlier operator run left: each object's two droplets (tagged as the operator tags
    // them, made with its SSH key) and its reserved IP on node 0. The operator adopts them and
    // configures every host; no host has a config yet.
    simulator.state.createSshKey({ name: 'halb-operator', public_key: operatorKey.public });
    const fingerprint = sshKeyFingerprint(operatorKey.public);
    for (const name of names) {
      const created = await post(listPath, manifest(name));
      const uid = (created.metadata as { uid: string }).uid;
      const ids: number[] = [];
      for (let index = 0; index < 2; index++) {
        const d = simulator.state.seedDroplet({
          name: nodeName(name, index), tags: [COMMON_TAG, uidTag(uid), nodeTag(index)], sshKeys: [fingerprint],
        });
        await hosts.addHost({ publicIPv4: d.publicIPv4, dropletId: d.id, name: d.name, authorizedKeys: d.sshPublicKeys });
        ids.push(d.id);
      }
      simulator.state.seedReservedIp({ dropletId: ids[0]! });
    }
    console.log(`seeded ${objects} objects, ${objects * 2} droplets and ${objects} reserved IPs; starting the operator`);
    t0 = nowMs();
    operator = startOperatorProcess();
  } else {
    operator = startOperatorProcess();
    t0 = nowMs();
    for (const name of names) await post(listPath, manifest(name));
    console.log(`applied ${objects} objects in ${Math.round(nowMs() - t0)} ms`);
  }
  const child = operator;
  const pid = child.pid!;

  // The operator's log: completed resyncs, overruns and failed reconciles.
  const resyncs: { at: number; durationMs: number }[] = [];
  let overruns = 0;
  let failedReconciles = 0;
  let heapPeakMiB = 0;
  let heapLowMiB = Infinity;
  let readyAtAll: number | undefined = undefined; // set once all are Ready
  // HALB_BENCH_OPERATOR_LOG=<file> keeps the operator's whole log.
  const logCopy = process.env.HALB_BENCH_OPERATOR_LOG ? createWriteStream(process.env.HALB_BENCH_OPERATOR_LOG) : undefined;
  createInterface({ input: child.stdout! }).on('line', (line) => {
    logCopy?.write(`${line}\n`);
    let entry: { msg?: string; durationMs?: number; level?: number; err?: { message?: string }; heapUsed?: number };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      return;
    }
    if (entry.msg === 'completed resync' && typeof entry.durationMs === 'number') {
      resyncs.push({ at: nowMs(), durationMs: entry.durationMs });
    }
    else if (entry.msg === 'resync still running at the next interval') overruns++;
    else if (entry.msg === 'memory' && typeof entry.heapUsed === 'number') {
      heapPeakMiB = Math.max(heapPeakMiB, entry.heapUsed / 2 ** 20);
      if (readyAtAll !== undefined) heapLowMiB = Math.min(heapLowMiB, entry.heapUsed / 2 ** 20);
    }
    else if (entry.msg === 'reconcile failed; retrying') {
      if (failedReconciles++ < 3) console.log(`  operator: reconcile failed: ${entry.err?.message ?? line.slice(0, 300)}`);
    }
  });
  let exitedEarly = false;
  child.once('exit', (code) => { exitedEarly = true; if (code) console.log(`operator exited with ${code}`); });

  // Memory: sampled every second; the kernel's high-water mark (VmHWM) at the end.
  let rssPeakSampled = 0;
  const rssSampler = setInterval(() => { rssPeakSampled = Math.max(rssPeakSampled, procStatus(pid, 'VmRSS') ?? 0); }, 1000);

  // Ready: the first time each object is seen Ready.
  const readyAt = new Map<string, number>();
  let lastReport = 0;
  const deadline = t0 + readyTimeoutMs;
  while (readyAt.size < objects) {
    if (exitedEarly) throw new Error('the operator exited before all objects were Ready');
    if (nowMs() > deadline) break;
    const r = await fetch(`${kubeURL}${listPath}`);
    const list = await r.json() as { items: { metadata: { name: string }; status?: LBStatus }[] };
    const now = nowMs();
    for (const item of list.items) if (!readyAt.has(item.metadata.name) && isReady(item.status)) readyAt.set(item.metadata.name, now - t0);
    if (now - lastReport > 30_000) {
      lastReport = now;
      console.log(`  ${Math.round((now - t0) / 1000)} s: ${readyAt.size}/${objects} Ready, ${responses.length} DigitalOcean requests, ` +
        `${hosts.counters.connections} SSH connections, operator RSS ${Math.round(procStatus(pid, 'VmRSS') ?? 0)} MiB`);
    }
    if (readyAt.size < objects) await sleep(objects > 200 ? 2000 : 500);
  }
  const allReady = readyAt.size === objects;
  if (!allReady) await printOneNotReady(names.find((n) => !readyAt.has(n))!);
  const tReady = nowMs();
  readyAtAll = tReady;
  const readyMs = Math.round(tReady - t0);
  const cpuToReady = cpuSeconds(pid);
  const requestsToReady = responses.filter((r) => r.at <= tReady).length;
  const routesToReady: Record<string, number> = {};
  for (const r of responses) {
    if (r.at <= tReady) routesToReady[`${r.method} ${r.route}`] = (routesToReady[`${r.method} ${r.route}`] ?? 0) + 1;
  }
  console.log(`${allReady ? 'all' : `only ${readyAt.size} of`} ${objects} Ready after ${readyMs} ms, ` +
    `${requestsToReady} DigitalOcean requests`);

  // Steady state: every request the simulator answers over the window, at the default resync.
  let steady: { requests: number; perMinute: number; windowMs: number; byRoute: Record<string, number>; rateLimited: number } | undefined;
  let resyncAfterReady: { at: number; durationMs: number }[] = [];
  let steadyCpuCores = NaN;
  if (allReady) {
    const from = Date.now();
    const cpuFrom = cpuSeconds(pid);
    await sleep(steadyMs);
    const to = Date.now();
    steadyCpuCores = (cpuSeconds(pid) - cpuFrom) / ((to - from) / 1000);
    const inWindow = responses.filter((r) => r.at >= from && r.at < to);
    const byRoute: Record<string, number> = {};
    for (const r of inWindow) byRoute[`${r.method} ${r.route}`] = (byRoute[`${r.method} ${r.route}`] ?? 0) + 1;
    steady = {
      requests: inWindow.length, perMinute: Math.round((inWindow.length * 60_000 / (to - from)) * 10) / 10, windowMs: to - from, byRoute,
      rateLimited: inWindow.filter((r) => r.status === 429).length,
    };
    // A resync that started after all were Ready; wait for one if none has completed yet.
    const started = (x: { at: number; durationMs: number }) => x.at - x.durationMs;
    const resyncDeadline = nowMs() + RESYNC_MS + 120_000;
    while (!resyncs.some((x) => started(x) >= tReady) && nowMs() < resyncDeadline && !exitedEarly) await sleep(500);
    resyncAfterReady = resyncs.filter((x) => started(x) >= tReady);
  }
  clearInterval(rssSampler);
  const rssHWM = procStatus(pid, 'VmHWM') ?? NaN;
  const rssEnd = procStatus(pid, 'VmRSS') ?? NaN;

  // The hosts as the stand-in holds them: every node configured, daemons up, node 0 MASTER.
  const views = simulator.state.dropletViews().filter((d) => d.tags.includes(COMMON_TAG));
  let configured = 0;
  let masters = 0;
  for (const d of views) {
    const h = hosts.inspect(d.publicIPv4);
    if (h?.configHash && h.haproxyRunning && h.keepalivedRunning) configured++;
    if (h?.vrrpState === 'MASTER') masters++;
  }

  const readyTimes = [...readyAt.values()].sort((a, b) => a - b);
  const resyncWorst = resyncAfterReady.length ? Math.max(...resyncAfterReady.map((x) => x.durationMs)) : NaN;
  const perObject = requestsToReady / objects;
  const projected1000 = minutesUnderLimits(Math.round(perObject * 1000));
  const targets = [
    { target: `operator RSS peak (VmHWM) <= ${BOUNDS.rssMiB} MiB`, value: Math.round(rssHWM), bound: BOUNDS.rssMiB },
    {
      target: `DigitalOcean requests per minute, steady state <= ${BOUNDS.doRequestsPerMinute}`, value: steady?.perMinute ?? NaN,
      bound: BOUNDS.doRequestsPerMinute,
    },
    {
      target: `resync of every object <= ${BOUNDS.resyncSeconds} s`, value: Math.round(resyncWorst / 100) / 10, bound: BOUNDS.resyncSeconds,
    },
  ].map((t) => ({ ...t, met: t.value <= t.bound }));

  console.log(`\nscale, ${objects} HALoadBalancers (${objects * 2} droplets, ${objects} reserved IPs), provision=${provision}`);
  console.log('hosts: SSH stand-in on 127.0.0.0/8 (bench/lib/ssh-standin.ts), not real droplets: no HAProxy, keepalived or data plane');
  console.log(`operator: its own process, CLI defaults (resync 30 s, concurrency 4${sessionsNote()})${memoryNote()}; ` +
    'RSS from /proc/<pid>/status');
  console.log(table(['measure', 'value'], [
    [
      `time until all Ready, from ${provision === 'seed' ? 'operator start' : 'the first apply'}`,
      allReady ? `${(readyMs / 1000).toFixed(1)} s` : `not reached in ${readyTimeoutMs / 60_000} min (${readyAt.size} Ready)`,
    ],
    ['  first / median object Ready', readyTimes.length
      ? `${(readyTimes[0]! / 1000).toFixed(1)} s / ${(readyTimes[Math.floor(readyTimes.length / 2)]! / 1000).toFixed(1)} s`
      : '-'],
    ['DigitalOcean requests until all Ready', `${requestsToReady} (${perObject.toFixed(1)} per object)`],
    ...(provision === 'create' ? [['  projected for 1,000 objects at 250/min, 5,000/h', `${projected1000.toFixed(0)} min`]] : []),
    ['operator RSS peak (VmHWM) / at end', `${rssHWM.toFixed(0)} MiB / ${rssEnd.toFixed(0)} MiB`],
    [
      'operator JS heap used, 2 s samples: peak (garbage included) / lowest after all Ready (~live set)',
      `${heapPeakMiB.toFixed(0)} MiB / ${heapLowMiB.toFixed(0)} MiB`,
    ],
    [
      `DigitalOcean requests per minute, steady state (${((steady?.windowMs ?? 0) / 1000).toFixed(0)} s window)`,
      steady ? `${steady.perMinute} (${steady.requests} requests, ${steady.rateLimited} refused 429)` : '-',
    ],
    ['operator CPU, steady state (cores; the Deployment limits it to 0.5)', steadyCpuCores.toFixed(2)],
    ['operator CPU until all Ready (core-seconds)', cpuToReady.toFixed(1)],
    ['resyncs of every object after all Ready (ms)',
      resyncAfterReady.length ? resyncAfterReady.map((x) => x.durationMs).join(', ') : 'none completed'],
    ['resyncs overrunning the 30 s interval (whole run)', String(overruns)],
    ['failed reconciles (whole run, retried)', String(failedReconciles)],
    ['hosts configured (hash, both daemons) / MASTERs', `${configured}/${views.length} / ${masters}`],
    ['SSH connections to the stand-in', String(hosts.counters.connections)],
  ]));
  const byRouteToReady = Object.entries(routesToReady).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join('; ');
  console.log(`\nrequests until all Ready, by route: ${byRouteToReady}`);
  if (steady) {
    const byRoute = Object.entries(steady.byRoute).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join('; ');
    console.log(`steady-state requests by route: ${byRoute || 'none'}`);
  }
  console.log(`\n${table(['target', 'value', 'met'], targets.map((t) => [t.target, String(t.value), t.met ? 'yes' : 'NO']))}`);
  const file = writeResult(resultName, {
    objects, nodesPerObject: 2, provision, short,
    hosts: 'ssh stand-in on 127.0.0.0/8 (bench/lib/ssh-standin.ts); no HAProxy, keepalived or data plane',
    operator: { process: 'child', rssFrom: '/proc/<pid>/status', resyncIntervalMs: RESYNC_MS, concurrency: 4 },
    allReady, readyMs, readyCount: readyAt.size,
    readyTimesMs: {
      first: readyTimes[0] ?? null, median: readyTimes[Math.floor(readyTimes.length / 2)] ?? null, last: readyTimes.at(-1) ?? null,
    },
    doRequestsUntilReady: requestsToReady, doRequestsUntilReadyByRoute: routesToReady, doRequestsPerObject: Math.round(perObject * 10) / 10,
    ...(provision === 'create' ? { projectedMinutesFor1000: Math.round(projected1000) } : {}),
    rssMiB: { peakHWM: Math.round(rssHWM), peakSampled: Math.round(rssPeakSampled), end: Math.round(rssEnd) },
    heapUsedMiB: { peak: Math.round(heapPeakMiB), lowestAfterReady: Math.round(heapLowMiB) }, maxOldSpaceMiB: maxOldSpaceMiB ?? null,
    maxSemiSpaceMiB: maxSemiSpaceMiB ?? null, deploymentEnv, maxSshSessions: maxSshSessions ?? null,
    steady: steady ?? null,
    operatorCpu: { coreSecondsUntilReady: Math.round(cpuToReady * 10) / 10, steadyCores: Math.round(steadyCpuCores * 100) / 100 },
    resyncMs: resyncAfterReady.map((x) => x.durationMs), resyncOverruns: overruns, failedReconciles,
    hostsConfigured: configured, hostsTotal: views.length, masters, sshConnections: hosts.counters.connections,
    standinExecs: hosts.counters.execs,
    targets,
  });
  console.log(`wrote ${file}`);
  // Fail only on a wide miss (twice a bound), or when the run itself did not complete.
  if (!allReady || configured !== objects * 2 || targets.some((t) => !(t.value <= 2 * t.bound))) process.exitCode = 1;
} finally {
  await cleanup();
}

function sessionsNote(): string {
  return maxSshSessions === undefined ? '' : `, --max-ssh-sessions ${maxSshSessions}`;
}

/** The operator's memory settings, as the output names them. */
function memoryNote(): string {
  const env = Object.entries(deploymentEnv).map(([name, value]) => `${name}=${JSON.stringify(value)}`).join(' ');
  const flags = [
    maxOldSpaceMiB ? `--max-old-space-size=${maxOldSpaceMiB}` : '', maxSemiSpaceMiB ? `--max-semi-space-size=${maxSemiSpaceMiB}` : '',
  ].filter(Boolean).join(' ');
  const fromDeployment = env ? `, ${env} (deploy/base/deployment.yaml)` : ', Node\'s and glibc\'s defaults for this machine';
  return `${fromDeployment}${flags ? `, then node ${flags}` : ''}`;
}

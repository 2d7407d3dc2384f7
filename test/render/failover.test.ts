// Two load-balancer nodes on the real daemons: each in its own network, PID and mount
// namespace, joined by a bridge in a third namespace that also hosts a stand-in for the
// metadata service and the DigitalOcean API. HAProxy and keepalived run from the rendered
// files, bind-mounted where a host has them. Killing HAProxy on the MASTER must make the other
// node MASTER within 3 s, and its failover script must move the reserved IP through the API.
// A planned hand-over through the priority-offset file moves MASTER with no daemon restarted.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeNodes } from '../../src/render/output.ts';
import { defaultSettings, renderNodes } from '../../src/render/render.ts';
import type { ObservedFacts } from '../../src/render/types.ts';
import { baseSecrets, installedVersions, makeLB, TOKEN } from './helpers.ts';

// Per process, so two test runs on one machine (two worktrees) never share namespaces.
const PREFIX = `hrtf${process.pid}`;
const BRIDGE_NS = `${PREFIX}b`;
const NODE_NS = [`${PREFIX}n0`, `${PREFIX}n1`];
const FLOATING_IP = '198.51.100.77';
const GATEWAY = '10.77.0.1';
const DROPLET_IDS = [5001, 5002];

const root = mkdtempSync(join(tmpdir(), 'hrt-failover-'));
const children: ChildProcess[] = [];
const requests: Record<string, unknown>[] = [];
let lb: ReturnType<typeof makeLB>;
let nodeDirs: string[] = [];

function sh(command: string): string {
  return execFileSync('sh', ['-c', command], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Removes the namespaces this run made, and every process in them. */
function cleanup(): void {
  const ours = sh('ip netns list').split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n === BRIDGE_NS || NODE_NS.includes(n));
  for (const ns of ours) {
    for (const pid of sh(`ip netns pids ${ns} 2>/dev/null || true`).split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    sh(`ip netns del ${ns} 2>/dev/null || true`);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor<T>(what: string, timeoutMs: number, probe: () => T | undefined | false): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${diagnostics()}`);
    await sleep(50);
  }
}

function readLog(i: number): string {
  const file = join(nodeDirs[i]!, 'var/log/halb-failover.log');
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
}

function vrrpState(i: number): string {
  const file = join(nodeDirs[i]!, 'run/halb/vrrp-state');
  return existsSync(file) ? readFileSync(file, 'utf8').trim() : '';
}

function diagnostics(): string {
  return nodeDirs.map((dir, i) => {
    const read = (f: string) =>
      (existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'utf8').split('\n').slice(-25).join('\n') : '(none)');
    return `--- node ${i}: state ${vrrpState(i)}\nkeepalived:\n${read('keepalived.out')}\nhaproxy:\n${read('haproxy.out')}\n` +
      `failover log:\n${read('var/log/halb-failover.log')}`;
  }).join('\n') + `\n--- stand-in requests:\n${requests.map((r) => JSON.stringify(r)).join('\n')}`;
}

function killHAProxy(ns: string): number[] {
  const killed: number[] = [];
  for (const pid of sh(`ip netns pids ${ns}`).split('\n').filter(Boolean)) {
    let comm = '';
    try {
      comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      continue;
    }
    if (comm === 'haproxy') {
      process.kill(Number(pid), 'SIGKILL');
      killed.push(Number(pid));
    }
  }
  return killed;
}

/** The root-namespace pid of a node's PID-namespace init (the runner shell). */
function nodeInit(ns: string): number {
  for (const pid of sh(`ip netns pids ${ns}`).split('\n').filter(Boolean)) {
    try {
      if (/^NSpid:\s+\d+\s+1$/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'))) return Number(pid);
    } catch {
      // gone
    }
  }
  throw new Error(`no init process in ${ns}`);
}

beforeAll(async () => {
  cleanup();
  const versions = installedVersions();

  // The fabric: a bridge namespace with the gateway and 169.254.169.254, two nodes on it.
  sh(`ip netns add ${BRIDGE_NS}`);
  sh(`ip -n ${BRIDGE_NS} link set lo up && ip -n ${BRIDGE_NS} link add br0 type bridge && ip -n ${BRIDGE_NS} link set br0 up`);
  sh(`ip -n ${BRIDGE_NS} addr add ${GATEWAY}/24 dev br0 && ip -n ${BRIDGE_NS} addr add 169.254.169.254/32 dev lo`);
  NODE_NS.forEach((ns, i) => {
    sh(`ip netns add ${ns} && ip -n ${ns} link set lo up`);
    sh(`ip -n ${BRIDGE_NS} link add v${i} type veth peer name eth1 netns ${ns}`);
    sh(`ip -n ${BRIDGE_NS} link set v${i} master br0 && ip -n ${BRIDGE_NS} link set v${i} up`);
    sh(`ip -n ${ns} addr add 10.77.0.${11 + i}/24 dev eth1 && ip -n ${ns} link set eth1 up`);
    sh(`ip -n ${ns} route add 169.254.169.254/32 via ${GATEWAY}`);
    // eth0 carries the anchor IPv4 HAProxy binds on.
    sh(`ip -n ${ns} link add eth0 type veth peer name eth0p && ip -n ${ns} link set eth0 up && ip -n ${ns} link set eth0p up`);
    sh(`ip -n ${ns} addr add 10.78.0.${11 + i}/24 dev eth0`);
  });

  // The stand-in API and metadata service, inside the bridge namespace.
  const standin = spawn('ip', ['netns', 'exec', BRIDGE_NS, process.execPath, join(import.meta.dirname, 'standin-do.ts'), JSON.stringify({
    port: 80, token: TOKEN, floatingIP: FLOATING_IP, droplets: { '10.77.0.11': DROPLET_IDS[0], '10.77.0.12': DROPLET_IDS[1] },
  })], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(standin);
  let buffer = '';
  let listening = false;
  standin.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    let newline;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = JSON.parse(buffer.slice(0, newline)) as Record<string, unknown>;
      buffer = buffer.slice(newline + 1);
      if ('listening' in line) listening = true;
      else requests.push(line);
    }
  });
  await waitFor('the stand-in to listen', 10_000, () => listening);

  // Render both nodes as the operator would, pointed at the stand-in.
  lb = makeLB('hrtf', {
    frontends: [{ name: 'www', port: 80, protocol: 'http', defaultBackend: 'web' }],
    backends: [{ name: 'web', port: 80, servers: [{ name: 's1', address: '10.77.0.50' }] }],
  });
  const observed: ObservedFacts = {
    floatingIP: FLOATING_IP,
    nodes: [0, 1].map((i) => ({
      name: `hrtf-${i}`, dropletID: DROPLET_IDS[i]!, privateIPv4: `10.77.0.${11 + i}`, anchorIPv4: `10.78.0.${11 + i}`,
    })),
  };
  const settings = defaultSettings({ defaultVersions: versions, apiBaseURL: `http://${GATEWAY}`, failoverDeadlineSeconds: 30 });
  const nodes = renderNodes({ lb, secrets: baseSecrets(), observed, settings });
  writeNodes(root, nodes);
  nodeDirs = nodes.map((n) => join(root, n.name));

  const runner = join(root, 'node.sh');
  writeFileSync(runner, `set -eu
dir=$1
mkdir -p "$dir/run" "$dir/var/log"
mount --bind "$dir/etc/haproxy" /etc/haproxy
mount --bind "$dir/etc/keepalived" /etc/keepalived
mkdir -p "$dir/etc/halb"
mount --bind "$dir/etc/halb" /etc/halb
mount --bind "$dir/run" /run
mount --bind "$dir/var/log" /var/log
mkdir -p /run/haproxy /run/halb
haproxy -W -f /etc/haproxy/haproxy.cfg -p /run/haproxy.pid > "$dir/haproxy.out" 2>&1 &
keepalived -n -l -D -f /etc/keepalived/keepalived.conf > "$dir/keepalived.out" 2>&1 &
wait
`);
  NODE_NS.forEach((ns, i) => {
    mkdirSync(join(nodeDirs[i]!, 'run'), { recursive: true });
    const child = spawn('ip', [
      'netns', 'exec', ns, 'unshare', '--pid', '--mount', '--fork', '--kill-child', '--mount-proc', '--propagation', 'private',
      'sh', runner, nodeDirs[i]!,
    ], { stdio: 'ignore' });
    children.push(child);
  });
}, 60_000);

afterAll(async () => {
  for (const child of children) {
    if (child.exitCode === null) child.kill('SIGTERM');
  }
  await sleep(200);
  cleanup();
  rmSync(root, { recursive: true, force: true });
});

describe('two nodes on the real HAProxy and keepalived', () => {
  let master = -1;

  it('elect exactly one MASTER, which claims the reserved IP through the API', async () => {
    // Stable for a second: one MASTER, one BACKUP.
    let stableSince = 0;
    master = await waitFor('exactly one MASTER', 20_000, () => {
      const states = [vrrpState(0), vrrpState(1)];
      const ok = states.filter((s) => s === 'MASTER').length === 1 && states.includes('BACKUP');
      if (!ok) {
        stableSince = 0;
        return undefined;
      }
      stableSince ||= Date.now();
      return Date.now() - stableSince >= 1000 ? states.indexOf('MASTER') : undefined;
    });
    const assign = await waitFor('the MASTER to assign the reserved IP', 15_000, () =>
      requests.find((r) => r.method === 'POST' && r.source === `10.77.0.${11 + master}`));
    expect(assign).toMatchObject({ path: `/v2/reserved_ips/${FLOATING_IP}/actions`, auth: 'ok', status: 201 });
    expect(JSON.parse(assign.body as string)).toEqual({ type: 'assign', droplet_id: DROPLET_IDS[master] });
    await waitFor('the assignment to complete', 15_000, () =>
      existsSync(join(nodeDirs[master]!, 'var/log/halb-failover.log')) &&
      readFileSync(join(nodeDirs[master]!, 'var/log/halb-failover.log'), 'utf8').includes('completed'));
  });

  it('serve the frontend on the anchor IP, metrics on the VPC address and server state on the admin socket', async () => {
    for (const [i, ns] of NODE_NS.entries()) {
      // No backend server exists, so HAProxy itself answers 503 on the anchor address, once its
      // check (2 s to time out against an address nobody holds) has marked the server DOWN.
      const anchorAnswer = () => sh(`ip netns exec ${ns} curl -s -o /dev/null -w '%{http_code}' -m 2 http://10.78.0.${11 + i}/ || true`);
      expect(await waitFor('HAProxy to answer 503 on the anchor address', 10_000, () => anchorAnswer() === '503')).toBe(true);
      expect(sh(`ip netns exec ${ns} curl -s -o /dev/null -w '%{http_code}' -m 2 http://127.0.0.1:8405/healthz`)).toBe('200');
      expect(sh(`ip netns exec ${BRIDGE_NS} curl -s -m 2 http://10.77.0.${11 + i}:8404/metrics`)).toContain('haproxy_process_');
      const state = await new Promise<string>((resolve, reject) => {
        const socket = createConnection(join(nodeDirs[i]!, 'run/haproxy/admin.sock'));
        let text = '';
        socket.on('data', (chunk: Buffer) => { text += chunk.toString(); });
        socket.on('end', () => resolve(text));
        socket.on('error', reject);
        socket.write('show servers state web\n');
      });
      expect(state).toMatch(/^\d+ web \d+ s1 10\.77\.0\.50 /m);
    }
  });

  it('move MASTER to the other node within 3 s of HAProxy dying, and the reserved IP with it', async () => {
    expect(master).toBeGreaterThanOrEqual(0);
    const other = 1 - master;
    const before = requests.length;
    const killedAt = Date.now();
    expect(killHAProxy(NODE_NS[master]!).length).toBeGreaterThan(0);
    await waitFor('the other node to become MASTER', 10_000, () => vrrpState(other) === 'MASTER');
    const tookMs = Date.now() - killedAt;
    console.log(`failover: node ${other} became MASTER ${tookMs} ms after HAProxy was killed on node ${master}`);
    expect(tookMs).toBeLessThan(3000);
    // The old MASTER's notify script runs on its own schedule; it reports FAULT soon.
    await waitFor('the old MASTER to report FAULT', 5_000, () => vrrpState(master) === 'FAULT');

    const assign = await waitFor('the new MASTER to call the API', 15_000, () =>
      requests.slice(before).find((r) => r.method === 'POST' && r.source === `10.77.0.${11 + other}`));
    expect(assign).toMatchObject({ path: `/v2/reserved_ips/${FLOATING_IP}/actions`, auth: 'ok', status: 201 });
    expect(JSON.parse(assign.body as string)).toEqual({ type: 'assign', droplet_id: DROPLET_IDS[other] });
    const log = await waitFor('the failover script to log completion', 15_000, () => {
      const file = join(nodeDirs[other]!, 'var/log/halb-failover.log');
      const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
      return text.includes('completed') ? text : undefined;
    });
    // Every step is logged with a timestamp.
    for (const line of log.trim().split('\n')) expect(line).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ halb-failover\[\d+\]: /);
    expect(log).toContain(`droplet id is ${DROPLET_IDS[other]}`);
    expect(log).not.toContain(TOKEN);
    // The stand-in saw the token only in the Authorization header of API calls.
    expect(requests.filter((r) => String(r.path).startsWith('/v2/')).every((r) => r.auth === 'ok')).toBe(true);
    expect(readdirSync(join(nodeDirs[other]!, 'run/halb'))).toContain('vrrp-state');
  });
  it('after a split brain heals, leave the higher-priority node MASTER holding the reserved IP (notify_master_rx_lower_pri)', async () => {
    const faulted = master;
    // HAProxy back on the failed node: it leaves FAULT for BACKUP (nopreempt keeps it there).
    sh(`nsenter -t ${nodeInit(NODE_NS[faulted]!)} -m -p -n -- haproxy -W -D -f /etc/haproxy/haproxy.cfg -p /run/haproxy.pid`);
    await waitFor('the failed node to return to BACKUP', 15_000, () => vrrpState(faulted) === 'BACKUP');

    // Split brain: the bridge drops VRRP, so the BACKUP hears nothing and becomes MASTER too.
    sh(`ip netns exec ${BRIDGE_NS} nft add table bridge hrtf`);
    sh(`ip netns exec ${BRIDGE_NS} nft add chain bridge hrtf vrrp_block '{ type filter hook forward priority 0; }'`);
    sh(`ip netns exec ${BRIDGE_NS} nft add rule bridge hrtf vrrp_block ip protocol 112 drop`);
    const splitFrom = readLog(faulted).length;
    await waitFor('both nodes MASTER', 10_000, () => vrrpState(0) === 'MASTER' && vrrpState(1) === 'MASTER');
    // The newly split MASTER claims the IP for itself.
    await waitFor('the split MASTER to take the reserved IP', 15_000, () => readLog(faulted).slice(splitFrom).includes(' completed: '));
    const logsBefore = [readLog(0).length, readLog(1).length];

    // Heal: the higher-priority node (node 0, priority 200) stays MASTER and re-asserts the IP.
    sh(`ip netns exec ${BRIDGE_NS} nft delete table bridge hrtf`);
    await waitFor('node 1 back to BACKUP', 10_000, () => vrrpState(0) === 'MASTER' && vrrpState(1) === 'BACKUP');
    const healLog = await waitFor('the failover script to run on node 0 after the heal', 15_000, () => {
      const text = readLog(0).slice(logsBefore[0]);
      return /completed: |already holds/.test(text) ? text : undefined;
    });
    expect(healLog).toContain('started: moving 198.51.100.77 here');
    // Node 1 took the IP during the split: node 0 takes it back. Otherwise node 0 kept it.
    expect(healLog).toMatch(faulted === 1 ? / completed: 198\.51\.100\.77 is on droplet 5001/ : /already holds 198\.51\.100\.77/);
    expect(sh(`ip netns exec ${NODE_NS[0]} curl -s -m 2 http://169.254.169.254/metadata/v1/reserved_ip/ipv4/active`)).toBe('true');
    expect(sh(`ip netns exec ${NODE_NS[1]} curl -s -m 2 http://169.254.169.254/metadata/v1/reserved_ip/ipv4/active`)).toBe('false');
  });

  it('hand MASTER over through the priority-offset file; ' +
    'at the lowest priority a node stays BACKUP yet takes over when it must', async () => {
    const offset = (i: number, value: number) => writeFileSync(join(nodeDirs[i]!, 'etc/halb/priority-offset'), `${value}\n`);
    const from = vrrpState(0) === 'MASTER' ? 0 : 1;
    const to = 1 - from;
    const before = requests.length;
    const logFrom = readLog(to).length;
    const askedAt = Date.now();
    offset(from, -254);
    await waitFor('the BACKUP to take over', 5_000, () => vrrpState(to) === 'MASTER');
    const tookMs = Date.now() - askedAt;
    console.log(`planned hand-over: node ${to} became MASTER ${tookMs} ms after node ${from}'s offset was written`);
    // A priority-0 advert: no advert timeout (3 × 0.2 s) to wait out.
    expect(tookMs).toBeLessThan(1000);
    await waitFor('the old MASTER to report FAULT', 5_000, () => vrrpState(from) === 'FAULT');
    // It still serves on its anchor address while the reserved IP moves.
    expect(sh(`ip netns exec ${NODE_NS[from]} curl -s -o /dev/null -w '%{http_code}' -m 2 http://10.78.0.${11 + from}/`)).toBe('503');
    await waitFor('the new MASTER to move the reserved IP', 15_000, () => readLog(to).slice(logFrom).includes(' completed: '));
    expect(requests.slice(before).some((r) => r.method === 'POST' && r.source === `10.77.0.${11 + to}`)).toBe(true);

    // Maintenance: the lowest priority. The node returns as BACKUP and stays there...
    offset(from, -253);
    await waitFor('the old MASTER back as BACKUP', 5_000, () => vrrpState(from) === 'BACKUP');
    await sleep(1000);
    expect([vrrpState(from), vrrpState(to)]).toEqual(['BACKUP', 'MASTER']);
    // ...but when the MASTER fails, it takes over: maintenance never leaves the pair without one.
    killHAProxy(NODE_NS[to]!);
    await waitFor('the node in maintenance to take over', 5_000, () => vrrpState(from) === 'MASTER');
    offset(from, 0);
  });
});

// Faults: the operator (its own process, as in a cluster) creates, edits and deletes two
// HALoadBalancers while
//  - DigitalOcean answers 30% of requests with a 500, 503 or 429, or drops the connection
//    (half of those after the request took effect: the lost-response trap);
//  - SSH sessions on the nodes are killed at random, every 1-4 s (sshd's session processes,
//    often mid-upload; every 3-8 s with --short);
//  - the operator itself is killed with SIGKILL every 2-8 s (6-15 s with --short) and started
//    again.
// Required: no droplet created twice for one node, nothing left in the account after delete,
// no half-written config on any node (every sample of the live files passes haproxy -c,
// keepalived -t and nft -c), and Ready reached. Prints a table, writes bench/results/faults.json.
// Run as root: npm run bench:faults -- [--short]
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, isReady, nowMs, skipWithoutRoot, sleep, startBench, table, waitFor, writeResult, type Bench } from './lib/harness.ts';

skipWithoutRoot();
const short = process.argv.includes('--short');
const NAMES = short ? ['fa'] : ['fa', 'fb'];
const EDITS = short ? 1 : 3;
const ERROR_RATE = 0.3;
// The short run (CI) injects the same faults less often, so it ends in about a minute on a
// loaded 2-core machine: an operator start alone takes 2-3 s there.
const SSH_KILL_EVERY_MS: [number, number] = short ? [3000, 8000] : [1000, 4000];
const OPERATOR_KILL_EVERY_MS: [number, number] = short ? [6000, 15_000] : [2000, 8000];

const manifest = (name: string, maxconn: number) => JSON.stringify({
  apiVersion: 'halb.dev/v1alpha1', kind: 'HALoadBalancer', metadata: { name },
  spec: {
    region: 'nyc3',
    credentials: { tokenSecretRef: { name: 'do-api', key: 'token' }, sshKeySecretRef: { name: 'halb-ssh', key: 'ssh-privatekey' } },
    floatingIP: { reclaimPolicy: 'Delete' },
    frontends: [{ name: 'www', port: 80, protocol: 'http', defaultBackend: 'web' }],
    backends: [{
      name: 'web', port: 80, maxconnPerServer: maxconn,
      servers: [{ name: 'web-1', address: '10.10.0.21' }, { name: 'web-2', address: '10.10.0.22' }],
    }],
  },
});

const random = (min: number, max: number) => min + Math.random() * (max - min);

let bench: Bench | undefined;
let operator: ChildProcess | undefined;
let running = true;
// Interrupted (Ctrl-C, a CI timeout): the harness removes the sandbox; the operator goes too.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => operator?.kill('SIGKILL'));
try {
  bench = await startBench({ delays: { dropletActiveMs: 500, reservedIpActionMs: 300, dropletActionMs: 300 }, operator: false });
  const b = bench;
  const { status } = b.sandbox;
  const sim = b.sandbox.digitalocean;
  let operatorStarts = 0;
  const startOperator = () => {
    operatorStarts++;
    operator = spawn(process.execPath, [join(ROOT, 'bin/halb.mjs'), 'operator',
      '--kubeconfig', status.kubeconfig, '--do-endpoint', status.digitalocean.endpoint,
      '--failover-api-url', status.digitalocean.endpoint.replace(/\/v2$/, ''),
      '--resync', '2', '--backstop-grace', '10', '--metrics-port=-1', '--no-leader-elect',
      '--log-level', 'error'], { stdio: ['ignore', 'ignore', 'ignore'] });
  };
  const killOperator = () => new Promise<void>((resolve) => {
    const child = operator;
    if (!child || child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });

  // DigitalOcean faults: errors with a status that changes every half second, and dropped
  // connections, 30% of requests in all.
  let dropped = 0;
  sim.faults.errorRate = { '*': ERROR_RATE * 2 / 3 };
  sim.faults.dropConnection = () => {
    if (Math.random() >= ERROR_RATE / 3) return undefined;
    dropped++;
    return Math.random() < 0.5 ? 'before' : 'after';
  };
  const statuses = [500, 503, 429];
  const chaos: Promise<void>[] = [];
  chaos.push((async () => {
    for (let i = 0; running; i++) {
      sim.faults.errorStatus = statuses[i % statuses.length]!;
      await sleep(500);
    }
  })());
  // SSH sessions killed at random on the load-balancer droplets.
  let sessionsKilled = 0;
  chaos.push((async () => {
    while (running) {
      await sleep(random(...SSH_KILL_EVERY_MS));
      const lbs = b.sandbox.fabric.status().hosts.filter((h) => h.role === 'loadbalancer');
      const target = lbs[Math.floor(Math.random() * lbs.length)];
      if (!target) continue;
      const killSessions = "pids=$(pgrep -f '^sshd: root@notty') && kill -9 $pids && echo $pids | wc -w || echo 0";
      const out = await b.exec(target.name, ['sh', '-c', killSessions]).catch(() => '0');
      sessionsKilled += Number(out.trim()) || 0;
    }
  })());
  // The operator killed at random, started again 0.2-1 s later.
  let operatorKills = 0;
  startOperator();
  chaos.push((async () => {
    while (running) {
      await sleep(random(...OPERATOR_KILL_EVERY_MS));
      if (!running) break;
      await killOperator();
      operatorKills++;
      await sleep(random(200, 1000));
      if (running) startOperator();
    }
  })());
  // Half-written config: every sample of each node's live files must pass the daemons' checks.
  let configSamples = 0;
  const badConfigs: string[] = [];
  chaos.push((async () => {
    while (running) {
      for (const h of b.sandbox.fabric.status().hosts.filter((x) => x.role === 'loadbalancer')) {
        const out = await b.exec(h.name, ['sh', '-c', [
          'cd /etc && [ -f haproxy/haproxy.cfg ] || exit 0',
          'haproxy -c -q -f haproxy/haproxy.cfg >/dev/null 2>&1 || echo "haproxy.cfg"',
          '[ ! -f keepalived/keepalived.conf ] || keepalived -t -f keepalived/keepalived.conf >/dev/null 2>&1 || echo "keepalived.conf"',
          '[ ! -f halb/firewall.nft ] || nft -c -f halb/firewall.nft >/dev/null 2>&1 || echo "firewall.nft"',
          'echo checked',
        ].join('; ')]).catch(() => '');
        if (out.includes('checked')) configSamples++;
        for (const bad of out.split('\n').filter((l) => l && l !== 'checked')) badConfigs.push(`${h.name}: ${bad}`);
      }
      await sleep(500);
    }
  })());
  // Duplicates: every droplet id ever seen, per owner uid and node index.
  const seen = new Map<string, Set<number>>();
  chaos.push((async () => {
    while (running) {
      for (const d of sim.state.dropletViews()) {
        const uid = d.tags.find((t) => t.startsWith('halb-uid-'));
        const index = d.tags.find((t) => t.startsWith('halb-node-'));
        if (!uid || !index) continue;
        const key = `${uid}/${index}`;
        seen.set(key, (seen.get(key) ?? new Set()).add(d.id));
      }
      await sleep(100);
    }
  })());

  const t0 = nowMs();
  for (const name of NAMES) {
    const applied = await b.kubectl(['apply', '-f', '-'], manifest(name, 100));
    if (applied.code !== 0) throw new Error(`kubectl apply failed: ${applied.stderr}`);
  }
  const readyAt: Record<string, number> = {};
  await Promise.all(NAMES.map(async (name) => {
    await waitFor(`${name} Ready under faults`, async () => isReady((await b.get(name))?.status), 600_000, 500);
    readyAt[name] = Math.round((nowMs() - t0) / 100) / 10;
    console.log(`  ${name} Ready after ${readyAt[name]} s`);
  }));
  // Spec edits under the same faults, each waited for until live on both nodes.
  for (let i = 1; i <= EDITS; i++) {
    for (const name of NAMES) {
      await b.patch(name, {
        spec: {
          backends: [{
            name: 'web', port: 80, maxconnPerServer: 100 + i,
            servers: [{ name: 'web-1', address: '10.10.0.21' }, { name: 'web-2', address: '10.10.0.22' }],
          }],
        },
      });
    }
    let why = '';
    await Promise.all(NAMES.map((name) => waitFor(`${name} edit ${i} live`, async () => {
      for (const node of [`${name}-0`, `${name}-1`]) {
        const cfg = await b.exec(node, ['cat', '/etc/haproxy/haproxy.cfg']).catch((err: Error) => `(${err.message})`);
        if (!cfg.includes(`maxconn ${100 + i}`)) {
          if (why !== `${node}: ${cfg.slice(0, 200)}`) {
            console.log(`  waiting for edit ${i} on ${node}: ${(why = `${node}: ${cfg.slice(0, 200)}`)}`);
          }
          return false;
        }
      }
      return true;
    }, 600_000, 500)));
    console.log(`  edit ${i} live after ${Math.round((nowMs() - t0) / 100) / 10} s`);
  }
  const editsDoneS = Math.round((nowMs() - t0) / 100) / 10;
  for (const name of NAMES) await b.kubectl(['delete', 'halb', name, '--wait=false']);
  await waitFor('both deleted', async () => (await Promise.all(NAMES.map((n) => b.get(n)))).every((o) => o === undefined), 600_000, 500);
  const deletedS = Math.round((nowMs() - t0) / 100) / 10;
  running = false;
  await Promise.all(chaos);
  await killOperator();
  sim.faults.errorRate = {};
  sim.faults.dropConnection = undefined;

  const duplicates = [...seen].filter(([, ids]) => ids.size > 1).map(([key, ids]) => `${key}: ${[...ids].join(', ')}`);
  const leftDroplets = sim.state.dropletViews().filter((d) => d.tags.includes('halb')).map((d) => d.name);
  const leftIPs = sim.state.listReservedIps().map((r) => String(r.ip));
  const responses = sim.responses;
  const injected = responses.filter((r) => r.status >= 429).length;

  console.log(`\nfaults: ${NAMES.length} HALoadBalancers created, edited ${EDITS}x and deleted by an operator killed at random, ` +
    `with DigitalOcean failing ${ERROR_RATE * 100}% of requests and SSH sessions killed`);
  console.log(table(['measure', 'value'], [
    ['DigitalOcean responses / 429 or 5xx among them / connections dropped', `${responses.length} / ${injected} / ${dropped}`],
    ['SSH sessions killed', String(sessionsKilled)],
    ['operator killed (SIGKILL) / started', `${operatorKills} / ${operatorStarts}`],
    ['Ready after (s)', NAMES.map((n) => `${n} ${readyAt[n]}`).join(', ')],
    ['edits live after (s)', String(editsDoneS)],
    ['deleted after (s)', String(deletedS)],
    ['config samples checked / not valid', `${configSamples} / ${badConfigs.length}`],
    ['nodes with more than one droplet', String(duplicates.length)],
    ['left after delete: droplets / reserved IPs', `${leftDroplets.length} / ${leftIPs.length}`],
  ]));
  const targets: [string, boolean][] = [
    ['0 duplicate droplets', duplicates.length === 0],
    ['0 orphans after delete', leftDroplets.length === 0 && leftIPs.length === 0],
    ['no half-written config ever served', badConfigs.length === 0 && configSamples > 0],
    ['Ready reached', NAMES.every((n) => readyAt[n] !== undefined)],
  ];
  console.log(`\n${table(['target', 'met'], targets.map(([t, ok]) => [t, ok ? 'yes' : 'NO']))}`);
  const file = writeResult(short ? 'faults-short' : 'faults', {
    objects: NAMES.length, edits: EDITS, errorRate: ERROR_RATE, responses: responses.length, injectedErrors: injected,
    droppedConnections: dropped,
    sshSessionsKilled: sessionsKilled, operatorKills, readyAfterS: readyAt, editsLiveAfterS: editsDoneS, deletedAfterS: deletedS,
    configSamples, badConfigs, duplicates, leftDroplets, leftReservedIPs: leftIPs,
    targets: Object.fromEntries(targets),
  });
  console.log(`wrote ${file}`);
  if (targets.some(([, ok]) => !ok)) process.exitCode = 1;
} finally {
  running = false;
  operator?.kill('SIGKILL');
  await bench?.close();
}

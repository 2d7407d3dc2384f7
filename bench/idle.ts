// False failovers: a Ready pair left idle while a CPU hog saturates every core inside both
// load-balancer droplets (one busy loop per core, in each droplet's own PID namespace). Every
// 100 ms it reads both nodes' VRRP state and the reserved IP's holder; any change is a false
// failover (nothing failed). A client requests the floating IP every 200 ms throughout.
// Prints a table and writes bench/results/idle.json.
// Run as root: npm run bench:idle -- [seconds, default 600]
import { cpus } from 'node:os';
import { outageMs, startProbe } from './lib/probe.ts';
import { DEBIAN_13 } from '../src/sandbox/fabric/index.ts';
import {
  DROPLET_IMAGE, applyUntilReady, nowMs, skipWithoutRoot, sleep, startBench, table, writeResult, type Bench,
} from './lib/harness.ts';

skipWithoutRoot();
const seconds = Number(process.argv[2] ?? 600);
if (!Number.isFinite(seconds) || seconds <= 0) throw new Error(`seconds: expected a positive number, got ${process.argv[2]}`);
const NAME = 'idle';
const NODES = [`${NAME}-0`, `${NAME}-1`];
const HOGS = cpus().length;

let bench: Bench | undefined;
try {
  bench = await startBench({ delays: { dropletActiveMs: 0, reservedIpActionMs: 0, dropletActionMs: 0 } });
  const b = bench;
  const ready = await applyUntilReady(b, NAME);
  const ip = ready.floatingIP!;
  const state = b.sandbox.digitalocean.state;
  const read = async () => ({
    states: await Promise.all(NODES.map((n) => b.exec(n, ['cat', '/run/halb/vrrp-state']).then((s) => s.trim(), () => '?'))),
    holder: state.reservedIpHolder(ip),
  });
  const before = await read();

  // The hog: a busy loop per core in each droplet, at the droplet's default priority.
  for (const n of NODES) {
    await b.exec(n, ['sh', '-c', `for i in $(seq ${HOGS}); do sh -c 'while :; do :; done' >/dev/null 2>&1 & done; echo started`]);
  }
  const load = (await b.exec(NODES[0]!, ['sh', '-c', 'sleep 2; cat /proc/loadavg'])).trim();

  const probe = startProbe(b.clientNamespace, `http://${ip}/`, 200, 2000);
  const changes: { atS: number; states: string[]; holder: number | null | undefined }[] = [];
  const t0 = nowMs();
  let last = before;
  let samples = 0;
  try {
    while (nowMs() - t0 < seconds * 1000) {
      const now = await read();
      samples++;
      if (now.states.join() !== last.states.join() || now.holder !== last.holder) {
        changes.push({ atS: Math.round((nowMs() - t0) / 100) / 10, states: now.states, holder: now.holder });
        console.log(`  at ${changes.at(-1)!.atS} s: ${NODES.map((n, i) => `${n} ${now.states[i]}`).join(', ')}, holder ${now.holder}`);
      }
      last = now;
      await sleep(100);
    }
  } finally {
    await probe.stop();
    for (const n of NODES) await b.exec(n, ['sh', '-c', "pkill -f 'while :; do :; done' || true"]).catch(() => undefined);
  }
  const failed = probe.samples.filter((s) => !s.ok).length;
  const o = outageMs(probe.samples);
  console.log(`\nidle on ${DROPLET_IMAGE}: ${seconds} s, ${HOGS} busy loops per droplet (load average inside: ${load}), ` +
    'VRRP state and holder read every 100 ms');
  console.log(table(['measure', 'value'], [
    ['state/holder samples', String(samples)],
    ['changes of VRRP state or IP holder (false failovers)', String(changes.length)],
    ['client requests / failed', `${probe.samples.length} / ${failed}`],
    ['longest run of failed requests (ms)', String(Math.round(o.outageMs))],
  ]));
  const met = changes.length === 0;
  console.log(`\n${table(['target', 'met'], [[`0 false failovers in ${seconds} s idle under a CPU hog`, met ? 'yes' : 'NO']])}`);
  // Each image has its own result.
  const suffix = DROPLET_IMAGE === DEBIAN_13.slug ? `-${DEBIAN_13.slug}` : '';
  const file = writeResult(`${seconds >= 600 ? 'idle' : 'idle-short'}${suffix}`, {
    image: DROPLET_IMAGE, seconds, hogsPerDroplet: HOGS, loadAverage: load, samples, changes, requests: probe.samples.length,
    failedRequests: failed,
    target: { falseFailovers: 0, met },
  });
  console.log(`wrote ${file}`);
  if (!met) process.exitCode = 1;
} finally {
  await bench?.close();
}

// Zero-drop reloads: a client in the sandbox's client namespace sends a request to the floating
// IP every 20 ms while the HALoadBalancer's spec is edited 50 times, each edit waited for until
// it is live on both nodes (new haproxy.cfg, HAProxy reloaded). Counts the failed requests and
// any failover. Prints a table and writes bench/results/reload.json.
// Run as root: npm run bench:reload -- [changes, default 50]
import { editUntilLive } from './lib/live.ts';
import { outageMs, startProbe } from './lib/probe.ts';
import {
  applyUntilReady, countArgument, nowMs, skipWithoutRoot, sleep, startBench, summarize, table, writeResult, type Bench,
} from './lib/harness.ts';

skipWithoutRoot();
const changes = countArgument(2, 'changes', 50);
const NAME = 'rl';
const NODES = [`${NAME}-0`, `${NAME}-1`];
const PERIOD_MS = 20;

let bench: Bench | undefined;
try {
  bench = await startBench({ delays: { dropletActiveMs: 0, reservedIpActionMs: 0, dropletActionMs: 0 } });
  const b = bench;
  const ready = await applyUntilReady(b, NAME);
  const ip = ready.floatingIP!;
  const state = b.sandbox.digitalocean.state;
  const holderBefore = state.reservedIpHolder(ip);
  const masterBefore = await Promise.all(NODES.map((n) => b.exec(n, ['cat', '/run/halb/vrrp-state']).then((s) => s.trim())));

  const probe = startProbe(b.clientNamespace, `http://${ip}/`, PERIOD_MS);
  const editMs: number[] = [];
  let t0 = 0;
  try {
    await sleep(1000);
    t0 = nowMs();
    for (let i = 1; i <= changes; i++) {
      // Every edit renders a different haproxy.cfg: maxconn on each server.
      const maxconn = 100 + i;
      const backend = {
        name: 'web', balance: 'roundrobin', port: 80, maxconnPerServer: maxconn, healthCheck: { protocol: 'http', path: '/' },
        servers: [{ name: 'web-1', address: '10.10.0.21' }, { name: 'web-2', address: '10.10.0.22' }],
      };
      editMs.push(Math.round(await editUntilLive(b, NAME, NODES, { spec: { backends: [backend] } }, `maxconn ${maxconn}`)));
      if (i % 10 === 0) console.log(`  ${i} changes live on both nodes`);
    }
    // The answers of the requests sent during the last reload.
    await sleep(1500);
  } finally {
    await probe.stop();
  }
  const during = probe.samples.filter((s) => s.sentMs >= t0);
  const o = outageMs(during);
  const failures = during.filter((s) => !s.ok);
  const masterAfter = await Promise.all(NODES.map((n) => b.exec(n, ['cat', '/run/halb/vrrp-state']).then((s) => s.trim())));
  const failedOver = state.reservedIpHolder(ip) !== holderBefore || masterAfter.join() !== masterBefore.join();
  const edit = summarize(editMs);
  console.log(`\nreload: ${changes} config changes, each live on ${NODES.length} nodes, a client sending every ${PERIOD_MS} ms`);
  console.log(table(['measure', 'value'], [
    ['requests sent', String(during.length)],
    ['requests failed', String(failures.length)],
    ['longest run of failures (ms)', String(Math.round(o.outageMs))],
    ['failover during the changes', failedOver ? 'YES' : 'no'],
    ['edit -> live on all nodes p50 / p95 / max (ms)', `${edit.p50} / ${edit.p95} / ${edit.max}`],
  ]));
  const met = failures.length === 0 && !failedOver;
  console.log(`\n${table(['target', 'met'], [[`0 failed requests during ${changes} config changes`, met ? 'yes' : 'NO']])}`);
  const file = writeResult('reload', {
    changes, periodMs: PERIOD_MS, sent: during.length, failed: failures.length, failedOver,
    failures: failures.slice(0, 50).map((s) => ({ atMs: Math.round(s.sentMs - t0), detail: s.detail })),
    editToLive: edit, editMs, target: { failedRequests: 0, met },
  });
  console.log(`wrote ${file}`);
  if (!met) process.exitCode = 1;
} finally {
  await bench?.close();
}

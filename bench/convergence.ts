// How fast the operator converges, with DigitalOcean's boot delay and action latency at 0:
// kubectl apply of a two-node HALoadBalancer until Ready=True, and a spec edit until it is live
// on every node (the new haproxy.cfg in place and HAProxy reloaded onto it).
// Prints a table and writes bench/results/convergence.json.
// Run as root: npm run bench:convergence -- [apply trials, default 3] [edits, default 10]
import { editUntilLive } from './lib/live.ts';
import {
  countArgument, isReady, manifest, nowMs, skipWithoutRoot, startBench, summarize, table, waitFor, writeResult, type Bench, failMargin,
} from './lib/harness.ts';

skipWithoutRoot();
const applies = countArgument(2, 'apply trials', 3);
const edits = countArgument(3, 'edits', 10);

let bench: Bench | undefined;
try {
  bench = await startBench({ delays: { dropletActiveMs: 0, reservedIpActionMs: 0, dropletActionMs: 0 } });
  const b = bench;
  const applyMs: number[] = [];
  for (let i = 1; i <= applies; i++) {
    const name = `cv${i}`;
    const t0 = nowMs();
    const applied = await b.kubectl(['apply', '-f', '-'], manifest(name));
    if (applied.code !== 0) throw new Error(`kubectl apply failed: ${applied.stderr}`);
    await waitFor(`${name} Ready`, async () => isReady((await b.get(name))?.status) || undefined, 180_000, 50);
    applyMs.push(Math.round(nowMs() - t0));
    console.log(`  apply -> Ready #${i}: ${applyMs.at(-1)} ms`);
    // One load balancer at a time, so every trial runs on the same machine load.
    if (i < applies) {
      const deleted = await b.kubectl(['delete', 'halb', name, '--timeout=120s']);
      if (deleted.code !== 0) throw new Error(`kubectl delete failed: ${deleted.stderr}`);
    }
  }

  const name = `cv${applies}`;
  const nodes = [`${name}-0`, `${name}-1`];
  const editMs: number[] = [];
  for (let i = 1; i <= edits; i++) {
    const maxconn = 100 + i;
    const backend = {
      name: 'web', balance: 'roundrobin', port: 80, maxconnPerServer: maxconn, healthCheck: { protocol: 'http', path: '/' },
      servers: [{ name: 'web-1', address: '10.10.0.21' }, { name: 'web-2', address: '10.10.0.22' }],
    };
    editMs.push(Math.round(await editUntilLive(b, name, nodes, { spec: { backends: [backend] } }, `maxconn ${maxconn}`)));
    console.log(`  spec edit -> live on ${nodes.length} nodes #${i}: ${editMs.at(-1)} ms`);
  }

  const apply = summarize(applyMs);
  const edit = summarize(editMs);
  const targets = [
    // Issue 18's targets (persistent sessions, one round trip per apply, no idle steps).
    { target: 'apply -> Ready, 2 nodes: p50 <= 4000 ms', valueMs: apply.p50, boundMs: 4000 },
    { target: 'spec edit -> live on all nodes: p50 <= 1000 ms', valueMs: edit.p50, boundMs: 1000 },
    { target: 'spec edit -> live on all nodes: p95 <= 1500 ms', valueMs: edit.p95, boundMs: 1500 },
  ].map((t) => ({ ...t, met: t.valueMs <= t.boundMs }));
  console.log('\nconvergence, DigitalOcean boot delay and action latency 0, in ms');
  console.log(table(['measure', 'n', 'p50', 'p95', 'max'], [
    ['kubectl apply -> Ready (2 nodes)', String(apply.n), String(apply.p50), String(apply.p95), String(apply.max)],
    ['spec edit -> live on all nodes', String(edit.n), String(edit.p50), String(edit.p95), String(edit.max)],
  ]));
  console.log(`\n${table(['target', 'ms', 'met'], targets.map((t) => [t.target, String(t.valueMs), t.met ? 'yes' : 'NO']))}`);
  const file = writeResult('convergence', { applies, edits, summary: { applyToReady: apply, editToLive: edit }, targets, applyMs, editMs });
  console.log(`wrote ${file}`);
  if (targets.some((t) => t.valueMs > failMargin() * t.boundMs)) process.exitCode = 1;
} finally {
  await bench?.close();
}

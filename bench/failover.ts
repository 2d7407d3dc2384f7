// Failover as a client sees it: a client in the sandbox's client namespace sends a request to
// the floating IP every 20 ms while the MASTER loses (a) HAProxy, (b) the whole host (every
// process killed with -9), (c) its VPC link. Each failure runs N times under each profile:
// halb's defaults and a "fast" profile with DigitalOcean's action latency 0, the defaults with a
// realistic action latency, and the reference from the tutorial (advert 1 s, a process check
// every 2 s). Prints a table and writes bench/results/failover.json.
// Run as root: npm run bench:failover -- [trials per failure and profile, default 3]
import { startOrReloadScript } from '../src/hosts/remote.ts';
import { DEFAULT_DELAYS } from '../src/sandbox/digitalocean/simulator.ts';
import { outageMs, sentBetween, startProbe, type ProbeSample } from './lib/probe.ts';
import { DEBIAN_13 } from '../src/sandbox/fabric/index.ts';
import {
  DROPLET_IMAGE, applyUntilReady, countArgument, nowMs, skipWithoutRoot, sleep, startBench, summarize, table, waitFor, writeResult,
  type Bench, failMargin,
} from './lib/harness.ts';

skipWithoutRoot();
const trials = countArgument(2, 'trials', 3);
// HALB_BENCH_PROFILES=fast,reference runs only those profiles.
const only = process.env.HALB_BENCH_PROFILES?.split(',');

const NAME = 'fo';
const NODES = [`${NAME}-0`, `${NAME}-1`];
const PERIOD_MS = 20;

type Failure = 'haproxy' | 'host' | 'link';
const FAILURES: { id: Failure; label: string }[] = [
  { id: 'haproxy', label: '(a) HAProxy dies on the MASTER' },
  { id: 'host', label: '(b) MASTER host crashes (kill -9 all)' },
  { id: 'link', label: '(c) MASTER VPC link down' },
];

interface Profile {
  id: string;
  label: string;
  failover: Record<string, unknown>;
  advertInterval: number;
  actionMs: number;
  /** The tutorial's keepalived check, written over the rendered one on the nodes. */
  tutorialCheck?: boolean;
  /** Run only when named in HALB_BENCH_PROFILES. */
  optIn?: boolean;
}
// keepalived 2.3.2+ (debian-13-x64) checks HAProxy every 0.2 s by default; 2.2.7 every second.
const onDebian13 = DROPLET_IMAGE === DEBIAN_13.slug;
const CHECK = onDebian13 ? 'check 0.2 s' : 'check 1 s';
const PROFILES: Profile[] = [
  {
    id: 'default', label: `halb default (advert 0.2 s, ${CHECK})`, failover: { advertIntervalSeconds: null }, advertInterval: 0.2,
    actionMs: 0,
  },
  { id: 'fast', label: `halb fast (advert 0.1 s, ${CHECK})`, failover: { advertIntervalSeconds: 0.1 }, advertInterval: 0.1, actionMs: 0 },
  {
    id: 'default-do-latency', label: `halb default, DO action ${DEFAULT_DELAYS.reservedIpActionMs / 1000} s`,
    failover: { advertIntervalSeconds: null }, advertInterval: 0.2, actionMs: DEFAULT_DELAYS.reservedIpActionMs,
  },
  // Opt-in (HALB_BENCH_PROFILES=faster): advert 0.05 s, not measured for false failovers.
  {
    id: 'faster', label: 'halb advert 0.05 s (opt-in)', failover: { advertIntervalSeconds: 0.05 }, advertInterval: 0.05, actionMs: 0,
    optIn: true,
  },
  {
    id: 'reference', label: 'reference: tutorial (advert 1 s, process check every 2 s)', failover: { advertIntervalSeconds: 1 },
    advertInterval: 1, actionMs: 0, tutorialCheck: true,
  },
];

// The DigitalOcean tutorial's check is "pidof haproxy" every 2 s, with keepalived's default fall
// and rise of 1. pidof run by keepalived fails in these droplets (the node goes FAULT with HAProxy
// up), so the reference checks the same thing, that the HAProxy process exists, through its
// pid file; the interval and thresholds are the tutorial's.
const TUTORIAL_CHECK = [
  'printf \'#!/bin/sh\\nkill -0 "$(cat /run/haproxy.pid)"\\n\' > /etc/keepalived/tutorial-check.sh',
  'chmod 755 /etc/keepalived/tutorial-check.sh',
  'sed -i \'/^vrrp_script/,/^}/{s#^    script .*#    script "/etc/keepalived/tutorial-check.sh"#;s#^    interval .*#    interval 2#;' +
    '/^    timeout 1/d;/^    fall 1/d;/^    rise 2/d}\' /etc/keepalived/keepalived.conf',
  'kill -HUP "$(cat /run/keepalived.pid)"',
].join(' && ');

const chosen = PROFILES.filter((p) => (only ? only.includes(p.id) : !p.optIn));
if (only && chosen.length !== only.length) {
  throw new Error(`HALB_BENCH_PROFILES: unknown profile in ${only.join(',')}; known: ${PROFILES.map((p) => p.id).join(', ')}`);
}

let bench: Bench | undefined;
try {
  bench = await startBench({ delays: { dropletActiveMs: 0, reservedIpActionMs: 0, dropletActionMs: 0 }, resyncIntervalMs: 30_000 });
  const b = bench;
  const state = b.sandbox.digitalocean.state;
  const ready = await applyUntilReady(b, NAME);
  const ip = ready.floatingIP!;
  // Debian's haproxy.service restarts a dead HAProxy at once (Restart=always), which would hide
  // the failover measured here: a runtime drop-in (gone at the next boot, so set before each
  // trial) turns that off, so HAProxy stays dead as on the other image.
  const holdHAProxyDown = async (node: string) => {
    if (!onDebian13) return;
    await b.exec(node, ['sh', '-c', 'mkdir -p /run/systemd/system/haproxy.service.d && ' +
      'printf "[Service]\\nRestart=no\\n" > /run/systemd/system/haproxy.service.d/bench.conf && systemctl daemon-reload']);
  };
  const idOf = (node: string) => state.dropletViews().find((d) => d.name === node)!.id;

  const vrrp = async (node: string) => {
    try {
      const states = await b.exec(node, ['sh', '-c', 'cat /run/halb/vrrp-state; kill -0 $(cat /run/haproxy.pid) && echo haproxy-up']);
      return states.trim().split('\n');
    } catch {
      return ['DOWN'];
    }
  };
  /** One MASTER holding the IP, one BACKUP, HAProxy up on both, the client served for 0.5 s. */
  let lastStates: string[][] = [];
  const steady = (what: string, timeoutMs = 60_000) => waitFor(what, async () => {
    const states = await Promise.all(NODES.map(vrrp));
    lastStates = states;
    const mi = states.findIndex((s) => s[0] === 'MASTER');
    if (mi < 0 || states[1 - mi]![0] !== 'BACKUP' || !states.every((s) => s[1] === 'haproxy-up')) return undefined;
    const master = NODES[mi]!;
    if (state.reservedIpHolder(ip) !== idOf(master)) return undefined;
    const recent = sentBetween(probe.samples, nowMs() - 1500, nowMs() - 1000);
    if (recent.length < 10 || recent.some((s) => !s.ok)) return undefined;
    return { master, other: NODES[1 - mi]! };
  }, timeoutMs, 200).catch((err: Error) => {
    throw new Error(`${err.message}: nodes ${JSON.stringify(lastStates)}, IP on droplet ${state.reservedIpHolder(ip)}`);
  });

  const probe = startProbe(b.clientNamespace, `http://${ip}/`, PERIOD_MS);
  const discarded: { profile: string; failure: Failure; outcome: string; ipMovedMs: number | undefined }[] = [];
  const results: {
    profile: string; failure: Failure; trial: number; outageMs: number; failed: number; ipMovedMs: number | undefined; master: string;
    oldMaster: string; statusAfterTrafficMs: number | undefined; statusAfterFailoverMs: number | undefined;
  }[] = [];
  try {
    for (const profile of chosen) {
      b.sandbox.digitalocean.delays.reservedIpActionMs = profile.actionMs;
      await b.patch(NAME, { spec: { failover: profile.failover } });
      await waitFor(`advert_int ${profile.advertInterval} on both nodes`, async () => {
        const confs = await Promise.all(NODES.map((n) => b.exec(n, ['cat', '/etc/keepalived/keepalived.conf']).catch(() => '')));
        return confs.every((c) => c.includes(`advert_int ${profile.advertInterval}\n`)) || undefined;
      }, 60_000, 250);
      if (profile.tutorialCheck) for (const n of NODES) await b.exec(n, ['sh', '-c', TUTORIAL_CHECK]);
      // The operator looks again 2 s after a pass that changed something; had that pass run
      // during a trial, it would restart a killed HAProxy and cut the outage short.
      await sleep(4000);
      await steady(`${profile.id}: steady state`);
      for (const failure of FAILURES) {
        for (let trial = 1; trial <= trials; trial++) {
          const { master, other } = await steady(`${profile.id} ${failure.id} #${trial}: steady state`);
          if (failure.id === 'haproxy') await holdHAProxyDown(master);
          await sleep(300);
          const t0 = nowMs();
          // When the simulator re-pointed the floating IP (its assign action completed).
          let ipMovedMs: number | undefined;
          const watchIP = setInterval(() => {
            if (ipMovedMs === undefined && state.reservedIpHolder(ip) === idOf(other)) ipMovedMs = Math.round(nowMs() - t0);
          }, 5);
          // When the HALoadBalancer's status first named the new holder (status.activeNode).
          let statusAt: number | undefined;
          let reading = false; // one read at a time: a slow answer must not pile reads up
          const watchStatus = setInterval(() => {
            if (statusAt !== undefined || reading) return;
            reading = true;
            void b.get(NAME).then((o) => {
              if (statusAt === undefined && ipMovedMs !== undefined && o?.status?.activeNode === other) statusAt = nowMs();
            }, () => undefined).finally(() => { reading = false; });
          }, 50);
          if (failure.id === 'haproxy') await b.exec(master, ['sh', '-c', 'kill $(cat /run/haproxy.pid)']);
          else if (failure.id === 'host') await b.sandbox.fabric.stopDroplet(master);
          else await b.exec(master, ['ip', 'link', 'set', 'eth1', 'down']);
          // Served again through the other node for 0.5 s, then the answers of requests still
          // in flight (1 s timeout).
          const outcome = await waitFor(`${profile.id} ${failure.id} #${trial}: traffic through ${other}`, () => {
            const after = sentBetween(probe.samples, t0, nowMs() - 1000);
            const served = after.length > 25 && after.slice(-25).every((s) => s.ok);
            if (state.reservedIpHolder(ip) !== idOf(other)) return served && nowMs() - t0 > 6000 ? 'served-without-failover' : undefined;
            return served ? 'failed-over' : undefined;
          }, 30_000, 100).catch((err: Error) => {
            const after = sentBetween(probe.samples, t0, nowMs());
            const failedSince = after.filter((s) => !s.ok).length;
            throw new Error(`${err.message} (holder ${state.reservedIpHolder(ip)}, ${other} is ${idOf(other)}; ` +
              `${after.length} requests since, ${failedSince} failed, last: ${JSON.stringify(after.slice(-3))})`);
          });
          await sleep(1200);
          clearInterval(watchIP);
          const statusShown = () => statusAt !== undefined || undefined;
          const statusWhat = `${profile.id} ${failure.id} #${trial}: status.activeNode ${other}`;
          await waitFor(statusWhat, statusShown, 30_000, 50).catch(() => undefined);
          clearInterval(watchStatus);
          const oldMaster = failure.id === 'host' ? 'crashed' : (await b.exec(master, [
            'sh', '-c', 'cat /run/halb/vrrp-state; pidof haproxy >/dev/null && echo haproxy-up || echo haproxy-down',
          ]).catch(() => '?')).trim().replace('\n', ', ');
          // The operator restarts a dead HAProxy when it passes by. Restarted before keepalived
          // moved MASTER, the outage measured is the operator's repair, not the failover: the trial
          // is run again. Restarted after (it follows keepalived's state over SSH and repairs a
          // FAULT node at once), the failover happened first and the trial stands.
          if (failure.id === 'haproxy' && outcome === 'served-without-failover') {
            console.log(`  ${profile.id.padEnd(18)} ${failure.id.padEnd(7)} #${trial}: ` +
              `discarded, the operator restarted HAProxy on ${master} during the trial (${outcome})`);
            discarded.push({ profile: profile.id, failure: failure.id, outcome, ipMovedMs });
            await waitFor(`daemons started on ${master}`,
              () => b.exec(master, ['sh', '-c', startOrReloadScript()]).then(() => true, () => undefined), 30_000, 250);
            if (discarded.length > 3 * trials) throw new Error('the operator cut too many HAProxy trials short');
            trial--;
            continue;
          }
          const window: ProbeSample[] = sentBetween(probe.samples, t0 - 50, nowMs() - 1100);
          const o = outageMs(window);
          const trafficBack = o.endMs ?? t0; // nothing failed: traffic never left
          const statusAfterTrafficMs = statusAt === undefined ? undefined : Math.max(0, Math.round(statusAt - trafficBack));
          // With a slow DigitalOcean action the repaired old MASTER may serve again before the IP
          // moves; status cannot name the new holder before it is one, so count from the move then.
          const failedOver = Math.max(trafficBack, t0 + (ipMovedMs ?? 0));
          const statusAfterFailoverMs = statusAt === undefined ? undefined : Math.max(0, Math.round(statusAt - failedOver));
          results.push({
            profile: profile.id, failure: failure.id, trial, outageMs: Math.round(o.outageMs), failed: o.failed, ipMovedMs, master,
            oldMaster, statusAfterTrafficMs, statusAfterFailoverMs,
          });
          console.log(`  ${profile.id.padEnd(18)} ${failure.id.padEnd(7)} #${trial}: outage ${Math.round(o.outageMs)} ms ` +
            `(${o.failed} of ${o.sent} requests failed; IP moved after ${ipMovedMs} ms; ${master} -> ${other}; ` +
            `old MASTER now ${oldMaster}; status showed ${other} ${statusAfterTrafficMs ?? 'never'} ms after traffic returned, ` +
            `${statusAfterFailoverMs ?? 'never'} ms after traffic and IP were both moved)`);
          // Back to two healthy nodes, with the operator's own start script (its resync, 30 s as
          // in production, would do the same later; run sooner, it would cut outages short).
          if (failure.id === 'host') {
            await b.sandbox.fabric.startDroplet(master);
            // Booted (sshd up) first: run before systemd is, the start script would start the
            // daemons by hand, beside the units systemd starts a moment later.
            await b.sandbox.fabric.waitForDroplet(master, 180_000);
          }
          if (failure.id === 'link') {
            await b.exec(master, ['ip', 'link', 'set', 'eth1', 'up']);
          } else {
            await waitFor(`daemons started on ${master}`,
              () => b.exec(master, ['sh', '-c', startOrReloadScript()]).then(() => true, () => undefined), 30_000, 250);
          }
          probe.samples.splice(0, probe.samples.length - 200);
        }
      }
    }
  } finally {
    await probe.stop();
  }

  const rows: string[][] = [];
  const ran = new Set(results.map((r) => r.profile));
  const summary: Record<string, Record<string, ReturnType<typeof summarize>>> = {};
  for (const profile of chosen) {
    summary[profile.id] = {};
    for (const failure of FAILURES) {
      const s = summarize(results.filter((r) => r.profile === profile.id && r.failure === failure.id).map((r) => r.outageMs));
      summary[profile.id]![failure.id] = s;
      rows.push([profile.label, failure.label, String(s.n), `${s.p50}`, `${s.p95}`, `${s.max}`]);
    }
  }
  const p95 = (p: string, f: Failure) => summary[p]?.[f]?.p95 ?? NaN;
  // Failover -> status: from the client's traffic returning to status.activeNode naming the new
  // holder (a trial where status never showed it counts as 30 s); and from the later of that and
  // the IP's move, which the target is judged on.
  const statusSummary = summarize(results.map((r) => r.statusAfterTrafficMs ?? 30_000));
  const statusAfterFailover = summarize(results.map((r) => r.statusAfterFailoverMs ?? 30_000));
  const statusFigures = [
    ['the client\'s traffic returned', statusSummary], ['traffic returned and the IP moved', statusAfterFailover],
  ] as const;
  console.log('');
  for (const [what, s] of statusFigures) {
    console.log(`failover -> status.activeNode, after ${what}, every trial (ms): n ${s.n}, p50 ${s.p50}, p95 ${s.p95}, max ${s.max}`);
  }
  const targets = [
    { profile: 'default', target: '(b) host crash, default, DO latency 0: p95 <= 1000 ms', p95Ms: p95('default', 'host'), boundMs: 1000 },
    { profile: 'fast', target: '(b) host crash, fast profile, DO latency 0: p95 <= 500 ms', p95Ms: p95('fast', 'host'), boundMs: 500 },
    onDebian13
      ? {
        profile: 'default', target: '(a) HAProxy death, default, DO latency 0 (keepalived 2.3, 0.2 s checks): p95 <= 600 ms',
        p95Ms: p95('default', 'haproxy'), boundMs: 600,
      }
      : {
        profile: 'default', target: '(a) HAProxy death, default, DO latency 0 (keepalived 2.2.7, whole-second checks): p95 <= 1200 ms',
        p95Ms: p95('default', 'haproxy'), boundMs: 1200,
      },
  ].filter((t) => ran.has(t.profile)).map(({ profile: _, ...t }) => ({ ...t, met: t.p95Ms <= t.boundMs }));
  // Issue 18's target: status follows a failover at once (keepalived's state followed over SSH).
  const statusTarget = {
    target: 'failover -> status.activeNode after traffic returned and the IP moved: p95 <= 1500 ms',
    p95Ms: statusAfterFailover.p95, boundMs: 1500, met: statusAfterFailover.p95 <= 1500,
  };
  const reported = [...targets, statusTarget];
  console.log(`\nfailover outage seen by a client sending every ${PERIOD_MS} ms, ${trials} trial(s) each, in ms`);
  console.log(table(['profile', 'failure', 'n', 'p50', 'p95', 'max'], rows));
  if (results.length) {
    console.log(`\n${table(['target', 'p95 ms', 'met'], reported.map((t) => [t.target, String(t.p95Ms), t.met ? 'yes' : 'NO']))}`);
  }
  console.log(`\ndroplet image ${DROPLET_IMAGE}; not measured here: the 10-minute idle run under a CPU hog (false failovers, bench:idle).`);
  // A run of chosen profiles does not overwrite the full run's summary; each image has its own.
  const base = onDebian13 ? `failover-${DEBIAN_13.slug}` : 'failover';
  const file = writeResult(only ? `${base}-${only.join('-')}` : base, {
    image: DROPLET_IMAGE, trials, periodMs: PERIOD_MS, profiles: PROFILES, summary, statusAfterTraffic: statusSummary,
    statusAfterFailover,
    targets: reported, results, discarded,
  });
  if (discarded.length) {
    console.log(`${discarded.length} HAProxy trial(s) discarded and run again: the operator restarted HAProxy during them.`);
  }
  console.log(`wrote ${file}`);
  // CI runs few trials: fail only when a bound is broken by a wide margin (twice the target).
  if (reported.some((t) => t.p95Ms > failMargin() * t.boundMs)) process.exitCode = 1;
} finally {
  await bench?.close();
}

// The sandbox with a real Prometheus (Debian's) evaluating halb's alert rules: it finds every
// node from the operator's EndpointSlices and scrapes their HAProxy, sees each node's VRRP state
// through the operator, answers every query of the Grafana dashboard with data, and fires
// HalbSplitBrain within its `for` plus one evaluation interval of seeing two MASTERs. The requests
// made for the dashboard's traffic panels are in HAProxy's log, in the documented format.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SANDBOX_SCRAPE_INTERVAL_SECONDS } from '../../src/sandbox/prometheus.ts';
import { ROOT, startE2E, waitFor, type E2E } from './helpers.ts';

interface Sample { metric: Record<string, string>; value: [number, string] }
interface Alert { labels: Record<string, string>; state: string; activeAt: string }
interface Dashboard { panels: { title: string; targets: { expr: string }[] }[] }

let e2e: E2E;
let prometheus: string;
beforeAll(async () => {
  e2e = await startE2E({ prometheus: true });
  prometheus = e2e.sandbox.prometheus!.url;
}, 120_000);
afterEach((ctx) => e2e?.printLogIfFailed(ctx));
afterAll(async () => { await e2e?.close(); }, 120_000);

async function query(expr: string): Promise<Sample[]> {
  const res = await fetch(`${prometheus}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = await res.json() as { status: string; error?: string; data?: { result: Sample[] } };
  if (body.status !== 'success') throw new Error(`${expr}: ${body.error}`);
  return body.data!.result;
}

async function alerts(): Promise<Alert[]> {
  const body = await (await fetch(`${prometheus}/api/v1/alerts`)).json() as { data: { alerts: Alert[] } };
  return body.data.alerts;
}

/** The floating IP's holder and the other node, once status has both. */
async function nodes(): Promise<{ master: string; backup: string }> {
  return waitFor('a MASTER and a BACKUP in status', async () => {
    const r = await e2e.kubectl(['get', 'halb', 'basic', '-o', 'json']);
    const status = (JSON.parse(r.stdout) as { status?: { nodes?: { name: string; vrrpState?: string }[] } }).status;
    const master = status?.nodes?.find((n) => n.vrrpState === 'MASTER')?.name;
    const backup = status?.nodes?.find((n) => n.vrrpState === 'BACKUP')?.name;
    return master && backup ? { master, backup } : undefined;
  });
}

interface RuleFile { groups: { rules: { alert?: string; for?: string }[] }[] }
const ruleFor = (alert: string) => (parse(readFileSync(join(ROOT, 'deploy/prometheus/halb-rules.yaml'), 'utf8')) as RuleFile)
  .groups.flatMap((g) => g.rules).find((r) => r.alert === alert)!;
const seconds = (duration: string) => Number(/^(\d+)s$/.exec(duration)?.[1] ?? Number(/^(\d+)m$/.exec(duration)?.[1]) * 60);

describe('Prometheus in the sandbox', () => {
  it('finds both nodes from the EndpointSlices and sees their VRRP states through the operator', async () => {
    const applied = await e2e.kubectl(['apply', '-f', join(ROOT, 'examples/basic.yaml')]);
    expect(applied.stderr).toBe('');
    expect((await e2e.kubectl(['wait', '--for=condition=Ready', 'halb/basic', '--timeout=120s'])).code).toBe(0);
    const { master, backup } = await nodes();
    // The node ServiceMonitor's targets: each node's HAProxy exporter on its VPC address, up.
    const targets = await waitFor('both nodes scraped', async () => {
      const up = await query('up{job="haproxy", namespace="default", name="basic"} == 1');
      return up.length === 2 ? up : undefined;
    });
    expect(targets.map((t) => t.metric.node).sort()).toEqual([master, backup].sort());
    const states = await waitFor('Prometheus to see one MASTER and one BACKUP', async () => {
      const r = await query('max by (node, state) (halb_node_vrrp_state{namespace="default", name="basic"}) == 1');
      return r.length === 2 ? Object.fromEntries(r.map((s) => [s.metric.node, s.metric.state])) : undefined;
    });
    expect(states).toEqual({ [master]: 'MASTER', [backup]: 'BACKUP' });
    // Right after creation the IP may still be moving to the MASTER (see test/e2e/changes.test.ts).
    await waitFor('Prometheus to see the IP on the MASTER', async () =>
      (await query(`halb_node_holds_ip{name="basic", node="${master}"} == 1`)).length === 1 || undefined);
    expect(await query(`halb_node_holds_ip{name="basic", node="${backup}"} == 1`)).toEqual([]);
  }, 180_000);

  it('answers every query of the Grafana dashboard with data', async () => {
    // Requests through the floating IP, so the frontend's counters move too.
    const ip = JSON.parse((await e2e.kubectl(['get', 'halb', 'basic', '-o', 'json'])).stdout).status.floatingIP as string;
    for (let i = 0; i < 5; i++) expect(await e2e.curlFloatingIP(ip)).toMatch(/^web-\d$/);
    // Each went into HAProxy's log on the node holding the IP: the journal under systemd, else the file.
    const { master, backup } = await nodes();
    const log = await waitFor('the requests in HAProxy\'s log', async () => {
      const read = (node: string) => e2e.sandbox.fabric.execInDroplet(node, ['sh', '-c',
        '[ -d /run/systemd/system ] && journalctl -u haproxy -o cat --no-pager || cat /var/log/haproxy.log']);
      const lines = (await Promise.all([read(master), read(backup)]))
        .flatMap((r) => r.stdout.split('\n')).filter((l) => l.includes('frontend=www '));
      return lines.length >= 5 ? lines : undefined;
    });
    expect(log.at(-1)).toMatch(/client=203\.0\.113\.254:\d+ frontend=www backend=web server=web-[12] status=200 bytes=\d+ timers_ms=\d+\/\d+\/\d+\/\d+\/\d+ termination=---- request="GET \/ HTTP\/1\.1"/);
    const dashboard = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana/halb-dashboard.json'), 'utf8')) as Dashboard;
    // Grafana's variables as "All" and a rate window of four scrapes.
    const substitute = (expr: string) => expr.replaceAll('$namespace', '.*').replaceAll('$name', '.*')
      .replaceAll('$__rate_interval', `${4 * SANDBOX_SCRAPE_INTERVAL_SECONDS}s`);
    const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => ({ panel: p.title, expr: substitute(t.expr) })));
    expect(exprs.length).toBeGreaterThanOrEqual(9);
    // Rates need two samples of each series in their window.
    await new Promise((r) => setTimeout(r, 2 * SANDBOX_SCRAPE_INTERVAL_SECONDS * 1000));
    for (const { panel, expr } of exprs) {
      const result = await waitFor(`data for "${panel}": ${expr}`, async () => {
        const r = await query(expr);
        return r.length > 0 ? r : undefined;
      }, 30_000, 1000);
      expect(result.length, `${panel}: ${expr}`).toBeGreaterThan(0);
    }
  }, 180_000);

  it('fires HalbSplitBrain within its `for` plus one evaluation interval of two MASTERs', async () => {
    const { backup } = await nodes();
    const forSeconds = seconds(ruleFor('HalbSplitBrain').for!);
    expect(forSeconds).toBeGreaterThan(0);
    expect((await alerts()).filter((a) => a.labels.alertname === 'HalbSplitBrain')).toEqual([]);
    // The BACKUP stops hearing VRRP adverts: it becomes MASTER too, and both stay MASTER.
    const blocked = await e2e.sandbox.fabric.execInDroplet(backup, ['nft', '-f', '-'], {
      input: 'table inet halb_test_split {\n  chain input {\n    type filter hook input priority -10;\n    ip protocol 112 drop\n  }\n}\n',
    });
    expect(blocked.stderr).toBe('');
    const forced = Date.now();
    const twoMasters = 'count(max by (node) (halb_node_vrrp_state{namespace="default", name="basic", state="MASTER"}) == 1)';
    await waitFor('Prometheus to see two MASTERs', async () => (await query(twoMasters))[0]?.value[1] === '2' || undefined, 60_000, 250);
    const seen = Date.now();
    const firing = await waitFor('HalbSplitBrain to fire', async () =>
      (await alerts()).find((a) => a.labels.alertname === 'HalbSplitBrain' && a.state === 'firing'), 120_000, 250);
    const fired = Date.now();
    expect(firing.labels).toMatchObject({ namespace: 'default', name: 'basic', severity: 'critical' });
    const figure = (fired - seen) / 1000;
    console.log(`split brain: two MASTERs in Prometheus ${((seen - forced) / 1000).toFixed(1)} s after VRRP was cut; `
      + `HalbSplitBrain fired ${figure.toFixed(1)} s after that (for ${forSeconds} s, `
      + `evaluation every ${SANDBOX_SCRAPE_INTERVAL_SECONDS} s)`);
    // One more second for this test's own polling of the two queries.
    expect(figure).toBeLessThanOrEqual(forSeconds + SANDBOX_SCRAPE_INTERVAL_SECONDS + 1);
    await e2e.sandbox.fabric.execInDroplet(backup, ['nft', 'delete', 'table', 'inet', 'halb_test_split']);
  }, 240_000);
});

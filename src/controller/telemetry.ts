// The operator's own endpoints: /healthz (the process runs), /readyz (it leads, or stands by
// ready to), /metrics (Prometheus, through prom-client).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CertificateExpiry } from './certificates.ts';
import { FAILOVER_REASONS, VRRP_STATES, type NodeSeries } from './node-metrics.ts';

export class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconciles = new Counter({
    name: 'halb_reconcile_total',
    help: 'Reconciles by result (success, error, invalid, conflict: a write found the cache stale and the pass ran again).',
    labelNames: ['result'], registers: [this.registry],
  });
  readonly reconcileSeconds = new Histogram({
    name: 'halb_reconcile_duration_seconds', help: 'Reconcile duration.', buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly resyncSeconds = new Histogram({
    name: 'halb_resync_duration_seconds', help: 'From a periodic resync until every object it enqueued was reconciled once.',
    buckets: [1, 5, 10, 30, 60, 120, 300], registers: [this.registry],
  });
  readonly reconcileErrors = new Counter({
    name: 'halb_reconcile_errors_total', help: 'Reconcile errors by kind (transient, terminal).', labelNames: ['kind'],
    registers: [this.registry],
  });
  readonly doRequests = new Counter({
    name: 'halb_digitalocean_requests_total', help: 'DigitalOcean API requests by method and status.', labelNames: ['method', 'status'],
    registers: [this.registry],
  });
  readonly doRateLimitRemaining = new Gauge({
    name: 'halb_digitalocean_ratelimit_remaining', help: 'ratelimit-remaining from the last DigitalOcean response.',
    registers: [this.registry],
  });
  readonly failovers = new Counter({
    name: 'halb_failovers_observed_total', help: 'Changes of the reserved IP holder observed, by what the old holder is now.',
    labelNames: ['namespace', 'name', 'reason'], registers: [this.registry],
  });
  readonly nodesByState = new Gauge({
    name: 'halb_nodes', help: 'Load-balancer nodes by VRRP state.', labelNames: ['namespace', 'name', 'state'], registers: [this.registry],
  });
  readonly certificateExpiry = new Gauge({
    name: 'halb_certificate_expiry_timestamp_seconds', help: 'notAfter of each TLS frontend\'s certificate, as a Unix time.',
    labelNames: ['namespace', 'name', 'frontend', 'secret'], registers: [this.registry],
  });
  /** Set by the operator to read its session pool at each scrape. */
  sessionsKept: () => number = () => 0;
  readonly sshSessions: Gauge = new Gauge({
    name: 'halb_ssh_sessions', help: 'SSH sessions kept open to nodes (at most --max-ssh-sessions).', registers: [this.registry],
    collect: (): void => this.sshSessions.set(this.sessionsKept()),
  });
  readonly leader = new Gauge({ name: 'halb_leader', help: '1 when this replica holds the leader lease.', registers: [this.registry] });
  // Per node of each HALoadBalancer, from the leader only (node-metrics.ts; README, "Metrics and alerts").
  readonly nodeVRRPState = new Gauge({
    name: 'halb_node_vrrp_state', help: '1 for the node\'s VRRP state as read from the host (UNKNOWN: not read), 0 for the others.',
    labelNames: ['namespace', 'name', 'node', 'state'], registers: [this.registry],
  });
  readonly nodeHoldsIP = new Gauge({
    name: 'halb_node_holds_ip', help: '1 where DigitalOcean routes the reserved IP.', labelNames: ['namespace', 'name', 'node'],
    registers: [this.registry],
  });
  readonly nodeReachable = new Gauge({
    name: 'halb_node_reachable', help: '1 when the node was read over SSH at the last look.', labelNames: ['namespace', 'name', 'node'],
    registers: [this.registry],
  });
  readonly nodeServersUp = new Gauge({
    name: 'halb_node_backend_servers_up', help: 'Servers of the backend HAProxy on the node sees up.',
    labelNames: ['namespace', 'name', 'node', 'backend'], registers: [this.registry],
  });
  readonly nodeConfigApplied = new Gauge({
    name: 'halb_node_config_applied_timestamp_seconds', help: 'When the node\'s files were last swapped in, as a Unix time.',
    labelNames: ['namespace', 'name', 'node'], registers: [this.registry],
  });

  /** The certificate series each object has, so those of removed frontends can go. */
  private readonly certificateSeries = new Map<string, CertificateExpiry[]>();
  /** The node series each object has, so those of nodes that left (or of the object) can go. */
  private readonly nodeSeriesOf = new Map<string, { namespace: string; name: string; series: NodeSeries[] }>();

  constructor(options: { processMetrics?: boolean } = {}) {
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'halb_process_' });
    // Every kind from the start, so rates and alerts see a 0 rather than no series.
    for (const kind of ['transient', 'terminal']) this.reconcileErrors.inc({ kind }, 0);
  }

  /** The object's per-node series, replacing the previous set; failover counters start at 0. */
  setNodeSeries(namespace: string, name: string, series: readonly NodeSeries[]): void {
    this.removeNodeSeries(namespace, name);
    for (const s of series) {
      const labels = { namespace, name, node: s.node };
      for (const state of VRRP_STATES) this.nodeVRRPState.set({ ...labels, state }, s.vrrpState === state ? 1 : 0);
      this.nodeHoldsIP.set(labels, s.holdsIP ? 1 : 0);
      this.nodeReachable.set(labels, s.reachable ? 1 : 0);
      for (const [backend, up] of Object.entries(s.serversUp ?? {})) this.nodeServersUp.set({ ...labels, backend }, up);
      if (s.configAppliedSeconds !== undefined) this.nodeConfigApplied.set(labels, s.configAppliedSeconds);
    }
    for (const reason of FAILOVER_REASONS) this.failovers.inc({ namespace, name, reason }, 0);
    this.nodeSeriesOf.set(`${namespace}/${name}`, { namespace, name, series: [...series] });
  }

  /** Everything this replica exports about one object: it was deleted, or another replica leads. */
  forgetObject(namespace: string, name: string): void {
    this.setCertificates(namespace, name, []);
    this.removeNodeSeries(namespace, name);
    this.nodeSeriesOf.delete(`${namespace}/${name}`);
    for (const reason of FAILOVER_REASONS) this.failovers.remove({ namespace, name, reason });
    for (const state of VRRP_STATES) this.nodesByState.remove({ namespace, name, state });
  }

  /** On losing the Lease: the new leader exports the objects, this replica nothing about them. */
  forgetAllObjects(): void {
    for (const { namespace, name } of [...this.nodeSeriesOf.values()]) this.forgetObject(namespace, name);
    for (const key of [...this.certificateSeries.keys()]) {
      const slash = key.indexOf('/');
      this.setCertificates(key.slice(0, slash), key.slice(slash + 1), []);
    }
  }

  private removeNodeSeries(namespace: string, name: string): void {
    for (const s of this.nodeSeriesOf.get(`${namespace}/${name}`)?.series ?? []) {
      const labels = { namespace, name, node: s.node };
      for (const state of VRRP_STATES) this.nodeVRRPState.remove({ ...labels, state });
      this.nodeHoldsIP.remove(labels);
      this.nodeReachable.remove(labels);
      for (const backend of Object.keys(s.serversUp ?? {})) this.nodeServersUp.remove({ ...labels, backend });
      this.nodeConfigApplied.remove(labels);
    }
  }

  /** One expiry series per TLS frontend of the object; series of removed frontends (or of a
   *  deleted object: an empty list) go. */
  setCertificates(namespace: string, name: string, certificates: readonly CertificateExpiry[]): void {
    const key = `${namespace}/${name}`;
    for (const c of this.certificateSeries.get(key) ?? []) {
      this.certificateExpiry.remove({ namespace, name, frontend: c.frontend, secret: c.secret });
    }
    for (const c of certificates) {
      this.certificateExpiry.set({ namespace, name, frontend: c.frontend, secret: c.secret }, Date.parse(c.notAfter) / 1000);
    }
    if (certificates.length) this.certificateSeries.set(key, [...certificates]);
    else this.certificateSeries.delete(key);
  }
}

export interface HealthChecks {
  /** The process can serve: false ends in a 500 from /healthz. */
  live: () => boolean;
  /** Ready for work: informers synced (leader) or standing by. */
  ready: () => boolean;
}

export async function startTelemetryServer(
  metrics: OperatorMetrics, checks: HealthChecks, port: number, host = '0.0.0.0',
): Promise<{ server: Server; url: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const answer = (ok: boolean) => {
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(ok ? 'ok\n' : 'not ready\n');
    };
    if (req.method !== 'GET') { res.writeHead(405).end(); return; }
    if (path === '/healthz') return answer(checks.live());
    if (path === '/readyz') return answer(checks.ready());
    if (path === '/metrics') {
      metrics.registry.metrics().then((text) => {
        res.writeHead(200, { 'content-type': metrics.registry.contentType });
        res.end(text);
      }, (err: Error) => { res.writeHead(500).end(err.message); });
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(port, host, resolve); });
  const address = server.address() as AddressInfo;
  return {
    server,
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${address.port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

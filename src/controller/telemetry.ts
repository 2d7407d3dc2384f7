// The operator's own endpoints: /healthz (the process runs), /readyz (it leads, or stands by
// ready to), /metrics (Prometheus, through prom-client).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CertificateExpiry } from './certificates.ts';

export class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconciles = new Counter({ name: 'halb_reconcile_total', help: 'Reconciles by result (success, error, invalid, conflict: a write found the cache stale and the pass ran again).', labelNames: ['result'], registers: [this.registry] });
  readonly reconcileSeconds = new Histogram({ name: 'halb_reconcile_duration_seconds', help: 'Reconcile duration.', buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers: [this.registry] });
  readonly resyncSeconds = new Histogram({ name: 'halb_resync_duration_seconds', help: 'From a periodic resync until every object it enqueued was reconciled once.', buckets: [1, 5, 10, 30, 60, 120, 300], registers: [this.registry] });
  readonly reconcileErrors = new Counter({ name: 'halb_reconcile_errors_total', help: 'Reconcile errors by kind (transient, terminal).', labelNames: ['kind'], registers: [this.registry] });
  readonly doRequests = new Counter({ name: 'halb_digitalocean_requests_total', help: 'DigitalOcean API requests by method and status.', labelNames: ['method', 'status'], registers: [this.registry] });
  readonly doRateLimitRemaining = new Gauge({ name: 'halb_digitalocean_ratelimit_remaining', help: 'ratelimit-remaining from the last DigitalOcean response.', registers: [this.registry] });
  readonly failovers = new Counter({ name: 'halb_failovers_observed_total', help: 'Changes of the reserved IP holder observed.', labelNames: ['namespace', 'name'], registers: [this.registry] });
  readonly nodesByState = new Gauge({ name: 'halb_nodes', help: 'Load-balancer nodes by VRRP state.', labelNames: ['namespace', 'name', 'state'], registers: [this.registry] });
  readonly certificateExpiry = new Gauge({ name: 'halb_certificate_expiry_timestamp_seconds', help: 'notAfter of each TLS frontend\'s certificate, as a Unix time.', labelNames: ['namespace', 'name', 'frontend', 'secret'], registers: [this.registry] });
  readonly leader = new Gauge({ name: 'halb_leader', help: '1 when this replica holds the leader lease.', registers: [this.registry] });

  /** The certificate series each object has, so those of removed frontends can go. */
  private readonly certificateSeries = new Map<string, CertificateExpiry[]>();

  constructor(options: { processMetrics?: boolean } = {}) {
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'halb_process_' });
  }

  /** One expiry series per TLS frontend of the object; series of removed frontends (or of a
   *  deleted object: an empty list) go. */
  setCertificates(namespace: string, name: string, certificates: readonly CertificateExpiry[]): void {
    const key = `${namespace}/${name}`;
    for (const c of this.certificateSeries.get(key) ?? []) this.certificateExpiry.remove({ namespace, name, frontend: c.frontend, secret: c.secret });
    for (const c of certificates) this.certificateExpiry.set({ namespace, name, frontend: c.frontend, secret: c.secret }, Date.parse(c.notAfter) / 1000);
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

export async function startTelemetryServer(metrics: OperatorMetrics, checks: HealthChecks, port: number, host = '0.0.0.0'): Promise<{ server: Server; url: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const answer = (ok: boolean) => { res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }); res.end(ok ? 'ok\n' : 'not ready\n'); };
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

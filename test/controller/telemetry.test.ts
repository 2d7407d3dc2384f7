import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OperatorMetrics, startTelemetryServer } from '../../src/controller/telemetry.ts';

describe('telemetry endpoints over HTTP', () => {
  const metrics = new OperatorMetrics({ processMetrics: false });
  let ready = false;
  let server: Awaited<ReturnType<typeof startTelemetryServer>>;
  beforeAll(async () => { server = await startTelemetryServer(metrics, { live: () => true, ready: () => ready }, 0, '127.0.0.1'); });
  afterAll(() => server.close());

  it('/healthz answers 200 while the process lives', async () => {
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });

  it('/readyz follows readiness', async () => {
    expect((await fetch(`${server.url}/readyz`)).status).toBe(503);
    ready = true;
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
  });

  it('/metrics exposes what the operator counted', async () => {
    metrics.reconciles.inc({ result: 'success' }, 3);
    metrics.failovers.inc({ namespace: 'default', name: 'web' });
    metrics.nodesByState.set({ namespace: 'default', name: 'web', state: 'MASTER' }, 1);
    metrics.doRateLimitRemaining.set(4321);
    const body = await (await fetch(`${server.url}/metrics`)).text();
    expect(body).toContain('halb_reconcile_total{result="success"} 3');
    expect(body).toContain('halb_failovers_observed_total{namespace="default",name="web"} 1');
    expect(body).toContain('halb_nodes{namespace="default",name="web",state="MASTER"} 1');
    expect(body).toContain('halb_digitalocean_ratelimit_remaining 4321');
  });

  it('unknown paths are 404', async () => {
    expect((await fetch(`${server.url}/nope`)).status).toBe(404);
  });
});

// Issue 13's inputs on the operator's path: through the Kubernetes emulator, the reconciler
// stops each with a condition naming the field, sends nothing to DigitalOcean, and does not
// retry (no requeue, no error for the queue's backoff). The same validation as `halb validate`.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HALoadBalancer } from '../../src/api/types.ts';
import { waitFor } from '../wait.ts';
import { basicObject, startHarness, type Harness } from './harness.ts';

let h: Harness;
const fixture = (name: string) => readFileSync(new URL(`../fixtures/tls/${name}`, import.meta.url), 'utf8');

const secrets: Record<string, Record<string, string>> = {
  'vrrp-dollar': { password: '$_RANDOM' },
  'vrrp-newline': { password: 'abcdefgh\n' },
  'weak-tls': { 'tls.crt': fixture('rsa1024.crt'), 'tls.key': fixture('rsa1024.key') },
  'appended-tls': { 'tls.crt': fixture('rsa2048.crt') + fixture('rsa1024.key'), 'tls.key': fixture('rsa2048.key') },
  'shell-token': { token: 'dop_v1_x"; url = "http://elsewhere' },
  'vrrp-proto': { password: 'abc' },
};

beforeAll(async () => {
  h = await startHarness();
  h.kube.seed(Object.entries(secrets).map(([name, stringData]) =>
    ({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: 'default' }, stringData })));
  await waitFor('the Secrets in the cache', () =>
    Object.keys(secrets).every((name) => h.ctx.secrets.get('default', name) !== undefined), 10_000, 20);
}, 60_000);
afterAll(async () => { await h?.close(); });

const condition = (object: HALoadBalancer | undefined, type: string) => object?.status?.conditions?.find((c) => c.type === type);
const tls = (secret: string) => ({ frontends: [{ name: 'www', port: 80, defaultBackend: 'web', tls: { secretRef: { name: secret } } }] });

const rows: [string, string, Record<string, unknown>, string][] = [
  ['a frontend on the SSH port', 'p22', { frontends: [{ name: 'ssh', port: 22, protocol: 'tcp', defaultBackend: 'web' }] },
    'spec.frontends[0].port'],
  ['a frontend on the metrics port', 'p8404', { frontends: [{ name: 'www', port: 8404, defaultBackend: 'web' }] },
    'spec.frontends[0].port'],
  ['a VRRP password keepalived expands', 'vrrp', { failover: { authSecretRef: { name: 'vrrp-dollar', key: 'password' } } },
    'spec.failover.authSecretRef'],
  ['an inherited name as a Secret key', 'proto', { failover: { authSecretRef: { name: 'vrrp-proto', key: 'constructor' } } },
    'spec.failover.authSecretRef.key'],
  ['a 1024-bit RSA certificate', 'weak', tls('weak-tls'), 'spec.frontends[0].tls.secretRef'],
  ['a private key appended to tls.crt', 'appended', tls('appended-tls'), 'spec.frontends[0].tls.secretRef'],
  ['a failover token with curl-config characters', 'token', {
    credentials: {
      tokenSecretRef: { name: 'do-api', key: 'token' }, sshKeySecretRef: { name: 'halb-ssh', key: 'ssh-privatekey' },
      failoverTokenSecretRef: { name: 'shell-token', key: 'token' },
    },
  }, 'spec.credentials.failoverTokenSecretRef'],
  ['load balancers carrying their backend\'s tag', 'tags', {
    droplets: { tags: ['web'] }, backends: [{ name: 'web', dropletTag: 'web', restrictToLoadBalancers: true }],
  }, 'spec.droplets.tags[0]'],
];

describe('the operator refuses issue 13\'s inputs before anything is made', () => {
  it.each(rows)('%s: InvalidSpec naming the field, nothing sent to DigitalOcean, no retry', async (_name, name, spec, field) => {
    await h.create(basicObject(name, spec));
    const passes = [await h.pass(name), await h.pass(name), await h.pass(name)]; // finalizer, then the refusal, then again
    for (const pass of passes) {
      expect(pass.error).toBeUndefined();
      expect(pass.requests).toEqual([]);
      expect(pass.events.filter((e) => /Created|Assigned/.test(e))).toEqual([]);
    }
    expect(passes[1]!.result).toEqual({ stalled: true });
    expect(passes[2]!.result).toEqual({ stalled: true });
    const object = await h.get(name);
    expect(condition(object, 'Ready')).toMatchObject({ status: 'False', reason: 'InvalidSpec' });
    expect(condition(object, 'Ready')!.message).toContain(`${field}: `);
    expect(h.sim.state.dropletViews().filter((d) => d.name.startsWith(`${name}-`))).toEqual([]);
  });

  it('a VRRP password with the trailing newline of --from-file is taken as its 8 characters', async () => {
    await h.create(basicObject('newline', { failover: { authSecretRef: { name: 'vrrp-newline', key: 'password' } } }));
    await h.pass('newline');
    const pass = await h.pass('newline');
    expect(pass.result.stalled).toBeUndefined();
    expect(condition(await h.get('newline'), 'Ready')?.reason).not.toBe('InvalidSpec');
  });
});

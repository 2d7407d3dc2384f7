// SSHExposed names a /0 in spec.access.sshSourceCIDRs for what it is: open to every address.
import { describe, expect, it } from 'vitest';
import { validateHALoadBalancer } from '../../src/api/validate.ts';
import { sshExposedCondition } from '../../src/controller/access.ts';

function spec(sshSourceCIDRs: string[]) {
  const { object, problems } = validateHALoadBalancer({
    apiVersion: 'halb.dev/v1alpha1', kind: 'HALoadBalancer', metadata: { name: 'web' },
    spec: {
      region: 'nyc3',
      credentials: { tokenSecretRef: { name: 'do-api', key: 'token' }, sshKeySecretRef: { name: 'halb-ssh', key: 'k' } },
      frontends: [{ name: 'www', port: 80, defaultBackend: 'web' }],
      backends: [{ name: 'web', servers: [{ name: 's1', address: '10.0.0.1' }] }],
      access: { sshSourceCIDRs },
    },
  });
  expect(problems).toEqual([]);
  return object!.spec;
}

const loaded = [0, 1].map((i) => ({ name: `web-${i}`, current: true, host: { reachable: true, firewallLoaded: true } as never }));

describe('SSHExposed', () => {
  it.each([[['0.0.0.0/0']], [['203.0.113.0/24', '0.0.0.0/0']]])('is OpenToAll for %j, firewall loaded or not', (cidrs) => {
    expect(sshExposedCondition(spec(cidrs), loaded)).toMatchObject({ status: 'True', reason: 'OpenToAll' });
    expect(sshExposedCondition(spec(cidrs), loaded).message).toContain('0.0.0.0/0');
  });

  it('is Restricted for a narrower list once every node loaded it', () => {
    expect(sshExposedCondition(spec(['203.0.113.0/24', '10.0.0.0/8']), loaded)).toMatchObject({ status: 'False', reason: 'Restricted' });
  });
});

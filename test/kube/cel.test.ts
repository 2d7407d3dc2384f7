// The CRD's CEL rules at admission, with the real kubectl against the emulator: a manifest or a
// patch that breaks a rule, or changes an immutable field, is refused with the API server's 422
// naming the field, and the stored object is left as it was (same resourceVersion and
// generation, so an operator watching it sees nothing new).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import type { HALoadBalancerInput } from '../../src/api/types.ts';
import type { Harness } from './helpers.ts';
import { CRD_FILE, installCRD, kubectlOK, startHarness, waitFor } from './helpers.ts';
import type { Schema } from '../../src/sandbox/kube/structural.ts';

const basic = parse(readFileSync(join(import.meta.dirname, '../../examples/basic.yaml'), 'utf8')) as HALoadBalancerInput;

function variant(name: string, edit: (spec: HALoadBalancerInput['spec']) => void): string {
  const obj = structuredClone(basic);
  obj.metadata.name = name;
  edit(obj.spec);
  return stringify(obj);
}

describe('CEL rules at admission (kubectl against the emulator)', () => {
  let h: Harness;
  const kubectl = (args: string[], stdin?: string) => kubectlOK(h)(args, stdin);
  const refused = async (args: string[], stdin?: string) => {
    const r = await h.kubectl(args, stdin);
    expect(r.code, r.stdout).toBe(1);
    return r.stderr;
  };
  const version = async (name: string) =>
    kubectl(['get', 'halb', name, '-o', 'jsonpath={.metadata.resourceVersion} {.metadata.generation}']);

  beforeAll(async () => {
    h = await startHarness();
    await installCRD(h);
  });
  afterAll(async () => {
    await h?.close();
  });

  it.each([
    ['a defaultBackend that names no backend', (s: HALoadBalancerInput['spec']) => { s.frontends[0]!.defaultBackend = 'nowhere'; },
      'spec.frontends: Invalid value: "object": frontend www: defaultBackend nowhere is not a backend in spec.backends'],
    ['a route to a missing backend',
      (s: HALoadBalancerInput['spec']) => { s.frontends[0]!.routes = [{ pathPrefix: '/api/', backend: 'api' }]; },
      'spec.frontends: Invalid value: "object": frontend www: a route names a backend that is not in spec.backends'],
    ['two frontends on one port',
      (s: HALoadBalancerInput['spec']) => { s.frontends.push({ name: 'again', port: 80, defaultBackend: 'web' }); },
      'spec.frontends: Invalid value: "array": port 80 is used more than once: every frontend port and TLS port must differ'],
    ['a TLS port (unset: 443) equal to another frontend\'s port', (s: HALoadBalancerInput['spec']) => {
      s.frontends[0]!.tls = { secretRef: { name: 'www-tls' } };
      s.frontends.push({ name: 'alt', port: 443, protocol: 'tcp', defaultBackend: 'web' });
    }, 'spec.frontends: Invalid value: "array": port 443 is used more than once'],
    ['tls on a tcp frontend', (s: HALoadBalancerInput['spec']) => {
      Object.assign(s.frontends[0]!, { protocol: 'tcp', tls: { secretRef: { name: 'x' } } });
    },
      'spec.frontends[0].tls: Forbidden: TLS termination needs protocol http'],
    ['routes on a tcp frontend', (s: HALoadBalancerInput['spec']) => {
      Object.assign(s.frontends[0]!, { protocol: 'tcp', routes: [{ pathPrefix: '/', backend: 'web' }] });
    },
      'spec.frontends[0].routes: Forbidden: routes need protocol http'],
    ['hdr without balanceParam', (s: HALoadBalancerInput['spec']) => { s.backends[0]!.balance = 'hdr'; },
      'spec.backends[0].balanceParam: Required value: balance hdr needs balanceParam'],
    ['balanceParam with the default balance', (s: HALoadBalancerInput['spec']) => {
      delete s.backends[0]!.balance;
      s.backends[0]!.balanceParam = 'user';
    },
      'spec.backends[0].balanceParam: Forbidden: balance roundrobin takes no balanceParam; only url_param, hdr, rdp-cookie do'],
    ['a sub-second advert with PASS authentication', (s: HALoadBalancerInput['spec']) => {
      s.failover = { advertIntervalSeconds: 0.5, authSecretRef: { name: 'vrrp', key: 'password' } };
    }, 'spec.failover.advertIntervalSeconds: Invalid value: "object": '
      + 'PASS authentication (authSecretRef) needs VRRPv2, which advertises in whole seconds; got 0.5'],
  ])('refuses %s on create, naming the field', async (_what, edit, message) => {
    const stderr = await refused(['apply', '-f', '-'], variant('bad', edit));
    expect(stderr).toContain('The HALoadBalancer "bad" is invalid: ');
    expect(stderr).toContain(message);
    expect((await h.kubectl(['get', 'halb', 'bad'])).stderr).toContain('not found');
  });

  it('admits every rule\'s valid counterpart', async () => {
    const good = variant('good', (s) => {
      s.frontends[0]!.routes = [{ pathPrefix: '/api/', backend: 'web' }];
      s.frontends[0]!.tls = { secretRef: { name: 'www-tls' }, port: 8443 };
      s.frontends.push({ name: 'db', port: 443, protocol: 'tcp', defaultBackend: 'web' });
      s.backends.push({ name: 'sticky', balance: 'url_param', balanceParam: 'user', servers: [{ name: 's', address: '10.0.0.9' }] });
      s.failover = { advertIntervalSeconds: 2, authSecretRef: { name: 'vrrp', key: 'password' } };
    });
    expect(await kubectl(['apply', '-f', '-'], good)).toBe('haloadbalancer.halb.dev/good created\n');
  });

  it('refuses a patch that breaks a rule, and leaves the object as it was', async () => {
    await kubectl(['apply', '-f', '-'], variant('web', () => {}));
    const before = await version('web');
    // A watch, as the operator's informer holds one: it must see no event for a refused write.
    const watch = h.spawnKubectl(['get', 'halb', 'web', '--watch', '-o', 'jsonpath={.metadata.generation}{"\\n"}']);
    await waitFor('the watch to list the object', () => watch.output() === '1\n');
    const merge = await refused(['patch', 'halb', 'web', '--type=merge', '-p',
      '{"spec":{"backends":[{"name":"web","balance":"url_param","servers":[{"name":"a","address":"10.0.0.1"}]}]}}']);
    expect(merge).toContain('spec.backends[0].balanceParam: Required value: balance url_param needs balanceParam');
    const json = await refused(['patch', 'halb', 'web', '--type=json', '-p',
      '[{"op":"replace","path":"/spec/frontends/0/defaultBackend","value":"gone"}]']);
    expect(json).toContain('spec.frontends: Invalid value: "object": frontend www: defaultBackend gone is not a backend in spec.backends');
    const tcpRoutes = variant('web', (s) =>
      Object.assign(s.frontends[0]!, { protocol: 'tcp', routes: [{ pathPrefix: '/', backend: 'web' }] }));
    const serverSide = await refused(['apply', '--server-side', '--force-conflicts', '-f', '-'], tcpRoutes);
    expect(serverSide).toContain('spec.frontends[0].routes: Forbidden: routes need protocol http');
    expect(await version('web')).toBe(before);
    // The next accepted change is the first thing the watch sees.
    await kubectl(['patch', 'halb', 'web', '--type=merge', '-p', '{"spec":{"droplets":{"count":3}}}']);
    await waitFor('the accepted change on the watch', () => watch.output() === '1\n2\n');
    watch.child.kill('SIGTERM');
  });

  it('keeps region and vpcUUID immutable, setting an unset vpcUUID included', async () => {
    const before = await version('web');
    const region = await refused(['patch', 'halb', 'web', '--type=merge', '-p', '{"spec":{"region":"ams3"}}']);
    expect(region).toContain('The HALoadBalancer "web" is invalid: spec.region: Invalid value: "string": region is immutable');
    const vpc = await refused(['patch', 'halb', 'web', '--type=merge', '-p',
      '{"spec":{"vpcUUID":"0f3c4c1e-9d6a-4a8b-8c1d-2b7e5f9a0c11"}}']);
    expect(vpc).toContain('spec.vpcUUID: Invalid value: "object": vpcUUID is immutable');
    const applied = await refused(['apply', '-f', '-'], variant('web', (s) => { s.region = 'fra1'; }));
    expect(applied).toContain('spec.region: Invalid value: "string": region is immutable');
    expect(await version('web')).toBe(before);
    // An explicit empty vpcUUID means the default VPC, as unset does: not a change.
    expect(await kubectl(['patch', 'halb', 'web', '--type=merge', '-p', '{"spec":{"vpcUUID":""}}'])).toContain('patched');
    // The same region again is fine, and a new object may pick any region.
    expect(await kubectl(['apply', '-f', '-'], variant('web', () => {}))).toMatch(/web (unchanged|configured)/);
    expect(await kubectl(['apply', '-f', '-'], variant('elsewhere', (s) => {
      s.region = 'sfo3';
      s.vpcUUID = '0f3c4c1e-9d6a-4a8b-8c1d-2b7e5f9a0c11';
    })))
      .toBe('haloadbalancer.halb.dev/elsewhere created\n');
  });

  it('refuses a CRD whose rule does not compile, or whose metadata schema says more than name, as kube-apiserver does', async () => {
    const crd = parse(readFileSync(CRD_FILE, 'utf8')) as {
      metadata: { name: string };
      spec: { group: string; names: Record<string, unknown>; versions: { schema: { openAPIV3Schema: Schema } }[] };
    };
    crd.metadata.name = 'brokens.halb.dev';
    crd.spec.names = { kind: 'Broken', plural: 'brokens' };
    const schema = crd.spec.versions[0]!.schema.openAPIV3Schema;
    schema.properties!.spec!['x-kubernetes-validations'] = [{ rule: 'self.frontends.all(f,' }];
    const rule = await refused(['apply', '-f', '-'], stringify(crd));
    expect(rule).toContain('The CustomResourceDefinition "brokens.halb.dev" is invalid: spec.validation.openAPIV3Schema.properties[spec]'
      + '.x-kubernetes-validations[0].rule: Invalid value: apiextensions.ValidationRule{Rule:"self.frontends.all(f,", Message:"", '
      + 'MessageExpression:"", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:"", OptionalOldSelf:(*bool)(nil)}: '
      + 'compilation failed: ');
    // A structural error comes alone: the API server compiles no rule in a schema that is not structural.
    schema.properties!.metadata!.description = 'Standard object metadata.';
    expect(await refused(['apply', '-f', '-'], stringify(crd))).toBe('The CustomResourceDefinition "brokens.halb.dev" is invalid: '
      + 'spec.validation.openAPIV3Schema.properties[metadata]: Forbidden: must not specify anything other than name and generateName, '
      + 'but metadata is implicitly specified\n');
  });

  it('ratchets: an object stored before a rule existed can still be updated where it did not change', async () => {
    // The CRD without its rules, an object that breaks one (two frontends on port 80), then the rules.
    const withoutRules = JSON.parse(JSON.stringify(parse(readFileSync(CRD_FILE, 'utf8')),
      (k, v: unknown) => (k === 'x-kubernetes-validations' ? undefined : v)));
    await kubectl(['apply', '-f', '-'], stringify(withoutRules));
    await kubectl(['apply', '-f', '-'], variant('legacy', (s) => {
      s.frontends.push({ name: 'again', port: 80, defaultBackend: 'web' });
    }));
    await installCRD(h);
    // Status (the operator's write) and a change elsewhere in the spec pass, with a warning.
    const status = await h.kubectl(['patch', 'halb', 'legacy', '--subresource=status', '--type=merge', '-p',
      '{"status":{"floatingIP":"198.51.100.7"}}']);
    expect(status.code).toBe(0);
    expect(status.stderr).toContain('Warning: spec.frontends: Invalid value: "array": port 80 is used more than once');
    expect((await h.kubectl(['patch', 'halb', 'legacy', '--type=merge', '-p', '{"spec":{"droplets":{"count":3}}}'])).code).toBe(0);
    // Touching the list that breaks the rule is refused.
    const touched = await refused(['patch', 'halb', 'legacy', '--type=json', '-p',
      '[{"op":"replace","path":"/spec/frontends/1/name","value":"again2"}]']);
    expect(touched).toContain('spec.frontends: Invalid value: "array": port 80 is used more than once');
  });

  it('runs no rule when the schema already refused the object, as the API server does', async () => {
    const stderr = await refused(['apply', '-f', '-'], variant('typed', (s) => {
      (s.frontends[0] as unknown as Record<string, unknown>).port = 'eighty';
      s.frontends[0]!.defaultBackend = 'nowhere';
    }));
    expect(stderr).toContain('spec.frontends[0].port: Invalid value: "string": '
      + 'spec.frontends[0].port in body must be of type integer: "string"');
    expect(stderr).toContain('<nil>: Invalid value: "null": some validation rules were not checked because the object was invalid');
    expect(stderr).not.toContain('defaultBackend nowhere');
  });
});

// The real kubectl (v1.32) against the emulator: every command the README and the operator's
// users rely on, checked on kubectl's own output.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Harness } from './helpers.ts';
import { CRD_FILE, FIXTURES, startHarness, waitFor } from './helpers.ts';

const WEB = join(FIXTURES, 'web.yaml');
const webYaml = readFileSync(WEB, 'utf8');

describe('kubectl against the emulator', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  const ok = async (args: string[], stdin?: string): Promise<string> => {
    const r = await h.kubectl(args, stdin);
    expect(r.stderr, `kubectl ${args.join(' ')}`).toBe('');
    expect(r.code).toBe(0);
    return r.stdout;
  };

  it('applies the CRD and reports it Established', async () => {
    expect(await ok(['apply', '-f', CRD_FILE])).toBe('customresourcedefinition.apiextensions.k8s.io/haloadbalancers.halb.dev created\n');
    expect(await ok(['wait', '--for=condition=Established', 'crd/haloadbalancers.halb.dev', '--timeout=5s']))
      .toContain('condition met');
    expect(await ok(['api-resources', '--api-group=halb.dev']))
      .toMatch(/haloadbalancers\s+halb\s+halb.dev\/v1alpha1\s+true\s+HALoadBalancer/);
    const explained = await ok(['explain', 'halb.spec.floatingIP.reclaimPolicy']);
    expect(explained).toContain('KIND:       HALoadBalancer');
    expect(explained).toMatch(/FIELD: reclaimPolicy <string>\nENUM:\n    Retain\n    Delete/);
  });

  it('applies a custom resource: created, unchanged, configured, server-side', async () => {
    expect(await ok(['apply', '-f', WEB])).toBe('haloadbalancer.halb.dev/web created\n');
    expect(await ok(['apply', '-f', WEB])).toBe('haloadbalancer.halb.dev/web unchanged\n');
    const changed = webYaml.replace('port: 80', 'port: 8080');
    expect(await ok(['apply', '-f', '-'], changed)).toBe('haloadbalancer.halb.dev/web configured\n');
    expect(await ok(['get', 'halb', 'web', '-o', 'jsonpath={.spec.frontends[0].port} {.metadata.generation}'])).toBe('8080 2');
    expect(await ok(['apply', '--server-side', '-f', '-'], changed)).toBe('haloadbalancer.halb.dev/web serverside-applied\n');
    // kubectl migrated the client-side owner to its server-side one (csaupgrade).
    const managers = JSON.parse(await ok(['get', 'halb', 'web', '-o', 'json', '--show-managed-fields'])).metadata.managedFields
      .map((m: { manager: string; operation: string }) => `${m.manager}/${m.operation}`);
    expect(managers).toContain('kubectl/Apply');
    expect(managers).not.toContain('kubectl-client-side-apply/Update');
  });

  it('reports server-side apply conflicts and honours --force-conflicts', async () => {
    const other = webYaml.replace('port: 80', 'port: 9090');
    const r = await h.kubectl(['apply', '--server-side', '--field-manager=other', '-f', '-'], other);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Apply failed with 1 conflict: conflict with "kubectl": .spec.frontends[name="www"].port');
    expect(await ok(['apply', '--server-side', '--field-manager=other', '--force-conflicts', '-f', '-'], other))
      .toBe('haloadbalancer.halb.dev/web serverside-applied\n');
    expect(await ok(['get', 'halb', 'web', '-o', 'jsonpath={.spec.frontends[0].port}'])).toBe('9090');
  });

  it('shows the printer columns, wide columns and the full object', async () => {
    const table = await ok(['get', 'halb']);
    expect(table.split('\n')[0]).toMatch(/^NAME\s+READY\s+FLOATING-IP\s+ACTIVE\s+AGE$/);
    expect(table.split('\n')[1]).toMatch(/^web\s+\d+s$/);
    expect((await ok(['get', 'halb', '-o', 'wide'])).split('\n')[0]).toMatch(/AGE\s+NODES\s+MESSAGE$/);
    expect((await ok(['get', 'halb', '-A'])).split('\n')[0]).toMatch(/^NAMESPACE\s+NAME\s+READY/);
    const yaml = await ok(['get', 'halb', 'web', '-o', 'yaml']);
    expect(yaml).toContain('reclaimPolicy: Retain'); // defaulted by the schema
    expect(yaml).toMatch(/uid: [0-9a-f-]{36}/);
    expect(yaml).toMatch(/creationTimestamp: "\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"/);
  });

  it('waits for Ready only once observedGeneration catches up', async () => {
    const gen = Number(await ok(['get', 'halb', 'web', '-o', 'jsonpath={.metadata.generation}']));
    const status = (observedGeneration: number): string => JSON.stringify({
      status: {
        observedGeneration, floatingIP: '198.51.100.7', activeNode: 'web-1',
        conditions: [{
          type: 'Ready', status: 'True', reason: 'Up', message: 'all nodes up', lastTransitionTime: '2026-11-24T03:00:00Z',
          observedGeneration,
        }],
      },
    });
    await ok(['patch', 'halb', 'web', '--subresource=status', '--type=merge', '-p', status(gen - 1)]);
    const stale = await h.kubectl(['wait', '--for=condition=Ready', 'halb/web', '--timeout=1s']);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain('timed out waiting for the condition on haloadbalancers/web');
    const waiting = h.spawnKubectl(['wait', '--for=condition=Ready', 'halb/web', '--timeout=10s']);
    await new Promise((r) => setTimeout(r, 300));
    await ok(['patch', 'halb', 'web', '--subresource=status', '--type=merge', '-p', status(gen)]);
    expect(await waiting.exited).toBe(0);
    expect(waiting.output()).toContain('haloadbalancer.halb.dev/web condition met');
    // A status write does not bump the generation, and the table shows the status columns.
    expect(await ok(['get', 'halb', 'web', '-o', 'jsonpath={.metadata.generation}'])).toBe(String(gen));
    expect((await ok(['get', 'halb'])).split('\n')[1]).toMatch(/^web\s+True\s+198\.51\.100\.7\s+web-1\s+\d+s$/);
  });

  it('streams rows with get -w', async () => {
    const w = h.spawnKubectl(['get', 'halb', '-w']);
    await waitFor('the first row', () => w.output().includes('198.51.100.7'));
    await ok(['patch', 'halb', 'web', '--subresource=status', '--type=merge', '-p', '{"status":{"floatingIP":"198.51.100.8"}}']);
    await waitFor('the updated row', () => w.output().includes('198.51.100.8'));
    expect(w.output().split('\n')[0]).toMatch(/^NAME\s+READY\s+FLOATING-IP/);
    w.child.kill('SIGTERM');
    await w.exited;
  });

  it('describe shows the events recorded for the object', async () => {
    const uid = await ok(['get', 'halb', 'web', '-o', 'jsonpath={.metadata.uid}']);
    const event = {
      apiVersion: 'v1', kind: 'Event', metadata: { name: 'web.1', namespace: 'default' },
      involvedObject: { apiVersion: 'halb.dev/v1alpha1', kind: 'HALoadBalancer', name: 'web', namespace: 'default', uid },
      reason: 'FloatingIPAssigned', message: 'assigned 198.51.100.7 to web-1', type: 'Normal',
      source: { component: 'halb-operator' }, count: 1,
      firstTimestamp: '2026-11-24T03:00:00Z', lastTimestamp: '2026-11-24T03:00:00Z',
    };
    await ok(['create', '-f', '-'], JSON.stringify(event));
    // The operator's kind of event: events.k8s.io/v1, which describe reads through core/v1.
    const modern = {
      apiVersion: 'events.k8s.io/v1', kind: 'Event', metadata: { name: 'web.2', namespace: 'default' },
      regarding: { apiVersion: 'halb.dev/v1alpha1', kind: 'HALoadBalancer', name: 'web', namespace: 'default', uid },
      reason: 'Failover', note: 'web-2 became MASTER', type: 'Warning', action: 'Failover',
      reportingController: 'halb.dev/operator', reportingInstance: 'op-0', eventTime: new Date().toISOString().replace('Z', '000Z'),
    };
    await ok(['create', '-f', '-'], JSON.stringify(modern));
    const out = await ok(['describe', 'halb', 'web']);
    expect(out).toMatch(/Events:\s*\n\s+Type\s+Reason\s+Age\s+From\s+Message/);
    expect(out).toMatch(/Normal\s+FloatingIPAssigned\s+\S+\s+halb-operator\s+assigned 198\.51\.100\.7 to web-1/);
    expect(out).toMatch(/Warning\s+Failover\s+\S+\s+halb.dev\/operator\s+web-2 became MASTER/);
  });

  it('delete blocks while a finalizer is present and finishes once it is removed', async () => {
    await ok(['patch', 'halb', 'web', '--type=merge', '-p', '{"metadata":{"finalizers":["halb.dev/cleanup"]}}']);
    const del = h.spawnKubectl(['delete', 'halb', 'web', '--timeout=20s']);
    await waitFor('deletionTimestamp', async () =>
      (await h.kubectl(['get', 'halb', 'web', '-o', 'jsonpath={.metadata.deletionTimestamp}'])).stdout || undefined);
    await new Promise((r) => setTimeout(r, 300));
    expect(del.child.exitCode).toBe(null);
    const add = await h.kubectl(['patch', 'halb', 'web', '--type=merge', '-p', '{"metadata":{"finalizers":["halb.dev/cleanup","x/y"]}}']);
    expect(add.stderr).toContain('no new finalizers can be added if the object is being deleted');
    await ok(['patch', 'halb', 'web', '--type=json', '-p', '[{"op":"remove","path":"/metadata/finalizers"}]']);
    expect(await del.exited).toBe(0);
    expect(del.output()).toBe('haloadbalancer.halb.dev "web" deleted\n');
    const gone = await h.kubectl(['get', 'halb', 'web']);
    expect(gone.stderr).toBe('Error from server (NotFound): haloadbalancers.halb.dev "web" not found\n');
  });

  it('rejects invalid custom resources the way the real server does', async () => {
    const bad = webYaml.replace('name: web\n', 'name: bad\n').replace('region: nyc3', 'region: NYC')
      .replace('port: 80\n      defaultBackend', 'port: 0\n      defaultBackend');
    const r = await h.kubectl(['apply', '-f', '-'], bad);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('The HALoadBalancer "bad" is invalid: \n');
    expect(r.stderr).toContain('* spec.region: Invalid value: "NYC": spec.region in body should match \'^[a-z]{3}[0-9]$\'');
    expect(r.stderr).toContain('* spec.frontends[0].port: Invalid value: 0: ' +
      'spec.frontends[0].port in body should be greater than or equal to 1');
    const missing = await h.kubectl(['apply', '-f', '-'],
      'apiVersion: halb.dev/v1alpha1\nkind: HALoadBalancer\nmetadata: {name: empty}\nspec: {region: nyc3}\n');
    expect(missing.stderr).toContain('spec.credentials: Required value');
    const unknown = await h.kubectl(['apply', '-f', '-'],
      webYaml.replace('name: web\n', 'name: extra\n').replace('  region: nyc3', '  region: nyc3\n  foo: 1'));
    expect(unknown.stderr).toBe('Error from server (BadRequest): error when creating "STDIN": ' +
      'HALoadBalancer in version "v1alpha1" cannot be handled as a HALoadBalancer: strict decoding error: unknown field "spec.foo"\n');
    const smp = await h.kubectl(['patch', 'halb', 'missing-or-not', '-p', '{"spec":{}}']);
    expect(smp.stderr).toMatch(/not found|application\/strategic-merge-patch\+json is not supported/);
  });

  it('answers strategic merge patches on custom resources with 415', async () => {
    await ok(['apply', '-f', WEB]);
    const r = await h.kubectl(['patch', 'halb', 'web', '-p', '{"spec":{"region":"sfo3"}}']);
    expect(r.stderr).toContain('application/strategic-merge-patch+json is not supported by halb.dev/v1alpha1, Kind=HALoadBalancer: ' +
      'the body of the request was in an unknown format - accepted media types include: ' +
      'application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml');
  });

  it('applies a kustomize directory', async () => {
    const dir = join(FIXTURES, 'kustomize');
    const out = await ok(['apply', '-k', dir]);
    expect(out).toBe('secret/k-do-api created\nhaloadbalancer.halb.dev/k-web created\n');
    expect(await ok(['apply', '-k', dir])).toBe('secret/k-do-api unchanged\nhaloadbalancer.halb.dev/k-web unchanged\n');
    expect(await ok(['get', 'secret', 'k-do-api', '-o', 'jsonpath={.data.token}'])).toBe(Buffer.from('sandbox-token').toString('base64'));
    expect(await ok(['get', 'halb', '-l', 'app.kubernetes.io/part-of=halb-test', '-o', 'name'])).toBe('haloadbalancer.halb.dev/k-web\n');
    expect((await ok(['get', 'secrets'])).split('\n')[0]).toMatch(/^NAME\s+TYPE\s+DATA\s+AGE$/);
  });

  it('accepts the protobuf bodies kubectl create sends for built-ins', async () => {
    expect(await ok(['create', 'namespace', 'team-a'])).toBe('namespace/team-a created\n');
    expect(await ok(['-n', 'team-a', 'create', 'secret', 'generic', 'vrrp', '--from-literal=password=s3cr3t!', '--type=halb.dev/vrrp']))
      .toBe('secret/vrrp created\n');
    expect(await ok(['-n', 'team-a', 'create', 'configmap', 'cfg', '--from-literal=a=1', '--from-literal=b=2']))
      .toBe('configmap/cfg created\n');
    const secret = JSON.parse(await ok(['-n', 'team-a', 'get', 'secret', 'vrrp', '-o', 'json'])) as
      { type: string; data: Record<string, string> };
    expect([secret.type, Buffer.from(secret.data.password!, 'base64').toString()]).toEqual(['halb.dev/vrrp', 's3cr3t!']);
    expect(await ok(['-n', 'team-a', 'get', 'cm', 'cfg', '-o', 'jsonpath={.data}'])).toBe('{"a":"1","b":"2"}');
    expect(await ok(['delete', 'namespace', 'team-a'])).toBe('namespace "team-a" deleted\n');
    expect((await h.kubectl(['-n', 'team-a', 'get', 'cm', 'cfg'])).stderr).toContain('not found');
  });

  it('keeps namespaces, duplicates and dry runs honest', async () => {
    const r = await h.kubectl(['apply', '-n', 'nope', '-f', WEB]);
    expect(r.stderr).toContain('namespaces "nope" not found');
    const dup = await h.kubectl(['create', '-f', WEB]);
    expect(dup.stderr).toContain('Error from server (AlreadyExists): error when creating');
    expect(dup.stderr).toContain('haloadbalancers.halb.dev "web" already exists');
    expect(await ok(['apply', '--dry-run=server', '-f', '-'], webYaml.replace('name: web\n', 'name: dry\n')))
      .toBe('haloadbalancer.halb.dev/dry created (server dry run)\n');
    expect((await h.kubectl(['get', 'halb', 'dry'])).stderr).toContain('"dry" not found');
  });

  it('removes the resource type with its CRD', async () => {
    expect(await ok(['delete', '-f', CRD_FILE])).toBe('customresourcedefinition.apiextensions.k8s.io "haloadbalancers.halb.dev" deleted\n');
    // kubectl's cached discovery still maps halb; the server no longer serves the path.
    const r = await h.kubectl(['get', 'halb']);
    expect(r.stderr).toContain(
      'Unable to list "halb.dev/v1alpha1, Resource=haloadbalancers": the server could not find the requested resource');
    expect(await ok(['api-resources'])).not.toContain('halb.dev');
    expect((await h.kubectl(['get', 'halb', '--cache-dir', join(h.dir, 'fresh-cache')])).stderr)
      .toBe('error: the server doesn\'t have a resource type "halb"\n');
  });
});

// Wire-level behaviour over plain HTTP: discovery forms, Status bodies, watch semantics
// (initial events, resume, bookmarks, timeouts, 410, selector transitions), PUT rules.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { KubeEmulator } from '../../src/sandbox/kube/index.ts';
import { startKubeEmulator } from '../../src/sandbox/kube/index.ts';
import { CRD_FILE, FIXTURES } from './helpers.ts';

const CRS = '/apis/halb.dev/v1alpha1/namespaces/default/haloadbalancers';
const web = parse(readFileSync(join(FIXTURES, 'web.yaml'), 'utf8')) as Record<string, unknown>;

describe('the emulator on the wire', () => {
  let emu: KubeEmulator;
  const call = async (
    method: string, path: string, body?: unknown, headers: Record<string, string> = {},
  ): Promise<{ code: number; type: string | null; json: Record<string, unknown> }> => {
    const res = await fetch(`${emu.url}${path}`, {
      method, headers: { 'Content-Type': 'application/json', ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    // JSON whatever the media type (the OpenAPI v3 discovery is sent as text, as by the real server).
    const json = text.startsWith('{') ? JSON.parse(text) as Record<string, unknown> : { text };
    return { code: res.status, type: res.headers.get('content-type'), json };
  };
  /** Reads a watch stream until it ends or `until` says stop; returns the events. */
  const watch = async (
    path: string, until?: (evs: Array<{ type: string; object: Record<string, unknown> }>) => boolean,
  ): Promise<Array<{ type: string; object: Record<string, unknown> }>> => {
    const ac = new AbortController();
    const res = await fetch(`${emu.url}${path}`, { signal: ac.signal });
    expect(res.status).toBe(200);
    const events: Array<{ type: string; object: Record<string, unknown> }> = [];
    let buf = '';
    const reader = res.body!.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += Buffer.from(value).toString('utf8');
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        events.push(JSON.parse(buf.slice(0, i)) as { type: string; object: Record<string, unknown> });
        buf = buf.slice(i + 1);
      }
      if (until?.(events)) {
        ac.abort();
        break;
      }
    }
    return events;
  };

  beforeAll(async () => {
    emu = await startKubeEmulator({ port: 0, historyLimit: 50, bookmarkIntervalMs: 100 });
    const crd = parse(readFileSync(CRD_FILE, 'utf8')) as Record<string, unknown>;
    expect((await call('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd)).code).toBe(201);
  });
  afterAll(async () => {
    await emu?.close();
  });

  it('serves legacy and aggregated discovery, and the OpenAPI stubs', async () => {
    const groups = await call('GET', '/apis');
    expect(groups.type).toBe('application/json');
    expect((groups.json.groups as Array<{ name: string }>).map((g) => g.name)).toContain('halb.dev');
    const agg = await call('GET', '/apis', undefined, {
      Accept: 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json',
    });
    expect(agg.type).toBe('application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList');
    const aggregated = agg.json.items as
      Array<{ metadata: { name: string }; versions: Array<{ resources: Array<Record<string, unknown>> }> }>;
    const halb = aggregated.find((i) => i.metadata.name === 'halb.dev')!;
    expect(halb.versions[0]!.resources[0]).toMatchObject({
      resource: 'haloadbalancers', scope: 'Namespaced', shortNames: ['halb'], subresources: [{ subresource: 'status' }],
    });
    const rl = await call('GET', '/apis/halb.dev/v1alpha1');
    expect(rl.json.resources).toEqual([
      expect.objectContaining({
        name: 'haloadbalancers', singularName: 'haloadbalancer', namespaced: true, kind: 'HALoadBalancer', shortNames: ['halb'],
      }),
      { name: 'haloadbalancers/status', singularName: '', namespaced: true, kind: 'HALoadBalancer', verbs: ['get', 'patch', 'update'] },
    ]);
    const v2 = await fetch(`${emu.url}/openapi/v2`);
    expect([v2.status, v2.headers.get('content-type'), (await v2.arrayBuffer()).byteLength])
      .toEqual([200, 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf', 0]);
    const root = await call('GET', '/openapi/v3');
    const url = (root.json.paths as Record<string, { serverRelativeURL: string }>)['apis/halb.dev/v1alpha1']!.serverRelativeURL;
    expect(url).toMatch(/^\/openapi\/v3\/apis\/halb.dev\/v1alpha1\?hash=[0-9A-F]+$/);
    expect(Object.keys(root.json.paths as object))
      .toEqual(expect.arrayContaining(['api/v1', 'apis/apiextensions.k8s.io/v1', 'apis/coordination.k8s.io/v1']));
    const doc = (await call('GET', url)).json as
      { paths: Record<string, { patch?: { 'x-kubernetes-group-version-kind': unknown; parameters: Array<{ name: string }> } }> };
    const patch = doc.paths['/apis/halb.dev/v1alpha1/namespaces/{namespace}/haloadbalancers/{name}']!.patch!;
    expect(patch['x-kubernetes-group-version-kind']).toEqual({ group: 'halb.dev', version: 'v1alpha1', kind: 'HALoadBalancer' });
    expect(patch.parameters.map((p) => p.name)).toContain('fieldValidation');
    // As the real server: a path no API group serves gets its mux's plain-text page, an unknown
    // resource of a served group version a Status.
    expect(await call('GET', '/apis/nope.dev/v1/things')).toMatchObject({
      code: 404, type: 'text/plain; charset=utf-8', json: { text: '404 page not found\n' },
    });
    expect(await call('GET', '/api/v1/things')).toMatchObject({
      code: 404, json: { kind: 'Status', message: 'the server could not find the requested resource', reason: 'NotFound' },
    });
  });

  it('requires resourceVersion on custom-resource PUT and rejects stale ones', async () => {
    const created = await call('POST', CRS, { ...web, metadata: { generateName: 'gen-' } });
    expect(created.code).toBe(201);
    const meta = created.json.metadata as { name: string; resourceVersion: string };
    expect(meta.name).toMatch(/^gen-[a-z0-9]{5}$/);
    const { resourceVersion: _rv, ...noRV } = meta;
    const put = await call('PUT', `${CRS}/${meta.name}`, { ...created.json, metadata: noRV });
    expect(put.json).toMatchObject({
      code: 422, reason: 'Invalid',
      message: `haloadbalancers.halb.dev "${meta.name}" is invalid: ` +
        'metadata.resourceVersion: Invalid value: 0x0: must be specified for an update',
    });
    const relabelled = { ...created.json, metadata: { ...meta, labels: { a: 'b' } } };
    const updated = await call('PUT', `${CRS}/${meta.name}`, relabelled);
    expect(updated.code).toBe(200);
    expect(Number((updated.json.metadata as { resourceVersion: string }).resourceVersion)).toBeGreaterThan(Number(meta.resourceVersion));
    expect((await call('PUT', `${CRS}/${meta.name}`, relabelled)).json).toMatchObject({ code: 409, reason: 'Conflict' });
    const dup = await call('POST', CRS, { ...web, metadata: { name: meta.name } });
    expect(dup.json).toEqual({
      kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `haloadbalancers.halb.dev "${meta.name}" already exists`,
      reason: 'AlreadyExists', details: { name: meta.name, group: 'halb.dev', kind: 'haloadbalancers' }, code: 409,
    });
    const del = await call('DELETE', `${CRS}/${meta.name}`);
    expect(del.json).toMatchObject({ kind: 'Status', status: 'Success', details: { name: meta.name, kind: 'haloadbalancers' } });
  });

  it('warns about unknown fields by default and drops them silently with Ignore', async () => {
    const res = await fetch(`${emu.url}${CRS}`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ ...web, metadata: { name: 'warned' }, spec: { ...web.spec as object, foo: 1 } }),
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('warning')).toBe('299 - "unknown field \\"spec.foo\\""');
    expect(((await res.json()) as { spec: Record<string, unknown> }).spec.foo).toBeUndefined();
    const ignored = await fetch(`${emu.url}${CRS}?fieldValidation=Ignore`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ ...web, metadata: { name: 'ignored' }, spec: { ...web.spec as object, foo: 1 } }),
    });
    expect([ignored.status, ignored.headers.get('warning')]).toEqual([201, null]);
  });

  it('watches: initial ADDED, resume from an RV, selector transitions, bookmarks, timeout', async () => {
    const initial = await watch(`${CRS}?watch=true&timeoutSeconds=1`);
    expect(initial.map((e) => `${e.type} ${(e.object.metadata as { name: string }).name}`)).toEqual(['ADDED ignored', 'ADDED warned']);
    const rv = (await call('GET', CRS)).json.metadata as { resourceVersion: string };
    await call('PATCH', `${CRS}/warned`, { metadata: { labels: { tier: 'edge' } } }, { 'Content-Type': 'application/merge-patch+json' });
    await call('PATCH', `${CRS}/warned`, { metadata: { labels: { tier: 'core' } } }, { 'Content-Type': 'application/merge-patch+json' });
    const resumed = await watch(`/apis/halb.dev/v1alpha1/watch/namespaces/default/haloadbalancers?resourceVersion=${rv.resourceVersion}` +
      '&labelSelector=tier%3Dedge&timeoutSeconds=1');
    expect(resumed.map((e) => e.type)).toEqual(['ADDED', 'DELETED']);
    const started = Date.now();
    const withBookmarks = await watch(`${CRS}?watch=true&resourceVersion=${rv.resourceVersion}` +
      '&allowWatchBookmarks=true&fieldSelector=metadata.name%3Dnobody&timeoutSeconds=1');
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(withBookmarks.length).toBeGreaterThan(1);
    expect(withBookmarks.every((e) => e.type === 'BOOKMARK')).toBe(true);
    expect(withBookmarks[0]!.object).toEqual({
      kind: 'HALoadBalancer', apiVersion: 'halb.dev/v1alpha1', metadata: { resourceVersion: expect.stringMatching(/^\d+$/) },
    });
  });

  it('answers a too-old resourceVersion with an in-stream 410 after compaction', async () => {
    const rv = Number(((await call('GET', CRS)).json.metadata as { resourceVersion: string }).resourceVersion);
    await call('PATCH', `${CRS}/warned`, { metadata: { labels: { x: '1' } } }, { 'Content-Type': 'application/merge-patch+json' });
    emu.compact();
    const evs = await watch(`${CRS}?watch=true&resourceVersion=${rv}`);
    expect(evs).toEqual([{
      type: 'ERROR',
      object: {
        kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `too old resource version: ${rv} (${rv + 2})`,
        reason: 'Expired', code: 410,
      },
    }]);
  });

  it('deleting a CRD deletes its objects and its discovery entries', async () => {
    const seen = watch(`${CRS}?watch=true&resourceVersion=0`, (evs) => evs.filter((e) => e.type === 'DELETED').length >= 2);
    await new Promise((r) => setTimeout(r, 100));
    expect((await call('DELETE', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/haloadbalancers.halb.dev')).code).toBe(200);
    expect((await seen).filter((e) => e.type === 'DELETED').map((e) => (e.object.metadata as { name: string }).name).sort())
      .toEqual(['ignored', 'warned']);
    expect((await call('GET', '/apis/halb.dev/v1alpha1')).code).toBe(404);
    expect(((await call('GET', '/apis')).json.groups as Array<{ name: string }>).map((g) => g.name)).not.toContain('halb.dev');
  });

  it('serves cluster-scoped CRDs without a status subresource, with read-time defaults', async () => {
    const widgets = {
      apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: 'widgets.test.dev' },
      spec: {
        group: 'test.dev', scope: 'Cluster', names: { kind: 'Widget', plural: 'widgets' },
        versions: [{
          name: 'v1', served: true, storage: true,
          schema: { openAPIV3Schema: { type: 'object', properties: {
            spec: { type: 'object', properties: {
              size: { 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer' }, { type: 'string' }] },
              tags: { type: 'array', items: { type: 'string' }, 'x-kubernetes-list-type': 'set' },
              free: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
            } },
            status: { type: 'object', properties: { phase: { type: 'string' } } },
          } } },
        }],
      },
    };
    const crd = await call('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', widgets);
    expect(crd.code).toBe(201);
    expect((crd.json.status as { conditions: Array<{ type: string; status: string }> }).conditions.map((c) => `${c.type}=${c.status}`))
      .toEqual(['NamesAccepted=True', 'Established=True']);
    // A deprecated older version warns on every request and points at the newest served one.
    const v1beta1 = { ...structuredClone(widgets.spec.versions[0]!), name: 'v1beta1', storage: false, deprecated: true };
    widgets.spec.versions.push(v1beta1 as typeof widgets.spec.versions[0]);
    const crdWithBeta = await call('PUT', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.test.dev', {
      ...crd.json, spec: widgets.spec,
    });
    expect(crdWithBeta.code).toBe(200);
    const beta = await fetch(`${emu.url}/apis/test.dev/v1beta1/widgets`);
    expect(beta.headers.get('warning')).toBe('299 - "test.dev/v1beta1 Widget is deprecated; use test.dev/v1 Widget"');
    const W = '/apis/test.dev/v1/widgets';
    expect((await call('POST', W, {
      apiVersion: 'test.dev/v1', kind: 'Widget', metadata: { name: 'w' },
      spec: { size: '10Gi', tags: ['a', 'b'], free: { any: [1, { x: 2 }] } },
    })).code).toBe(201);
    expect((await call('POST', W, { metadata: { name: 'dup' }, spec: { tags: ['a', 'a'] } })).json)
      .toMatchObject({ code: 422, message: 'Widget.test.dev "dup" is invalid: spec.tags[1]: Duplicate value: "a"' });
    expect((await call('POST', W, { metadata: { name: 'bad' }, spec: { size: true } })).code).toBe(422);
    expect((await call('GET', '/apis/test.dev/v1/namespaces/default/widgets/w')).code).toBe(404);
    // Without a status subresource a status change is a change of the object: generation moves.
    const st = await call('PATCH', `${W}/w`, { status: { phase: 'Ready' } }, { 'Content-Type': 'application/merge-patch+json' });
    expect((st.json.metadata as { generation: number }).generation).toBe(2);
    expect((await call('GET', `${W}/w/status`)).code).toBe(404);
    // A default added to the CRD later shows on the stored object when read.
    const cur = (await call('GET', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.test.dev')).json;
    const patch = [{
      op: 'add', path: '/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/color',
      value: { type: 'string', default: 'blue' },
    }];
    expect((await call('PATCH', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.test.dev', patch, {
      'Content-Type': 'application/json-patch+json',
    })).code).toBe(200);
    expect(((await call('GET', `${W}/w`)).json.spec as { color: string }).color).toBe('blue');
    const table = await call('GET', W, undefined, { Accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json' });
    expect(table.type).toBe('application/json;as=Table;v=v1;g=meta.k8s.io');
    expect((table.json.columnDefinitions as Array<{ name: string }>).map((c) => c.name)).toEqual(['Name', 'Age']);
    expect(((table.json.rows as Array<{ object: { kind: string } }>)[0]!.object.kind)).toBe('PartialObjectMetadata');
    expect(cur.metadata).toBeDefined();
  });

  it('checks built-in objects for unknown fields as the strict decoder does', async () => {
    const strict = await call('POST', '/api/v1/namespaces/default/configmaps?fieldValidation=Strict', {
      metadata: { name: 'c', bogus: 1 }, data: { a: 'b' }, extra: true,
    });
    expect(strict.json).toMatchObject({
      code: 400,
      message: 'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: ' +
        'unknown field "extra", unknown field "metadata.bogus"',
    });
    const warned = await fetch(`${emu.url}/api/v1/namespaces/default/configmaps`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ metadata: { name: 'c' }, extra: true }),
    });
    expect([warned.status, warned.headers.get('warning')]).toEqual([201, '299 - "unknown field \\"extra\\""']);
    // Built-ins like ConfigMap carry no metadata.generation, unlike custom resources.
    expect(((await warned.json()) as { metadata: Record<string, unknown> }).metadata.generation).toBeUndefined();
    const bad64 = await call('POST', '/api/v1/namespaces/default/secrets', { metadata: { name: 's' }, data: { k: 'not base64!' } });
    expect(bad64.json).toMatchObject({ code: 400, reason: 'BadRequest' });
  });

  it('collects garbage: dependents go with their owner unless orphaned', async () => {
    const CM = '/api/v1/namespaces/default/configmaps';
    const owner = (await call('POST', CM, { metadata: { name: 'owner' } })).json.metadata as { uid: string };
    const ref = { apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.uid };
    await call('POST', CM, { metadata: { name: 'dep', ownerReferences: [ref] } });
    await call('POST', CM, { metadata: { name: 'shared', ownerReferences: [ref, { ...ref, name: 'other', uid: 'u-2' }] } });
    await call('POST', '/api/v1/namespaces/default/secrets', { metadata: { name: 'dep-secret', ownerReferences: [ref] } });
    expect((await call('DELETE', `${CM}/owner`)).code).toBe(200);
    expect((await call('GET', `${CM}/dep`)).code).toBe(404);
    expect((await call('GET', '/api/v1/namespaces/default/secrets/dep-secret')).code).toBe(404);
    const shared = (await call('GET', `${CM}/shared`)).json.metadata as { ownerReferences: Array<{ uid: string }> };
    expect(shared.ownerReferences.map((r) => r.uid)).toEqual(['u-2']);
    const owner2 = (await call('POST', CM, { metadata: { name: 'owner2' } })).json.metadata as { uid: string };
    await call('POST', CM, { metadata: { name: 'orphan', ownerReferences: [{ ...ref, name: 'owner2', uid: owner2.uid }] } });
    await call('DELETE', `${CM}/owner2`, { propagationPolicy: 'Orphan' });
    expect(((await call('GET', `${CM}/orphan`)).json.metadata as Record<string, unknown>).ownerReferences).toBeUndefined();
  });

  it('seeds objects in-process, idempotently, with errors naming the object', async () => {
    const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'do-api', namespace: 'default' }, stringData: { token: 't' } };
    expect(emu.seed([secret])).toEqual(['Secret/do-api created']);
    expect(emu.seed([secret])).toEqual(['Secret/do-api exists']);
    expect((await call('GET', '/api/v1/namespaces/default/secrets/do-api')).json.data)
      .toEqual({ token: Buffer.from('t').toString('base64') });
    expect(() => emu.seed([{ apiVersion: 'nope/v1', kind: 'Thing', metadata: { name: 'x' } }]))
      .toThrow('seed Thing/x: no resource serves nope/v1 Thing');
    expect(() => emu.seed([{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'Bad_Name' } }]))
      .toThrow(/^seed ConfigMap\/Bad_Name: ConfigMap "Bad_Name" is invalid: metadata.name/);
  });

  it('terminates a namespace: contents go, finalizers hold it, new content is refused', async () => {
    const NS = '/api/v1/namespaces';
    await call('POST', NS, { metadata: { name: 'term' } });
    await call('POST', `${NS}/term/configmaps`, { metadata: { name: 'held', finalizers: ['halb.dev/cleanup'] } });
    await call('POST', `${NS}/term/configmaps`, { metadata: { name: 'free' } });
    const del = await call('DELETE', `${NS}/term`);
    expect([del.code, (del.json.status as { phase: string }).phase]).toEqual([200, 'Terminating']);
    expect((await call('GET', `${NS}/term/configmaps/free`)).code).toBe(404);
    expect(((await call('GET', `${NS}/term/configmaps/held`)).json.metadata as Record<string, unknown>).deletionTimestamp).toBeDefined();
    expect((await call('POST', `${NS}/term/configmaps`, { metadata: { name: 'late' } })).json).toMatchObject({
      code: 403, reason: 'Forbidden',
      message: 'configmaps "late" is forbidden: unable to create new content in namespace term because it is being terminated',
    });
    expect((await call('GET', `${NS}/term`)).code).toBe(200);
    await call('PATCH', `${NS}/term/configmaps/held`, { metadata: { finalizers: null } }, {
      'Content-Type': 'application/merge-patch+json',
    });
    expect((await call('GET', `${NS}/term/configmaps/held`)).code).toBe(404);
    expect((await call('GET', `${NS}/term`)).code).toBe(404);
  });

  it('validates names, namespaces and field selectors', async () => {
    expect((await call('POST', '/api/v1/namespaces/default/configmaps', { metadata: { name: 'Bad_Name' } })).json)
      .toMatchObject({ code: 422, reason: 'Invalid' });
    expect((await call('POST', '/api/v1/namespaces/ghost/configmaps', { metadata: { name: 'x' } })).json)
      .toMatchObject({ code: 404, message: 'namespaces "ghost" not found' });
    expect((await call('GET', '/api/v1/namespaces/default/secrets?fieldSelector=type%3DOpaque')).code).toBe(200);
    expect((await call('GET', '/api/v1/namespaces/default/configmaps?fieldSelector=data.x%3D1')).json)
      .toMatchObject({ code: 400, message: 'field label not supported: data.x' });
    expect((await call('DELETE', '/api/v1/namespaces/default')).json).toMatchObject({ code: 403 });
    expect((await call('POST', '/api/v1/configmaps', { metadata: { name: 'x', namespace: 'default' } })).code).toBe(405);
  });
});

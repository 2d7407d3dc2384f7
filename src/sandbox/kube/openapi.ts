// OpenAPI v3 documents per group-version: the patch operations kubectl inspects to learn that
// the server supports fieldValidation, and the CRD schemas `kubectl explain` reads.
import { createHash } from 'node:crypto';
import type { Registry } from './registry.ts';
import type { ResourceDef } from './resources.ts';

function gvPath(group: string, version: string): string {
  return group ? `apis/${group}/${version}` : `api/${version}`;
}

function schemaName(r: ResourceDef): string {
  const reversed = r.group ? r.group.split('.').reverse().join('.') : 'io.k8s.api.core';
  return `${reversed}.${r.version}.${r.kind}`;
}

const WRITE_PARAMS = ['dryRun', 'fieldManager', 'fieldValidation', 'pretty'].map((name) => ({
  name, in: 'query', description: `${name} query parameter`, schema: { type: 'string', uniqueItems: true },
}));

export function gvDocument(reg: Registry, group: string, version: string): Record<string, unknown> | undefined {
  const defs = reg.resourcesIn(group, version);
  if (defs.length === 0) return undefined;
  const paths: Record<string, unknown> = {};
  const schemas: Record<string, unknown> = {};
  for (const r of defs) {
    const gvk = { group: r.group, version: r.version, kind: r.kind };
    const ref = { $ref: `#/components/schemas/${schemaName(r)}` };
    const ok = { 200: { description: 'OK', content: { 'application/json': { schema: ref } } } };
    const base = `/${gvPath(group, version)}${r.namespaced ? '/namespaces/{namespace}' : ''}/${r.plural}`;
    const op = (action: string, params: unknown[] = []): Record<string, unknown> => ({
      operationId: `${action}${r.kind}`, 'x-kubernetes-action': action, 'x-kubernetes-group-version-kind': gvk, parameters: params,
      responses: ok,
    });
    const patchParams = [...WRITE_PARAMS, { name: 'force', in: 'query', schema: { type: 'boolean', uniqueItems: true } }];
    paths[base] = { get: op('list'), post: op('post', WRITE_PARAMS) };
    paths[`${base}/{name}`] = { get: op('get'), put: op('put', WRITE_PARAMS), patch: op('patch', patchParams), delete: op('delete') };
    if (r.statusSubresource) {
      paths[`${base}/{name}/status`] = { get: op('get'), put: op('put', WRITE_PARAMS), patch: op('patch', patchParams) };
    }
    const schema = r.schema
      ? structuredClone(r.schema.schema) as Record<string, unknown>
      : { type: 'object', description: `${r.kind} (schema not published by this emulator)` };
    schemas[schemaName(r)] = { ...schema, 'x-kubernetes-group-version-kind': [gvk] };
  }
  return { openapi: '3.0.0', info: { title: 'Kubernetes', version: 'v1.32.0' }, paths, components: { schemas } };
}

function hashOf(doc: unknown): string {
  return createHash('sha512').update(JSON.stringify(doc)).digest('hex').toUpperCase();
}

/** The /openapi/v3 root: one entry per group-version, hashed so kubectl's cache follows CRD changes. */
export function openapiRoot(reg: Registry): Record<string, unknown> {
  const paths: Record<string, unknown> = {};
  const gvs: Array<[string, string]> = [['', 'v1'], ...reg.groups().flatMap((g) => g.versions.map((v): [string, string] => [g.name, v]))];
  for (const [g, v] of gvs) {
    const doc = gvDocument(reg, g, v);
    if (doc) paths[gvPath(g, v)] = { serverRelativeURL: `/openapi/v3/${gvPath(g, v)}?hash=${hashOf(doc)}` };
  }
  return { paths };
}

// Discovery documents, legacy (APIVersions/APIGroupList/APIResourceList) and aggregated v2.
import { createHash } from 'node:crypto';
import type { Registry } from './registry.ts';
import type { ResourceDef } from './resources.ts';

export const AGGREGATED_CONTENT_TYPE = 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList';

export function wantsAggregated(accept: string | undefined): boolean {
  if (!accept) return false;
  const first = accept.split(',')[0] ?? '';
  return /as=APIGroupDiscoveryList/.test(first) && /v=v2(;|$)/.test(first.replace(/\s/g, ''));
}

export const VERSION_INFO = {
  major: '1', minor: '32', gitVersion: 'v1.32.0-halb-emulator', gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean', buildDate: '2026-01-01T00:00:00Z', goVersion: 'go1.23.0', compiler: 'gc', platform: 'linux/amd64',
};

function storageVersionHash(r: ResourceDef): string {
  return createHash('sha256').update(`${r.group}/${r.version}/${r.kind}`).digest('base64').slice(0, 11);
}

export function apiVersions(serverAddress: string): Record<string, unknown> {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
}

function gv(group: string, version: string): { groupVersion: string; version: string } {
  return { groupVersion: `${group}/${version}`, version };
}

export function apiGroup(reg: Registry, name: string): Record<string, unknown> | undefined {
  const g = reg.groups().find((x) => x.name === name);
  if (!g) return undefined;
  return {
    kind: 'APIGroup', apiVersion: 'v1', name, versions: g.versions.map((v) => gv(name, v)), preferredVersion: gv(name, g.versions[0]!),
  };
}

export function apiGroupList(reg: Registry): Record<string, unknown> {
  return {
    kind: 'APIGroupList', apiVersion: 'v1',
    groups: reg.groups().map((g) => ({
      name: g.name, versions: g.versions.map((v) => gv(g.name, v)), preferredVersion: gv(g.name, g.versions[0]!),
    })),
  };
}

export function apiResourceList(reg: Registry, group: string, version: string): Record<string, unknown> | undefined {
  const rs = reg.resourcesIn(group, version);
  if (rs.length === 0) return undefined;
  const resources: Record<string, unknown>[] = [];
  for (const r of rs) {
    const entry: Record<string, unknown> = {
      name: r.plural, singularName: r.singular, namespaced: r.namespaced, kind: r.kind, verbs: r.verbs,
    };
    if (r.shortNames.length) entry.shortNames = r.shortNames;
    if (r.categories.length) entry.categories = r.categories;
    entry.storageVersionHash = storageVersionHash(r);
    resources.push(entry);
    if (r.statusSubresource) {
      resources.push({
        name: `${r.plural}/status`, singularName: '', namespaced: r.namespaced, kind: r.kind, verbs: ['get', 'patch', 'update'],
      });
    }
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group ? `${group}/${version}` : version, resources };
}

function aggregatedResource(r: ResourceDef): Record<string, unknown> {
  const out: Record<string, unknown> = {
    resource: r.plural,
    responseKind: { group: r.group, version: r.version, kind: r.kind },
    scope: r.namespaced ? 'Namespaced' : 'Cluster',
    singularResource: r.singular,
    verbs: r.verbs,
  };
  if (r.shortNames.length) out.shortNames = r.shortNames;
  if (r.categories.length) out.categories = r.categories;
  if (r.statusSubresource) {
    out.subresources = [{
      subresource: 'status', responseKind: { group: r.group, version: r.version, kind: r.kind }, verbs: ['get', 'patch', 'update'],
    }];
  }
  return out;
}

export function aggregatedDiscovery(reg: Registry, core: boolean): Record<string, unknown> {
  const groups = core ? [{ name: '', versions: ['v1'] }] : reg.groups();
  return {
    kind: 'APIGroupDiscoveryList', apiVersion: 'apidiscovery.k8s.io/v2', metadata: {},
    items: groups.map((g) => ({
      metadata: { name: g.name },
      versions: g.versions.map((v) => ({
        version: v, freshness: 'Current', resources: reg.resourcesIn(g.name, v).map(aggregatedResource),
      })),
    })),
  };
}

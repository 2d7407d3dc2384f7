// The set of served resources, which changes as CRDs come and go.
import type { ResourceDef } from './resources.ts';
import { builtinResources } from './resources.ts';

export class Registry {
  private readonly byPath = new Map<string, ResourceDef>();
  /** CRD name → the resources it registered. */
  private readonly fromCRD = new Map<string, ResourceDef[]>();

  constructor() {
    for (const r of builtinResources()) this.add(r);
  }

  private add(r: ResourceDef): void {
    this.byPath.set(`${r.group}/${r.version}/${r.plural}`, r);
  }

  lookup(group: string, version: string, plural: string): ResourceDef | undefined {
    return this.byPath.get(`${group}/${version}/${plural}`);
  }

  setCRD(crdName: string, defs: ResourceDef[]): void {
    this.removeCRD(crdName);
    for (const d of defs) this.add(d);
    this.fromCRD.set(crdName, defs);
  }

  removeCRD(crdName: string): ResourceDef[] {
    const defs = this.fromCRD.get(crdName) ?? [];
    for (const d of defs) this.byPath.delete(`${d.group}/${d.version}/${d.plural}`);
    this.fromCRD.delete(crdName);
    return defs;
  }

  all(): ResourceDef[] {
    return [...this.byPath.values()];
  }

  /** Groups in a stable order: built-ins first as the real server lists them, then CRD groups by name. */
  groups(): Array<{ name: string; versions: string[] }> {
    const order: string[] = [];
    const versions = new Map<string, string[]>();
    for (const r of this.byPath.values()) {
      if (r.group === '') continue;
      if (!versions.has(r.group)) {
        versions.set(r.group, []);
        order.push(r.group);
      }
      const vs = versions.get(r.group)!;
      if (!vs.includes(r.version)) vs.push(r.version);
    }
    const builtin = ['apiextensions.k8s.io', 'coordination.k8s.io', 'events.k8s.io'];
    order.sort((a, b) => {
      const ia = builtin.indexOf(a);
      const ib = builtin.indexOf(b);
      if (ia !== -1 || ib !== -1) return (ia === -1 ? 99 : ia) - (ib === -1 ? 99 : ib);
      return a.localeCompare(b);
    });
    return order.map((name) => ({ name, versions: versions.get(name)!.sort(compareVersions) }));
  }

  resourcesIn(group: string, version: string): ResourceDef[] {
    return this.all().filter((r) => r.group === group && r.version === version);
  }
}

/** Kubernetes version priority: GA > beta > alpha, higher numbers first. */
export function compareVersions(a: string, b: string): number {
  const parse = (v: string): [number, number, number] => {
    const m = /^v(\d+)(?:(alpha|beta)(\d+))?$/.exec(v);
    if (!m) return [-1, 0, 0];
    const stage = m[2] === undefined ? 3 : m[2] === 'beta' ? 2 : 1;
    return [stage, Number(m[1]), Number(m[3] ?? 0)];
  };
  const pa = parse(a);
  const pb = parse(b);
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pb[i]! - pa[i]!;
  return a.localeCompare(b);
}

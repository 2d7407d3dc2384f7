// The part of DigitalOcean's OpenAPI spec the simulator serves: its paths and every component
// they reference, without prose and examples. Vendored as digitalocean-subset.json so the
// conformance test runs where ../shared (the 3 MB bundle) is absent, as in CI.

type Json = Record<string, unknown>;

const PROSE = new Set(['description', 'summary']);
const DROPPED = new Set(['examples', 'example', 'x-codeSamples']);

function strip(node: unknown, parentKey = ''): unknown {
  if (Array.isArray(node)) return node.map((n) => strip(n));
  if (!node || typeof node !== 'object') return node;
  const out: Json = {};
  for (const [k, v] of Object.entries(node)) {
    // Under `properties` every key is a field name, never a keyword.
    if (parentKey !== 'properties' && ((PROSE.has(k) && typeof v === 'string') || DROPPED.has(k))) continue;
    out[k] = strip(v, k);
  }
  return out;
}

export function extractSubset(
  spec: { openapi: string; info: Json; paths: Record<string, Json>; components: Record<string, Record<string, unknown>> },
  templates: readonly string[],
): Json {
  const paths: Record<string, unknown> = {};
  for (const t of [...new Set(templates)].sort()) {
    if (!spec.paths[t]) throw new Error(`the spec has no path ${t}`);
    paths[t] = strip(spec.paths[t]);
  }
  const components: Record<string, Record<string, unknown>> = {};
  const todo: string[] = [];
  const scan = (n: unknown): void => {
    if (Array.isArray(n)) n.forEach(scan);
    else if (n && typeof n === 'object') {
      for (const [k, v] of Object.entries(n)) {
        if (k === '$ref' && typeof v === 'string') todo.push(v);
        else scan(v);
      }
    }
  };
  scan(paths);
  while (todo.length > 0) {
    const [, , kind, name] = todo.pop()!.split('/');
    if (!kind || !name) continue;
    components[kind] ??= {};
    if (name in components[kind]) continue;
    const value = spec.components[kind]?.[name];
    if (value === undefined) throw new Error(`the spec has no component ${kind}/${name}`);
    components[kind][name] = strip(value);
    scan(components[kind][name]);
  }
  const sorted = Object.fromEntries(Object.keys(components).sort()
    .map((k) => [k, Object.fromEntries(Object.entries(components[k]!).sort(([a], [b]) => a.localeCompare(b)))]));
  const info = spec.info as { title?: string; version?: string; license?: unknown };
  return { openapi: spec.openapi, info: { title: info.title, version: info.version, license: info.license }, paths, components: sorted };
}

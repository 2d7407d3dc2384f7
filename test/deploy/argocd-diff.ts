// Argo CD's default diff of a custom resource, in TypeScript, step for step as gitops-engine
// computes it (pkg/diff: Diff → ThreeWayDiff, with pkg/utils/json RemoveMapFields, and
// apimachinery's jsonmergepatch.CreateThreeWayJSONMergePatch on evanphx/json-patch). A custom
// resource is not in client-go's scheme, so gitops-engine takes the JSON-merge-patch branch:
//   1. normalize config (the manifest from Git) and live: drop metadata.creationTimestamp;
//   2. orig = the live object's kubectl.kubernetes.io/last-applied-configuration (no annotation:
//      the two-way diff, which is the three-way diff with orig = config);
//   3. drop metadata.namespace and empty annotations from orig and config;
//   4. live' = live without the map fields orig lacks (server-set fields: status, uid, defaults);
//   5. patch = CreateThreeWayJSONMergePatch(orig, config, live');
//   6. predicted live = JSON merge patch of the full live object with it;
//   7. OutOfSync when predicted live and live differ (compared as sorted-key JSON, as Go's
//      json.Marshal writes them).
// The real library, in Go, belongs in test/upstream/ once Go is part of the build.

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

function isObject(v: Json | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Go's json.Marshal of a map[string]interface{}: keys sorted at every level. */
export function canonicalJSON(v: Json): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJSON).join(',')}]`;
  if (isObject(v)) return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonicalJSON(v[k]!)}`).join(',')}}`;
  return JSON.stringify(v);
}

const same = (a: Json, b: Json) => canonicalJSON(a) === canonicalJSON(b);
const kindOf = (v: Json) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

/** evanphx/json-patch CreateMergePatch on two objects: what turns a into b. */
function mergePatchBetween(a: JsonObject, b: JsonObject): JsonObject {
  const into: JsonObject = {};
  for (const [key, bv] of Object.entries(b)) {
    const av = a[key];
    if (av === undefined || kindOf(av) !== kindOf(bv)) into[key] = bv;
    else if (isObject(av) && isObject(bv)) {
      const nested = mergePatchBetween(av, bv);
      if (Object.keys(nested).length) into[key] = nested;
    } else if (!same(av, bv)) into[key] = bv; // lists are compared whole
  }
  for (const key of Object.keys(a)) if (!(key in b)) into[key] = null;
  return into;
}

/** apimachinery's keepOrDeleteNullInObj: the deletions (keepNull) or the rest of a patch. */
function keepOrDeleteNull(patch: JsonObject, keepNull: boolean): JsonObject {
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) {
      if (keepNull) out[key] = null;
    } else if (isObject(value)) {
      if (!Object.keys(value).length) {
        if (!keepNull) out[key] = value; // an explicitly empty map is a value, not an empty patch
        continue;
      }
      const nested = keepOrDeleteNull(value, keepNull);
      if (Object.keys(nested).length) out[key] = nested;
    } else if (!keepNull) out[key] = value;
  }
  return out;
}

/** RFC 7386 merge patch, as evanphx/json-patch MergePatch applies it. */
export function applyMergePatch(doc: Json, patch: Json): Json {
  if (!isObject(patch)) return patch;
  const out: JsonObject = isObject(doc) ? { ...doc } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = applyMergePatch(out[key] ?? null, value);
  }
  return out;
}

/** mergepatch.HasConflicts: a key both patches set, to different values. */
function hasConflicts(left: JsonObject, right: JsonObject): boolean {
  for (const [key, lv] of Object.entries(left)) {
    if (!(key in right)) continue;
    const rv = right[key]!;
    if (isObject(lv) && isObject(rv)) {
      if (hasConflicts(lv, rv)) return true;
    } else if (!same(lv, rv)) return true;
  }
  return false;
}

/** jsonmergepatch.CreateThreeWayJSONMergePatch. */
export function threeWayMergePatch(original: JsonObject, modified: JsonObject, current: JsonObject): JsonObject {
  const addAndChange = keepOrDeleteNull(mergePatchBetween(current, modified), false);
  const deletions = keepOrDeleteNull(mergePatchBetween(original, modified), true);
  if (hasConflicts(addAndChange, deletions)) throw new Error('three-way merge patch has conflicts');
  return applyMergePatch(deletions, addAndChange) as JsonObject;
}

/** gitops-engine RemoveMapFields: live without the fields config does not have (lists by index). */
function removeFields(config: Json, live: Json): Json {
  if (isObject(config) && isObject(live)) {
    const out: JsonObject = {};
    for (const [key, cv] of Object.entries(config)) {
      if (!(key in live)) continue;
      const lv = live[key]!;
      out[key] = lv === null ? null : removeFields(cv, lv);
    }
    return out;
  }
  if (Array.isArray(config) && Array.isArray(live)) {
    return live.map((lv, i) => (i < config.length && lv !== null ? removeFields(config[i]!, lv) : lv));
  }
  return live;
}

function withMetadata(obj: JsonObject, edit: (metadata: JsonObject) => void): JsonObject {
  const copy = structuredClone(obj);
  if (isObject(copy.metadata)) edit(copy.metadata);
  return copy;
}

const normalize = (obj: JsonObject) => withMetadata(obj, (m) => delete m.creationTimestamp);
const removeNamespaceAnnotation = (obj: JsonObject) => withMetadata(obj, (m) => {
  delete m.namespace;
  if (m.annotations === null || (isObject(m.annotations) && !Object.keys(m.annotations).length)) delete m.annotations;
});

export interface ArgoDiff { modified: boolean; predictedLive: string; normalizedLive: string; patch: JsonObject }

function threeWayDiff(orig: JsonObject, config: JsonObject, live: JsonObject): ArgoDiff {
  const o = removeNamespaceAnnotation(orig);
  const c = removeNamespaceAnnotation(config);
  const patch = threeWayMergePatch(o, c, removeFields(o, live) as JsonObject);
  const predictedLive = canonicalJSON(applyMergePatch(live, patch));
  const normalizedLive = canonicalJSON(live);
  return { modified: predictedLive !== normalizedLive, predictedLive, normalizedLive, patch };
}

/** Argo CD's verdict for one resource: modified means OutOfSync. */
export function argoCDDiff(config: JsonObject, live: JsonObject): ArgoDiff {
  const c = normalize(config);
  const l = normalize(live);
  const annotation = isObject(l.metadata) && isObject(l.metadata.annotations) ? l.metadata.annotations[LAST_APPLIED] : undefined;
  if (typeof annotation === 'string') {
    try {
      return threeWayDiff(normalize(JSON.parse(annotation) as JsonObject), c, l);
    } catch {
      // gitops-engine falls back to the two-way diff when the three-way one fails
    }
  }
  return threeWayDiff(c, c, l);
}

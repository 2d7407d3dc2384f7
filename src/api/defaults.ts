// The defaults of the HALoadBalancer API, applied in code: the one function `halb validate`,
// `halb render` and the operator call before they use a spec.
//
// Why in code: the CRD carries no default inside a list item. kubectl's client-side apply and
// Argo CD diff a list whole (a JSON merge patch replaces it), so a list item the API server had
// filled in would never equal the item in Git: every `kubectl apply` would say "configured" and
// every diff would show the server's additions. Defaults outside lists stay in the CRD too (the
// API server fills them, and a map is merged key by key, so they cause no diff); applying them
// again here is harmless, and makes this function correct for objects read from files.
import { specSchema, type JSONSchemaProps } from './schema.ts';
import type { HALoadBalancerSpec, HALoadBalancerSpecInput } from './types.ts';

function isMapping(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Fills every `default` of the schema where its parent exists, as API-server defaulting does. */
function fill(value: unknown, schema: JSONSchemaProps): unknown {
  if (Array.isArray(value)) return schema.items ? value.map((item) => fill(item, schema.items!)) : value;
  if (!isMapping(value)) return value;
  const out: Record<string, unknown> = { ...value };
  for (const [key, property] of Object.entries(schema.properties ?? {})) {
    if (out[key] === undefined && property.default !== undefined) out[key] = structuredClone(property.default);
    if (out[key] !== undefined) out[key] = fill(out[key], property);
  }
  return out;
}

/**
 * The spec with every default of the API applied (src/api/schema.ts lists them; so does
 * docs/api-reference.md). Returns a new object; the input is not changed. Idempotent.
 */
export function withDefaults(spec: HALoadBalancerSpecInput): HALoadBalancerSpec {
  return fill(spec, specSchema) as HALoadBalancerSpec;
}

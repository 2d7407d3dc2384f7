// The patch types a real server accepts: JSON merge patch (RFC 7396), JSON patch (RFC 6902, via
// fast-json-patch, which implements `test` and reports bad paths), and strategic merge for
// built-in kinds, approximated as merge patch with its $-directives stripped.
import jsonpatch from 'fast-json-patch';
import { ApiError, badRequest } from './errors.ts';

export const MERGE_PATCH = 'application/merge-patch+json';
export const JSON_PATCH = 'application/json-patch+json';
export const STRATEGIC_MERGE_PATCH = 'application/strategic-merge-patch+json';
export const APPLY_PATCH_YAML = 'application/apply-patch+yaml';

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return structuredClone(patch);
  const out: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** Drops $setElementOrder/..., $retainKeys, $patch and $deleteFromPrimitiveList directives. */
export function stripStrategicDirectives(patch: unknown): unknown {
  if (Array.isArray(patch)) return patch.filter((x) => !(isObject(x) && '$patch' in x)).map(stripStrategicDirectives);
  if (!isObject(patch)) return patch;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith('$')) continue;
    out[k] = stripStrategicDirectives(v);
  }
  return out;
}

export function applyJsonPatch(doc: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw badRequest('json: cannot unmarshal object into Go value of type jsonpatch.Patch');
  try {
    return jsonpatch.applyPatch(structuredClone(doc), ops as jsonpatch.Operation[], true, false).newDocument;
  } catch (err) {
    const e = err as { name?: string; message?: string };
    if (e.name === 'TEST_OPERATION_FAILED') throw new ApiError(422, 'Invalid', 'the server rejected our request due to an error in our request', { causes: [{ reason: 'FieldValueInvalid', message: 'testing value failed' }] });
    throw new ApiError(422, 'Invalid', `the server rejected our request due to an error in our request`, {
      causes: [{ reason: 'FieldValueInvalid', message: (e.message ?? String(err)).split('\n')[0]! }],
    });
  }
}

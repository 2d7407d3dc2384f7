// RFC 7386 JSON merge patches from two versions of a value: keys that are gone become null
// (else a merge patch would keep them), objects are compared key by key, anything else is
// replaced whole when it differs. Status is written this way: one request, only what changed,
// and a field the operator no longer reports (a finished grace period) really goes.

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** The merge patch that turns `from` into `to`; undefined when they are equal. */
export function mergePatch(from: unknown, to: unknown): Json | undefined {
  if (!isObject(from) || !isObject(to)) return JSON.stringify(from) === JSON.stringify(to) ? undefined : (to as Json) ?? null;
  const patch: Record<string, Json> = {};
  for (const key of new Set([...Object.keys(from), ...Object.keys(to)])) {
    if (to[key] === undefined) {
      if (from[key] !== undefined) patch[key] = null;
      continue;
    }
    const change = mergePatch(from[key], to[key]);
    if (change !== undefined) patch[key] = change;
  }
  return Object.keys(patch).length ? patch : undefined;
}

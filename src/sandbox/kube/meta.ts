// Small pure helpers about object metadata shared by the API operations.
import { randomBytes } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { StatusCause } from './errors.ts';
import { causes } from './errors.ts';
import type { KubeObject } from './store.ts';

/** metav1.Time: RFC 3339 at second precision. */
export function nowTime(now = new Date()): string {
  return now.toISOString().replace(/\.\d+Z$/, 'Z');
}

const NAME_CHARS = 'bcdfghjklmnpqrstvwxz2456789';
export function generateNameSuffix(): string {
  const bytes = randomBytes(5);
  return [...bytes].map((b) => NAME_CHARS[b % NAME_CHARS.length]).join('');
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function validateName(name: string, rule: 'subdomain' | 'label' | 'path'): StatusCause[] {
  if (rule === 'path') {
    if (name === '.' || name === '..') return [causes.invalid('metadata.name', name, `may not be '${name}'`)];
    for (const bad of ['/', '%']) if (name.includes(bad)) return [causes.invalid('metadata.name', name, `may not contain '${bad}'`)];
    return [];
  }
  if (rule === 'label') {
    if (name.length > 63 || !DNS_LABEL.test(name)) {
      return [causes.invalid('metadata.name', name,
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', " +
        "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', " +
        "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")];
    }
    return [];
  }
  if (name.length > 253 || !DNS_SUBDOMAIN.test(name)) {
    return [causes.invalid('metadata.name', name,
      "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', " +
      "and must start and end with an alphanumeric character (e.g. 'example.com', " +
      "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")];
  }
  return [];
}

export function validateLabelsAndAnnotations(o: KubeObject): StatusCause[] {
  const out: StatusCause[] = [];
  for (const field of ['labels', 'annotations'] as const) {
    const m = o.metadata[field];
    if (m === undefined || m === null) continue;
    if (typeof m !== 'object' || Array.isArray(m)) {
      out.push(causes.typeInvalid(`metadata.${field}`, m, 'must be a map of strings'));
      continue;
    }
    for (const [k, v] of Object.entries(m)) {
      if (typeof v !== 'string') out.push(causes.typeInvalid(`metadata.${field}.${k}`, v, 'must be a string'));
    }
  }
  return out;
}

/** True when anything outside metadata differs (the rule for bumping metadata.generation). */
export function specChanged(a: KubeObject, b: KubeObject, ignoreStatus: boolean): boolean {
  const strip = (o: KubeObject): Record<string, unknown> => {
    const { metadata: _m, apiVersion: _a, kind: _k, ...rest } = o;
    if (ignoreStatus) delete rest.status;
    return rest;
  };
  return !isDeepStrictEqual(strip(a), strip(b));
}

/** Equal except for the fields every write changes. */
export function sameObject(a: KubeObject, b: KubeObject): boolean {
  const norm = (o: KubeObject): unknown => ({ ...o, metadata: { ...o.metadata, resourceVersion: undefined, managedFields: undefined } });
  return isDeepStrictEqual(JSON.parse(JSON.stringify(norm(a))), JSON.parse(JSON.stringify(norm(b))));
}

// Decoding errors the real server reports as 400 BadRequest before any validation: Go's JSON
// decoder meeting a value of the wrong type for a typed field, and Go's base64 decoder meeting
// bytes a []byte field cannot hold. Each message is Go's own wording, which kubectl prints.
import { ApiError } from './errors.ts';

/** Go's name for a JSON value's type in "cannot unmarshal X into ...". */
function jsonType(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return 'number';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'object') return 'object';
  return 'string';
}

function cannotDecode(kind: string, version: string, detail: string): ApiError {
  return new ApiError(400, 'BadRequest', `${kind} in version "${version}" cannot be handled as a ${kind}: ${detail}`);
}

/** ObjectMeta's fields and their Go types, for the fields a manifest may carry. */
const META_SCALARS: Record<string, { type: string; json: 'string' | 'number' }> = {
  name: { type: 'string', json: 'string' },
  generateName: { type: 'string', json: 'string' },
  namespace: { type: 'string', json: 'string' },
  selfLink: { type: 'string', json: 'string' },
  resourceVersion: { type: 'string', json: 'string' },
  uid: { type: 'types.UID', json: 'string' },
  generation: { type: 'int64', json: 'number' },
  deletionGracePeriodSeconds: { type: 'int64', json: 'number' },
};

/**
 * A custom resource's metadata decodes into ObjectMeta: a value of the wrong JSON type is a 400
 * naming the Go field and type ("json: cannot unmarshal number into Go struct field
 * ObjectMeta.uid of type types.UID"). null decodes as the zero value.
 */
export function checkObjectMetaTypes(kind: string, version: string, metadata: Record<string, unknown>): void {
  const wrong = (field: string, value: unknown, goType: string) =>
    cannotDecode(kind, version, `json: cannot unmarshal ${jsonType(value)} into Go struct field ObjectMeta.${field} of type ${goType}`);
  for (const [field, value] of Object.entries(metadata)) {
    if (value === null) continue;
    const scalar = META_SCALARS[field];
    if (scalar && jsonType(value) !== scalar.json) throw wrong(field, value, scalar.type);
    if (field === 'labels' || field === 'annotations') {
      if (jsonType(value) !== 'object') throw wrong(field, value, 'map[string]string');
      for (const v of Object.values(value as Record<string, unknown>)) {
        if (v !== null && typeof v !== 'string') throw wrong(field, v, 'string');
      }
    }
    if (field === 'finalizers') {
      if (!Array.isArray(value)) throw wrong(field, value, '[]string');
      for (const v of value) if (v !== null && typeof v !== 'string') throw wrong(field, v, 'string');
    }
  }
}

const BASE64 = /^[A-Za-z0-9+/]$/;

/**
 * Where Go's base64.StdEncoding stops on `text` (CorruptInputError's offset), or undefined when
 * it decodes. Line breaks are skipped; padding is required.
 */
export function base64ErrorOffset(text: string): number | undefined {
  let i = 0;
  const skipNewlines = () => {
    while (i < text.length && (text[i] === '\n' || text[i] === '\r')) i++;
  };
  for (;;) {
    let j = 0;
    for (; j < 4; j++) {
      skipNewlines();
      if (i === text.length) {
        if (j === 0) return undefined;
        return i - j;
      }
      const c = text[i++]!;
      if (BASE64.test(c)) continue;
      if (c !== '=') return i - 1;
      // Padding: only in the last two places of a quantum, and the input ends after it.
      if (j < 2) return i - 1;
      if (j === 2) {
        skipNewlines();
        if (i === text.length) return text.length;
        if (text[i] !== '=') return i - 1;
        i++;
      }
      skipNewlines();
      return i < text.length ? i : undefined;
    }
  }
}

/** A Secret's data decodes into map[string][]byte: each value must be a base64 string. */
export function checkSecretData(data: unknown): void {
  if (data === undefined || data === null) return;
  const wrong = (detail: string) => cannotDecode('Secret', 'v1', detail);
  if (jsonType(data) !== 'object') {
    throw wrong(`json: cannot unmarshal ${jsonType(data)} into Go struct field Secret.data of type map[string][]uint8`);
  }
  for (const value of Object.values(data as Record<string, unknown>)) {
    if (value === null) continue;
    if (typeof value !== 'string') {
      throw wrong(`json: cannot unmarshal ${jsonType(value)} into Go struct field Secret.data of type []uint8`);
    }
    const offset = base64ErrorOffset(value);
    if (offset !== undefined) throw wrong(`illegal base64 data at input byte ${offset}`);
  }
}

// kubectl sends built-in objects it builds itself (`create secret`, `create configmap`,
// `create namespace`, some deletes) as Kubernetes protobuf. No npm package knows these schemas, so
// this decodes the k8s envelope and the few kinds kubectl creates that way into their JSON form.
import { badRequest } from './errors.ts';

export const PROTOBUF_CONTENT_TYPE = 'application/vnd.kubernetes.protobuf';
const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]); // "k8s\0"

type FieldKind = 'string' | 'bytes' | 'int' | 'bool' | 'time' | 'rawjson' | 'strings' | 'mapString' | 'mapBytes' | 'intOrString'
  | Msg | [Msg];
interface Msg { [field: number]: [string, FieldKind] }

const OwnerReference: Msg = {
  1: ['kind', 'string'], 3: ['name', 'string'], 4: ['uid', 'string'], 5: ['apiVersion', 'string'], 6: ['controller', 'bool'],
  7: ['blockOwnerDeletion', 'bool'],
};
const FieldsV1: Msg = { 1: ['raw', 'rawjson'] };
const ManagedFieldsEntry: Msg = {
  1: ['manager', 'string'], 2: ['operation', 'string'], 3: ['apiVersion', 'string'], 4: ['time', 'time'], 6: ['fieldsType', 'string'],
  7: ['fieldsV1', FieldsV1], 8: ['subresource', 'string'],
};
const ObjectMeta: Msg = {
  1: ['name', 'string'], 2: ['generateName', 'string'], 3: ['namespace', 'string'], 4: ['selfLink', 'string'], 5: ['uid', 'string'],
  6: ['resourceVersion', 'string'], 7: ['generation', 'int'], 8: ['creationTimestamp', 'time'], 9: ['deletionTimestamp', 'time'],
  10: ['deletionGracePeriodSeconds', 'int'], 11: ['labels', 'mapString'], 12: ['annotations', 'mapString'],
  13: ['ownerReferences', [OwnerReference]], 14: ['finalizers', 'strings'], 17: ['managedFields', [ManagedFieldsEntry]],
};
const ServicePort: Msg = {
  1: ['name', 'string'], 2: ['protocol', 'string'], 3: ['port', 'int'], 4: ['targetPort', 'intOrString'], 5: ['nodePort', 'int'],
  6: ['appProtocol', 'string'],
};
const ServiceSpec: Msg = {
  1: ['ports', [ServicePort]], 2: ['selector', 'mapString'], 3: ['clusterIP', 'string'], 4: ['type', 'string'],
  5: ['externalIPs', 'strings'], 7: ['sessionAffinity', 'string'], 8: ['loadBalancerIP', 'string'],
  9: ['loadBalancerSourceRanges', 'strings'], 10: ['externalName', 'string'], 11: ['externalTrafficPolicy', 'string'],
  12: ['healthCheckNodePort', 'int'], 13: ['publishNotReadyAddresses', 'bool'], 17: ['ipFamilyPolicy', 'string'],
  18: ['clusterIPs', 'strings'], 19: ['ipFamilies', 'strings'], 20: ['allocateLoadBalancerNodePorts', 'bool'],
  21: ['loadBalancerClass', 'string'], 22: ['internalTrafficPolicy', 'string'], 23: ['trafficDistribution', 'string'],
};
const KINDS: Record<string, Msg> = {
  Service: { 1: ['metadata', ObjectMeta], 2: ['spec', ServiceSpec] },
  Secret: {
    1: ['metadata', ObjectMeta], 2: ['data', 'mapBytes'], 3: ['type', 'string'], 4: ['stringData', 'mapString'], 5: ['immutable', 'bool'],
  },
  ConfigMap: { 1: ['metadata', ObjectMeta], 2: ['data', 'mapString'], 3: ['binaryData', 'mapBytes'], 4: ['immutable', 'bool'] },
  Namespace: { 1: ['metadata', ObjectMeta], 2: ['spec', { 1: ['finalizers', 'strings'] }], 3: ['status', { 1: ['phase', 'string'] }] },
  DeleteOptions: {
    1: ['gracePeriodSeconds', 'int'], 2: ['preconditions', { 1: ['uid', 'string'], 2: ['resourceVersion', 'string'] }],
    3: ['orphanDependents', 'bool'], 4: ['propagationPolicy', 'string'], 5: ['dryRun', 'strings'],
  },
};

class Reader {
  pos = 0;
  readonly buf: Buffer;
  constructor(buf: Buffer) {
    this.buf = buf;
  }
  done(): boolean {
    return this.pos >= this.buf.length;
  }
  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.buf.length) throw new Error('truncated varint');
      const b = this.buf[this.pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
    }
  }
  bytes(): Buffer {
    const len = Number(this.varint());
    if (this.pos + len > this.buf.length) throw new Error('truncated field');
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else throw new Error(`unsupported wire type ${wire}`);
  }
}

function toInt(v: bigint): number {
  return Number(BigInt.asIntN(64, v));
}

function decodeTime(buf: Buffer): string {
  const r = new Reader(buf);
  let seconds = 0;
  while (!r.done()) {
    const key = toInt(r.varint());
    if (key >>> 3 === 1 && (key & 7) === 0) seconds = toInt(r.varint());
    else r.skip(key & 7);
  }
  return new Date(seconds * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
}

/** Calls `each` with every length-delimited field of a message, skipping the other wire types. */
function forEachBytesField(buf: Buffer, each: (field: number, bytes: Buffer) => void): void {
  const r = new Reader(buf);
  while (!r.done()) {
    const key = toInt(r.varint());
    if ((key & 7) !== 2) {
      r.skip(key & 7);
      continue;
    }
    each(key >>> 3, r.bytes());
  }
}

function decodeMapEntry(buf: Buffer, bytesValue: boolean): [string, string] {
  let k = '';
  let v = '';
  forEachBytesField(buf, (field, b) => {
    if (field === 1) k = b.toString('utf8');
    else if (field === 2) v = bytesValue ? b.toString('base64') : b.toString('utf8');
  });
  return [k, v];
}

function decodeMessage(buf: Buffer, schema: Msg): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const r = new Reader(buf);
  while (!r.done()) {
    const key = toInt(r.varint());
    const wire = key & 7;
    const spec = schema[key >>> 3];
    if (!spec) {
      r.skip(wire);
      continue;
    }
    const [name, kind] = spec;
    if (wire === 0) {
      const v = r.varint();
      out[name] = kind === 'bool' ? v !== 0n : toInt(v);
      continue;
    }
    if (wire !== 2) {
      r.skip(wire);
      continue;
    }
    const b = r.bytes();
    if (kind === 'string') out[name] = b.toString('utf8');
    else if (kind === 'bytes') out[name] = b.toString('base64');
    else if (kind === 'rawjson') return JSON.parse(b.toString('utf8')) as Record<string, unknown>;
    else if (kind === 'time') out[name] = decodeTime(b);
    else if (kind === 'intOrString') {
      const v = decodeMessage(b, { 1: ['type', 'int'], 2: ['intVal', 'int'], 3: ['strVal', 'string'] });
      out[name] = v.type === 1 ? v.strVal ?? '' : v.intVal ?? 0;
    }
    else if (kind === 'strings') out[name] = [...((out[name] as string[] | undefined) ?? []), b.toString('utf8')];
    else if (kind === 'mapString' || kind === 'mapBytes') {
      const [k, v] = decodeMapEntry(b, kind === 'mapBytes');
      out[name] = { ...(out[name] as object | undefined), [k]: v };
    } else if (Array.isArray(kind)) out[name] = [...((out[name] as unknown[] | undefined) ?? []), decodeMessage(b, kind[0])];
    else if (typeof kind === 'object') out[name] = decodeMessage(b, kind);
  }
  return out;
}

function withoutZeroValues(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutZeroValues);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (v !== '' && v !== 0 && v !== false) out[k] = withoutZeroValues(v);
  return out;
}

/** Decodes a k8s protobuf body (magic + runtime.Unknown) into the object's JSON form. */
export function decodeKubeProtobuf(body: Buffer): Record<string, unknown> {
  if (body.length < 4 || !body.subarray(0, 4).equals(MAGIC)) {
    throw badRequest('the body of the request is not a Kubernetes protobuf message');
  }
  let apiVersion = '';
  let kind = '';
  let raw: Buffer = Buffer.alloc(0);
  try {
    forEachBytesField(body.subarray(4), (field, b) => {
      if (field === 1) {
        const tm = decodeMessage(b, { 1: ['apiVersion', 'string'], 2: ['kind', 'string'] });
        apiVersion = String(tm.apiVersion ?? '');
        kind = String(tm.kind ?? '');
      } else if (field === 2) raw = b;
    });
  } catch (err) {
    throw badRequest(`failed to decode protobuf: ${(err as Error).message}`);
  }
  const schema = KINDS[kind];
  if (!schema) throw badRequest(`protobuf is not supported for ${kind || 'this kind'} by this server; send application/json`);
  try {
    const decoded = decodeMessage(raw, schema);
    // Go writes a non-pointer field even when it is empty; JSON's omitempty leaves it out, and
    // the server's defaulting treats both alike. A Service's spec is all such fields.
    if (kind === 'Service' && decoded.spec) decoded.spec = withoutZeroValues(decoded.spec);
    return { apiVersion, kind, ...decoded };
  } catch (err) {
    throw badRequest(`failed to decode protobuf ${kind}: ${(err as Error).message}`);
  }
}

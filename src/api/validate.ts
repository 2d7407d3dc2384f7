// Two layers of validation, both offline and pure:
//  1. the schema, exactly as the API server applies it from the CRD (types, enums, ranges,
//     patterns), plus the unknown-field check kubectl's strict field validation makes;
//  2. semantic rules the schema cannot express (references, uniqueness, VRRP constraints).
// Every problem names the field path, in the form kubectl prints: spec.frontends[0].port.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { Ajv, type ErrorObject } from 'ajv';
import {
  API_VERSION, KIND, balanceAlgorithmsWithParam, httpOnlyBalanceAlgorithms, patterns, rootSchema,
  type JSONSchemaProps,
} from './schema.ts';
import { backendModes, effectiveAdvertInterval, ipv4Number, ipv4String } from './derived.ts';
import { withDefaults } from './defaults.ts';
import type { HALoadBalancer, HALoadBalancerInput, SecretData } from './types.ts';

export interface Problem {
  /** Field path, such as spec.frontends[0].port; empty for the object as a whole. */
  path: string;
  message: string;
}

export type SecretLookup = (name: string) => SecretData | undefined;

// ---------------------------------------------------------------- schema layer

const objectMetaFields = [
  'name', 'generateName', 'namespace', 'labels', 'annotations', 'uid', 'resourceVersion', 'generation',
  'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'finalizers', 'ownerReferences',
  'managedFields', 'selfLink',
];

/** The CRD schema, closed against unknown fields as kubectl's strict field validation is. */
function strictSchema(schema: JSONSchemaProps, atMetadata = false): Record<string, unknown> {
  const out: Record<string, unknown> = { ...schema };
  if (schema.properties) {
    out.properties = Object.fromEntries(Object.entries(schema.properties).map(([k, v]) => [k, strictSchema(v, k === 'metadata' && !atMetadata && schema === rootSchema)]));
    if (!atMetadata) out.additionalProperties = false;
  }
  if (schema.items) out.items = strictSchema(schema.items);
  if (atMetadata) {
    const props = out.properties as Record<string, unknown>;
    props.namespace = { type: 'string', pattern: patterns.dns1123Label, maxLength: 63 };
    props.labels = { type: 'object', additionalProperties: { type: 'string' } };
    props.annotations = { type: 'object', additionalProperties: { type: 'string' } };
    out.propertyNames = { enum: objectMetaFields };
  }
  return out;
}

const ajv = new Ajv({
  allErrors: true,
  useDefaults: false, // defaults come from withDefaults(), the one place the operator uses too
  verbose: true, // errors carry the offending value, which messages quote
  strict: true,
  // Formats are checked by the API server only on status, which users do not write.
  formats: { 'date-time': true, int64: true },
});
ajv.addVocabulary(['x-kubernetes-list-type', 'x-kubernetes-list-map-keys']);
const validateRoot = ajv.compile(strictSchema(rootSchema));

const patternHelp = new Map<string, string>([
  // Also the pattern of DigitalOcean slugs, which is the same expression.
  [patterns.dns1123Label, 'must consist of lowercase letters, digits and "-", starting and ending with a letter or digit (a DNS-1123 label)'],
  [patterns.dns1123Subdomain, 'must be a DNS-1123 subdomain: lowercase letters, digits, "-" and "."'],
  [patterns.secretKey, 'must consist of letters, digits, "-", "_" and "."'],
  [patterns.ipv4, 'must be an IPv4 address'],
  [patterns.ipv4OrEmpty, 'must be an IPv4 address, or empty'],
  [patterns.cidr, 'must be an IPv4 CIDR such as 10.0.0.0/8'],
  [patterns.hostOrIPv4, 'must be an IPv4 address or a DNS name'],
  [patterns.pathPrefix, 'must start with "/" and be visible ASCII (no spaces, control or invisible characters), without braces, "#", quotes or backslashes'],
  [patterns.region, 'must be a DigitalOcean region slug such as nyc3'],
  [patterns.sshKey, 'must be a DigitalOcean SSH key id or an MD5 fingerprint (aa:bb:...:ff)'],
  [patterns.doTag, 'must be a DigitalOcean tag: letters, digits, ":", "-" and "_"'],
  [patterns.doTagOrEmpty, 'must be a DigitalOcean tag (letters, digits, ":", "-" and "_"), or empty'],
  [patterns.uuidOrEmpty, 'must be a VPC UUID, or empty'],
  [patterns.balanceParam, 'must consist of letters, digits, "_", "." and "-"'],
]);

const identifier = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Joins a field path the way kubectl prints it: a.b[0].c, quoting keys that are not plain. */
export function joinPath(parts: readonly (string | number)[]): string {
  let out = '';
  for (const part of parts) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (identifier.test(part)) out += out ? `.${part}` : part;
    else out += `[${JSON.stringify(part)}]`;
  }
  return out;
}

function pointerToParts(pointer: string): (string | number)[] {
  if (!pointer) return [];
  return pointer.slice(1).split('/').map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'))
    .map((s) => (/^(0|[1-9][0-9]*)$/.test(s) ? Number(s) : s));
}

/** A short, escaped rendering of a value for messages: control characters stay visible. */
export function describeValue(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function problemFromAjv(error: ErrorObject): Problem {
  const parts = pointerToParts(error.instancePath);
  const got = `got ${describeValue(error.data)}`;
  const p = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return { path: joinPath([...parts, String(p.missingProperty)]), message: 'required field is missing' };
    case 'additionalProperties':
      return { path: joinPath([...parts, String(p.additionalProperty)]), message: 'unknown field' };
    case 'propertyNames':
      return { path: joinPath([...parts, String(p.propertyName)]), message: 'unknown field' };
    case 'type':
      return { path: joinPath(parts), message: `must be ${article(String(p.type))}, ${got}` };
    case 'enum':
      return { path: joinPath(parts), message: `must be one of ${(p.allowedValues as unknown[]).join(', ')}; ${got}` };
    case 'pattern':
      return { path: joinPath(parts), message: `${patternHelp.get(String(p.pattern)) ?? `must match ${String(p.pattern)}`}; ${got}` };
    case 'minimum': case 'maximum':
      return { path: joinPath(parts), message: `must be ${p.comparison} ${p.limit}; ${got}` };
    case 'minLength':
      return { path: joinPath(parts), message: `must be at least ${p.limit} characters long` };
    case 'maxLength':
      return { path: joinPath(parts), message: `must be at most ${p.limit} characters long; got ${String(error.data).length}` };
    case 'minItems':
      return { path: joinPath(parts), message: `must have at least ${p.limit} item(s)` };
    case 'maxItems':
      return { path: joinPath(parts), message: `must have at most ${p.limit} items; got ${(error.data as unknown[]).length}` };
    default:
      return { path: joinPath(parts), message: error.message ?? error.keyword };
  }
}

function dedupe(problems: Problem[]): Problem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.path}\u0000${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * Checks an object against the CRD schema, then applies the API's defaults (withDefaults).
 * The input is not modified; the defaulted copy is returned when it is valid.
 */
export function validateSchema(input: unknown): { problems: Problem[]; object?: HALoadBalancer } {
  const copy = structuredClone(input);
  if (copy === null || typeof copy !== 'object' || Array.isArray(copy)) {
    return { problems: [{ path: '', message: `must be a mapping (a Kubernetes object), got ${describeValue(copy)}` }] };
  }
  const obj = copy as Record<string, unknown>;
  const problems: Problem[] = [];
  if (obj.apiVersion !== API_VERSION) problems.push({ path: 'apiVersion', message: `must be ${API_VERSION}; got ${describeValue(obj.apiVersion)}` });
  if (obj.kind !== KIND) problems.push({ path: 'kind', message: `must be ${KIND}; got ${describeValue(obj.kind)}` });
  const meta = obj.metadata as Record<string, unknown> | undefined;
  if (meta === undefined || meta === null || typeof meta !== 'object' || meta.name === undefined) {
    problems.push({ path: 'metadata.name', message: 'required field is missing' });
  }
  if (!validateRoot(obj)) problems.push(...(validateRoot.errors ?? []).map(problemFromAjv));
  if (problems.length) return { problems: dedupe(problems) };
  const valid = obj as unknown as HALoadBalancerInput;
  return { problems: [], object: { ...valid, spec: withDefaults(valid.spec) } };
}

// ---------------------------------------------------------------- semantic layer


function looksNumeric(address: string): boolean {
  return /^[0-9.]+$/.test(address);
}

function isIPv4(address: string): boolean {
  return new RegExp(patterns.ipv4).test(address);
}

/** The CIDR with its host bits cleared, or undefined when it has none set. */
function networkOf(cidr: string): string | undefined {
  const [ip = '', bits = '0'] = cidr.split('/');
  const prefix = Number(bits);
  const value = ipv4Number(ip) ?? 0;
  const size = 2 ** (32 - prefix);
  const network = value - (value % size);
  if (network === value) return undefined;
  return `${ipv4String(network)}/${prefix}`;
}

// Tags the operator uses to find its own droplets; a user tag of that shape could make the
// operator adopt or delete droplets it does not own.
const reservedTag = /^halb([-:_]|$)/i;

// keepalived reads auth_pass as one config token.
const vrrpPasswordPattern = /^[!-~]+$/;
const vrrpPasswordForbidden = /["'#!{}\\]/;

function checkUnique<T extends { name: string }>(items: readonly T[], base: string, problems: Problem[]): void {
  const seen = new Map<string, number>();
  items.forEach((item, i) => {
    const first = seen.get(item.name);
    if (first !== undefined) problems.push({ path: `${base}[${i}].name`, message: `duplicate name ${describeValue(item.name)}, also used by ${base}[${first}]` });
    else seen.set(item.name, i);
  });
}

function secretValue(secrets: SecretLookup | undefined, ref: { name: string; key: string }, path: string, problems: Problem[]): string | undefined {
  const secret = secrets?.(ref.name);
  if (!secret) return undefined;
  const value = secret.data[ref.key];
  if (value === undefined) {
    problems.push({ path: `${path}.key`, message: `Secret ${describeValue(ref.name)} has no key ${describeValue(ref.key)}` });
    return undefined;
  }
  if (value.trim() === '') problems.push({ path, message: `Secret ${describeValue(ref.name)} key ${describeValue(ref.key)} is empty` });
  return value;
}

function checkTLSSecret(secret: SecretData, path: string, problems: Problem[]): void {
  const cert = secret.data['tls.crt'];
  const key = secret.data['tls.key'];
  if (cert === undefined || key === undefined) {
    problems.push({ path, message: `Secret ${describeValue(secret.name)} needs the keys tls.crt and tls.key (a kubernetes.io/tls Secret)` });
    return;
  }
  try {
    const x509 = new X509Certificate(cert);
    const privateKey = createPrivateKey(key);
    if (!x509.checkPrivateKey(privateKey)) problems.push({ path, message: `Secret ${describeValue(secret.name)}: tls.key does not match the certificate in tls.crt` });
  } catch (err) {
    problems.push({ path, message: `Secret ${describeValue(secret.name)}: tls.crt/tls.key is not a PEM certificate and key (${(err as Error).message})` });
  }
}

/**
 * The rules the schema cannot express. The object must already have passed validateSchema
 * (defaults applied). Secrets are checked only when the lookup knows them: in a cluster they
 * may be created later, and the operator reports them missing then.
 */
export function validateSemantics(hlb: HALoadBalancer, secrets?: SecretLookup): Problem[] {
  const spec = hlb.spec;
  const problems: Problem[] = [];
  const backendNames = new Set(spec.backends.map((b) => b.name));

  checkUnique(spec.frontends, 'spec.frontends', problems);
  checkUnique(spec.backends, 'spec.backends', problems);

  const ports = new Map<number, string>();
  const claimPort = (port: number, path: string) => {
    const owner = ports.get(port);
    if (owner !== undefined) problems.push({ path, message: `port ${port} is already used by ${owner}` });
    else ports.set(port, path);
  };

  spec.frontends.forEach((fe, i) => {
    const base = `spec.frontends[${i}]`;
    claimPort(fe.port, `${base}.port`);
    if (fe.tls) {
      claimPort(fe.tls.port, `${base}.tls.port`);
      if (fe.protocol !== 'http') problems.push({ path: `${base}.tls`, message: 'TLS termination needs protocol http' });
      const secret = secrets?.(fe.tls.secretRef.name);
      if (secret) checkTLSSecret(secret, `${base}.tls.secretRef`, problems);
    }
    if (fe.routes?.length && fe.protocol !== 'http') problems.push({ path: `${base}.routes`, message: 'routes need protocol http' });
    if (!backendNames.has(fe.defaultBackend)) {
      problems.push({ path: `${base}.defaultBackend`, message: `backend ${describeValue(fe.defaultBackend)} is not defined in spec.backends` });
    }
    fe.routes?.forEach((route, j) => {
      if (!backendNames.has(route.backend)) {
        problems.push({ path: `${base}.routes[${j}].backend`, message: `backend ${describeValue(route.backend)} is not defined in spec.backends` });
      }
    });
  });

  const modes = backendModes(spec);
  spec.backends.forEach((be, i) => {
    const base = `spec.backends[${i}]`;
    const used = modes.get(be.name) ?? new Set();
    const tcpOnly = used.has('tcp') && !used.has('http');
    if (used.has('tcp') && used.has('http')) {
      problems.push({ path: base, message: `backend ${describeValue(be.name)} is used by both http and tcp frontends; HAProxy needs one mode per backend` });
    }
    const needsParam = (balanceAlgorithmsWithParam as readonly string[]).includes(be.balance);
    if (needsParam && !be.balanceParam) problems.push({ path: `${base}.balanceParam`, message: `required for balance ${be.balance}` });
    if (!needsParam && be.balanceParam) problems.push({ path: `${base}.balanceParam`, message: `balance ${be.balance} takes no parameter; only ${balanceAlgorithmsWithParam.join(', ')} do` });
    if (tcpOnly && (httpOnlyBalanceAlgorithms as readonly string[]).includes(be.balance)) {
      problems.push({ path: `${base}.balance`, message: `balance ${be.balance} needs an http backend, but only tcp frontends use this one` });
    }
    if (tcpOnly && be.stickySessions) problems.push({ path: `${base}.stickySessions`, message: 'cookie-based stickiness needs an http backend, but only tcp frontends use this one' });
    if (!be.servers?.length && !be.dropletTag) problems.push({ path: `${base}.servers`, message: 'a backend needs static servers, a dropletTag, or both' });
    if (be.restrictToLoadBalancers && !be.dropletTag) problems.push({ path: `${base}.restrictToLoadBalancers`, message: 'needs dropletTag: the firewall is kept on the tagged droplets' });
    if (be.dropletTag && reservedTag.test(be.dropletTag)) problems.push({ path: `${base}.dropletTag`, message: 'tags starting with "halb" are reserved for the operator\'s own droplets' });
    if (be.servers) checkUnique(be.servers, `${base}.servers`, problems);
    be.servers?.forEach((server, j) => {
      if (looksNumeric(server.address) && !isIPv4(server.address)) {
        problems.push({ path: `${base}.servers[${j}].address`, message: `not a valid IPv4 address; got ${describeValue(server.address)}` });
      }
    });
  });

  spec.droplets.tags.forEach((tag, i) => {
    if (reservedTag.test(tag)) problems.push({ path: `spec.droplets.tags[${i}]`, message: 'tags starting with "halb" are reserved for the operator' });
  });

  for (const field of ['sshSourceCIDRs', 'metricsSourceCIDRs'] as const) {
    spec.access[field].forEach((cidr, i) => {
      const network = networkOf(cidr);
      if (network) problems.push({ path: `spec.access.${field}[${i}]`, message: `${cidr} has host bits set; did you mean ${network}?` });
    });
  }

  const failover = spec.failover;
  const interval = effectiveAdvertInterval(spec);
  if (failover.authSecretRef) {
    if (!Number.isInteger(interval)) {
      problems.push({ path: 'spec.failover.advertIntervalSeconds', message: `PASS authentication (authSecretRef) needs VRRPv2, which takes whole seconds; got ${interval}` });
    }
    const password = secretValue(secrets, failover.authSecretRef, 'spec.failover.authSecretRef', problems);
    if (password !== undefined && password !== '') {
      const where = `the VRRP password in Secret ${describeValue(failover.authSecretRef.name)} key ${describeValue(failover.authSecretRef.key)}`;
      if (password.length > 8) problems.push({ path: 'spec.failover.authSecretRef', message: `${where} has ${password.length} characters; VRRP PASS authentication uses at most 8` });
      else if (!vrrpPasswordPattern.test(password) || vrrpPasswordForbidden.test(password)) {
        problems.push({ path: 'spec.failover.authSecretRef', message: `${where} must be printable ASCII without spaces, quotes, "#", "!", braces or backslashes` });
      }
    }
  } else if (Math.abs(Math.round(interval * 100) - interval * 100) > 1e-9) {
    problems.push({ path: 'spec.failover.advertIntervalSeconds', message: `VRRPv3 takes centiseconds; ${interval} is not a multiple of 0.01` });
  }

  secretValue(secrets, spec.credentials.tokenSecretRef, 'spec.credentials.tokenSecretRef', problems);
  if (spec.credentials.failoverTokenSecretRef) secretValue(secrets, spec.credentials.failoverTokenSecretRef, 'spec.credentials.failoverTokenSecretRef', problems);
  const sshKey = secretValue(secrets, spec.credentials.sshKeySecretRef, 'spec.credentials.sshKeySecretRef', problems);
  if (sshKey !== undefined && sshKey.trim() !== '' && !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(sshKey)) {
    problems.push({ path: 'spec.credentials.sshKeySecretRef', message: `Secret ${describeValue(spec.credentials.sshKeySecretRef.name)} key ${describeValue(spec.credentials.sshKeySecretRef.key)} is not a PEM or OpenSSH private key` });
  }
  return problems;
}

/** Both layers: the schema first, then, on a schema-valid object, the semantic rules. */
export function validateHALoadBalancer(input: unknown, secrets?: SecretLookup): { problems: Problem[]; object?: HALoadBalancer } {
  const schema = validateSchema(input);
  if (!schema.object) return schema;
  const problems = validateSemantics(schema.object, secrets);
  return problems.length ? { problems } : schema;
}

// Validation, offline and pure, in layers:
//  1. the schema, exactly as the API server applies it from the CRD (types, enums, ranges,
//     patterns), plus the unknown-field check kubectl's strict field validation makes;
//  2. the CRD's CEL rules (references to backends, unique ports, http-only fields, balanceParam,
//     PASS authentication's whole-second adverts), evaluated as the API server does;
//  3. semantic rules neither can express (uniqueness of names, modes, Secrets, CIDRs).
// Every problem names the field path, in the form kubectl prints: spec.frontends[0].port.
import { Ajv, type ErrorObject } from 'ajv';
import { API_VERSION, KIND, httpOnlyBalanceAlgorithms, patterns, rootSchema, type JSONSchemaProps } from './schema.ts';
import { CompiledRules } from './cel.ts';
import { NODE_PORTS, backendModes, effectiveAdvertInterval, ipv4Number, ipv4String } from './derived.ts';
import { withDefaults } from './defaults.ts';
import { apiTokenProblem, secretRaw, secretValue, tlsPairProblem, vrrpPasswordProblem } from './secrets.ts';
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
    out.properties = Object.fromEntries(Object.entries(schema.properties)
      .map(([k, v]) => [k, strictSchema(v, k === 'metadata' && !atMetadata && schema === rootSchema)]));
    if (!atMetadata) out.additionalProperties = false;
  }
  if (schema.items) out.items = strictSchema(schema.items);
  if (atMetadata) {
    const props = out.properties as Record<string, unknown>;
    // The shape of every ObjectMeta field, as the API server checks it: a numeric uid or a
    // string generation never reaches the code that reads them.
    const text = { type: 'string' };
    Object.assign(props, {
      namespace: { type: 'string', pattern: patterns.dns1123Label, maxLength: 63 },
      generateName: text, uid: text, resourceVersion: text, selfLink: text, creationTimestamp: text, deletionTimestamp: text,
      generation: { type: 'integer', minimum: 0 },
      deletionGracePeriodSeconds: { type: 'integer', minimum: 0 },
      labels: { type: 'object', additionalProperties: { type: 'string' } },
      annotations: { type: 'object', additionalProperties: { type: 'string' } },
      finalizers: { type: 'array', items: text },
      ownerReferences: { type: 'array', items: { type: 'object' } },
      managedFields: { type: 'array', items: { type: 'object' } },
    });
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
ajv.addVocabulary(['x-kubernetes-list-type', 'x-kubernetes-list-map-keys', 'x-kubernetes-validations']);
const validateRoot = ajv.compile(strictSchema(rootSchema));

const patternHelp = new Map<string, string>([
  // Also the pattern of DigitalOcean slugs, which is the same expression.
  [patterns.dns1123Label,
    'must consist of lowercase letters, digits and "-", starting and ending with a letter or digit (a DNS-1123 label)'],
  [patterns.dns1123Subdomain, 'must be a DNS-1123 subdomain: lowercase letters, digits, "-" and "."'],
  [patterns.secretKey, 'must consist of letters, digits, "-", "_" and "."'],
  [patterns.ipv4, 'must be an IPv4 address'],
  [patterns.ipv4OrEmpty, 'must be an IPv4 address, or empty'],
  [patterns.cidr, 'must be an IPv4 CIDR such as 10.0.0.0/8'],
  [patterns.hostOrIPv4, 'must be an IPv4 address or a DNS name'],
  [patterns.pathPrefix,
    'must start with "/" and be visible ASCII (no spaces, control or invisible characters), without braces, "#", quotes or backslashes'],
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

const DESCRIBE_LIMIT = 60;

/** JSON-like text of a value, cut off once it passes `budget` characters: bounded work for any input. */
function preview(value: unknown, budget: number): string {
  if (typeof value === 'number') return String(value); // NaN and Infinity as such, where JSON would say null
  if (typeof value === 'string') return JSON.stringify(value.length > budget ? value.slice(0, budget) : value);
  if (value === null || typeof value === 'boolean') return String(value);
  if (typeof value !== 'object') return typeof value === 'bigint' ? String(value) : `<${typeof value}>`;
  const array = Array.isArray(value);
  const parts: string[] = [];
  let used = 2;
  for (const key of Object.keys(value)) {
    if (used > budget) {
      parts.push('...');
      break;
    }
    const item = (value as Record<string, unknown>)[key];
    const part = array ? preview(item, budget - used) : `${JSON.stringify(key)}:${preview(item, budget - used)}`;
    parts.push(part);
    used += part.length + 1;
  }
  return array ? `[${parts.join(',')}]` : `{${parts.join(',')}}`;
}

/**
 * A short rendering of a value for messages: NaN and Infinity as such, strings quoted with
 * control characters escaped, large values cut off (the work is bounded however large they are).
 */
export function describeValue(value: unknown): string {
  const text = preview(value, DESCRIBE_LIMIT);
  return text.length > DESCRIBE_LIMIT ? `${text.slice(0, DESCRIBE_LIMIT - 3)}...` : text;
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function problemFromAjv(error: ErrorObject): Problem {
  const parts = pointerToParts(error.instancePath);
  const got = () => `got ${describeValue(error.data)}`;
  const p = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return { path: joinPath([...parts, String(p.missingProperty)]), message: 'required field is missing' };
    case 'additionalProperties':
      return { path: joinPath([...parts, String(p.additionalProperty)]), message: 'unknown field' };
    case 'propertyNames':
      return { path: joinPath([...parts, String(p.propertyName)]), message: 'unknown field' };
    case 'type':
      return { path: joinPath(parts), message: `must be ${article(String(p.type))}, ${got()}` };
    case 'enum':
      return { path: joinPath(parts), message: `must be one of ${(p.allowedValues as unknown[]).join(', ')}; ${got()}` };
    case 'pattern':
      return { path: joinPath(parts), message: `${patternHelp.get(String(p.pattern)) ?? `must match ${String(p.pattern)}`}; ${got()}` };
    case 'minimum': case 'maximum':
      return { path: joinPath(parts), message: `must be ${p.comparison} ${p.limit}; ${got()}` };
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

/** More problems than this in one object are summed up in one line: nobody reads 100,000. */
const MAX_PROBLEMS = 100;

function dedupe(problems: Problem[]): Problem[] {
  const seen = new Set<string>();
  const unique = problems.filter((p) => {
    const key = `${p.path}\u0000${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  if (unique.length <= MAX_PROBLEMS) return unique;
  return [...unique.slice(0, MAX_PROBLEMS), { path: '', message: `and ${unique.length - MAX_PROBLEMS} more problems` }];
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
  if (obj.apiVersion !== API_VERSION) {
    problems.push({ path: 'apiVersion', message: `must be ${API_VERSION}; got ${describeValue(obj.apiVersion)}` });
  }
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

function checkUnique<T extends { name: string }>(items: readonly T[], base: string, problems: Problem[]): void {
  const seen = new Map<string, number>();
  items.forEach((item, i) => {
    const first = seen.get(item.name);
    if (first !== undefined) {
      problems.push({ path: `${base}[${i}].name`, message: `duplicate name ${describeValue(item.name)}, also used by ${base}[${first}]` });
    }
    else seen.set(item.name, i);
  });
}

/** A referenced Secret value as the hosts get it (secretValue), or undefined when it is not known. */
function referencedValue(
  secrets: SecretLookup | undefined, ref: { name: string; key: string }, path: string, problems: Problem[],
): string | undefined {
  const secret = secrets?.(ref.name);
  if (!secret) return undefined;
  const value = secretValue(secret, ref.key);
  if (value === undefined) {
    problems.push({ path: `${path}.key`, message: `Secret ${describeValue(ref.name)} has no key ${describeValue(ref.key)}` });
    return undefined;
  }
  if (value.trim() === '') problems.push({ path, message: `Secret ${describeValue(ref.name)} key ${describeValue(ref.key)} is empty` });
  return value;
}

/** The same check the renderer makes before it writes the PEM file (tlsPairProblem). */
function checkTLSSecret(secret: SecretData, path: string, problems: Problem[]): void {
  const cert = secretRaw(secret, 'tls.crt');
  const key = secretRaw(secret, 'tls.key');
  if (cert === undefined || key === undefined) {
    problems.push({
      path, message: `Secret ${describeValue(secret.name)} needs the keys tls.crt and tls.key (a kubernetes.io/tls Secret)`,
    });
    return;
  }
  const problem = tlsPairProblem(cert, key);
  if (problem) problems.push({ path, message: `Secret ${describeValue(secret.name)}: ${problem}` });
}

// The CRD's CEL rules (x-kubernetes-validations), compiled on first use (about 0.3 s); the
// API server and the emulator evaluate the same ones at admission.
let crdRules: CompiledRules | undefined;

/** The CRD's CEL rules on an object, as problems. Transition rules (oldSelf) need an update, so they do not run here. */
export function validateRules(object: unknown): Problem[] {
  crdRules ??= new CompiledRules(rootSchema);
  return crdRules.evaluate(object).map((v) => ({ path: v.field, message: v.detail }));
}

/** Frontend ports the nodes use themselves: a frontend there would widen who reaches sshd or the metrics. */
const nodePortNames = new Map<number, string>([
  [NODE_PORTS.ssh, 'sshd'], [NODE_PORTS.metrics, 'HAProxy\'s metrics'], [NODE_PORTS.health, 'HAProxy\'s health check'],
]);

/**
 * The CRD's CEL rules, then the rules neither the schema nor CEL express. The object must
 * already have passed validateSchema (defaults applied). Secrets are checked only when the lookup knows them: in a cluster they
 * may be created later, and the operator reports them missing then.
 */
export function validateSemantics(hlb: HALoadBalancer, secrets?: SecretLookup): Problem[] {
  const spec = hlb.spec;
  const problems: Problem[] = validateRules(hlb);

  checkUnique(spec.frontends, 'spec.frontends', problems);
  checkUnique(spec.backends, 'spec.backends', problems);

  // Ports repeated among the frontends are a CEL rule; the nodes' own ports are not in the CRD.
  const notNodePort = (port: number, path: string) => {
    const nodeUse = nodePortNames.get(port);
    if (nodeUse) problems.push({ path, message: `port ${port} is used on the nodes by ${nodeUse}; choose another port` });
  };
  spec.frontends.forEach((fe, i) => {
    notNodePort(fe.port, `spec.frontends[${i}].port`);
    if (fe.tls) notNodePort(fe.tls.port, `spec.frontends[${i}].tls.port`);
    const secret = fe.tls && secrets?.(fe.tls.secretRef.name);
    if (secret) checkTLSSecret(secret, `spec.frontends[${i}].tls.secretRef`, problems);
  });

  const modes = backendModes(spec);
  spec.backends.forEach((be, i) => {
    const base = `spec.backends[${i}]`;
    const used = modes.get(be.name) ?? new Set();
    const tcpOnly = used.has('tcp') && !used.has('http');
    if (used.has('tcp') && used.has('http')) {
      problems.push({
        path: base, message: `backend ${describeValue(be.name)} is used by both http and tcp frontends; HAProxy needs one mode per backend`,
      });
    }
    if (tcpOnly && (httpOnlyBalanceAlgorithms as readonly string[]).includes(be.balance)) {
      problems.push({
        path: `${base}.balance`, message: `balance ${be.balance} needs an http backend, but only tcp frontends use this one`,
      });
    }
    if (tcpOnly && be.stickySessions) {
      problems.push({
        path: `${base}.stickySessions`, message: 'cookie-based stickiness needs an http backend, but only tcp frontends use this one',
      });
    }
    if (!be.servers?.length && !be.dropletTag) {
      problems.push({ path: `${base}.servers`, message: 'a backend needs static servers, a dropletTag, or both' });
    }
    if (be.restrictToLoadBalancers && !be.dropletTag) {
      problems.push({ path: `${base}.restrictToLoadBalancers`, message: 'needs dropletTag: the firewall is kept on the tagged droplets' });
    }
    if (be.dropletTag && reservedTag.test(be.dropletTag)) {
      problems.push({ path: `${base}.dropletTag`, message: 'tags starting with "halb" are reserved for the operator\'s own droplets' });
    }
    if (be.servers) checkUnique(be.servers, `${base}.servers`, problems);
    be.servers?.forEach((server, j) => {
      if (looksNumeric(server.address) && !isIPv4(server.address)) {
        problems.push({ path: `${base}.servers[${j}].address`, message: `not a valid IPv4 address; got ${describeValue(server.address)}` });
      }
    });
  });

  // A load balancer carrying a backend's tag would balance over itself, and a backend Cloud
  // Firewall on that tag would land on the load balancers (cutting VRRP, frontends and SSH).
  const backendTags = new Map(spec.backends.flatMap((be, i) => (be.dropletTag ? [[be.dropletTag.toLowerCase(), i] as const] : [])));
  spec.droplets.tags.forEach((tag, i) => {
    if (reservedTag.test(tag)) {
      problems.push({ path: `spec.droplets.tags[${i}]`, message: 'tags starting with "halb" are reserved for the operator' });
    }
    const backend = backendTags.get(tag.toLowerCase());
    if (backend !== undefined) {
      problems.push({
        path: `spec.droplets.tags[${i}]`,
        message: `${describeValue(tag)} is spec.backends[${backend}].dropletTag: the load balancers would become their own backends`,
      });
    }
  });

  for (const field of ['sshSourceCIDRs', 'metricsSourceCIDRs', 'frontendSourceCIDRs'] as const) {
    spec.access[field].forEach((cidr, i) => {
      const network = networkOf(cidr);
      if (network) problems.push({ path: `spec.access.${field}[${i}]`, message: `${cidr} has host bits set; did you mean ${network}?` });
    });
  }

  const failover = spec.failover;
  const interval = effectiveAdvertInterval(spec);
  if (failover.authSecretRef) {
    const password = referencedValue(secrets, failover.authSecretRef, 'spec.failover.authSecretRef', problems);
    const passwordProblem = password?.trim() ? vrrpPasswordProblem(password) : undefined;
    if (passwordProblem) {
      const where = `the VRRP password in Secret ${describeValue(failover.authSecretRef.name)} ` +
        `key ${describeValue(failover.authSecretRef.key)}`;
      problems.push({ path: 'spec.failover.authSecretRef', message: `${where} ${passwordProblem}` });
    }
  } else if (Math.abs(Math.round(interval * 100) - interval * 100) > 1e-9) {
    problems.push({
      path: 'spec.failover.advertIntervalSeconds', message: `VRRPv3 takes centiseconds; ${interval} is not a multiple of 0.01`,
    });
  }

  // Both tokens as the renderer's guard takes them: the failover token goes into a file on the
  // hosts and a curl config, so nothing but the token alphabet may reach it.
  for (const field of ['tokenSecretRef', 'failoverTokenSecretRef'] as const) {
    const ref = spec.credentials[field];
    if (!ref) continue;
    const token = referencedValue(secrets, ref, `spec.credentials.${field}`, problems);
    const tokenProblem = token?.trim() ? apiTokenProblem(token) : undefined;
    if (tokenProblem) {
      const message = `Secret ${describeValue(ref.name)} key ${describeValue(ref.key)} ${tokenProblem}`;
      problems.push({ path: `spec.credentials.${field}`, message });
    }
  }
  const sshKey = referencedValue(secrets, spec.credentials.sshKeySecretRef, 'spec.credentials.sshKeySecretRef', problems);
  if (sshKey !== undefined && sshKey.trim() !== '' && !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(sshKey)) {
    const ref = spec.credentials.sshKeySecretRef;
    problems.push({
      path: 'spec.credentials.sshKeySecretRef',
      message: `Secret ${describeValue(ref.name)} key ${describeValue(ref.key)} is not a PEM or OpenSSH private key`,
    });
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

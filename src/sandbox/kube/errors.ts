// metav1.Status bodies with the messages the real kube-apiserver sends, so that kubectl and
// client-node render our errors exactly as they render a real cluster's.

export interface StatusCause { reason: string; message: string; field?: string }

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export interface StatusBody {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure' | 'Success';
  message?: string;
  reason?: string;
  details?: StatusDetails;
  code: number;
}

export class ApiError extends Error {
  readonly code: number;
  readonly reason: string;
  readonly details: StatusDetails | undefined;

  constructor(code: number, reason: string, message: string, details?: StatusDetails) {
    super(message);
    this.code = code;
    this.reason = reason;
    this.details = details;
  }

  toStatus(): StatusBody {
    const body: StatusBody = {
      kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure',
      message: this.message, reason: this.reason, code: this.code,
    };
    // StatusDetails' strings are omitempty: a core resource's error names no group.
    if (this.details) {
      body.details = Object.fromEntries(Object.entries(this.details).filter(([, v]) => v !== '' && v !== undefined)) as StatusDetails;
    }
    return body;
  }
}

/** What an error message names: "haloadbalancers.halb.dev" or "secrets" for the core group. */
export interface ResourceRef { group: string; plural: string; kind: string }

export function qualifiedResource(r: ResourceRef): string {
  return r.group ? `${r.plural}.${r.group}` : r.plural;
}

export function notFound(r: ResourceRef, name: string): ApiError {
  return new ApiError(404, 'NotFound', `${qualifiedResource(r)} "${name}" not found`,
    { name, group: r.group, kind: r.plural });
}

export function namespaceNotFound(ns: string): ApiError {
  return new ApiError(404, 'NotFound', `namespaces "${ns}" not found`, { name: ns, kind: 'namespaces' });
}

export function pathNotFound(): ApiError {
  return new ApiError(404, 'NotFound', 'the server could not find the requested resource', {});
}

export function alreadyExists(r: ResourceRef, name: string): ApiError {
  return new ApiError(409, 'AlreadyExists', `${qualifiedResource(r)} "${name}" already exists`,
    { name, group: r.group, kind: r.plural });
}

export function conflict(r: ResourceRef, name: string): ApiError {
  return new ApiError(409, 'Conflict',
    `Operation cannot be fulfilled on ${qualifiedResource(r)} "${name}": the object has been modified; ` +
    'please apply your changes to the latest version and try again',
    { name, group: r.group, kind: r.plural });
}

export function badRequest(message: string): ApiError {
  return new ApiError(400, 'BadRequest', message);
}

export function methodNotAllowed(): ApiError {
  return new ApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource', {});
}

export function unsupportedMediaType(accepted: string[]): ApiError {
  return new ApiError(415, 'UnsupportedMediaType',
    `the body of the request was in an unknown format - accepted media types include: ${accepted.join(', ')}`);
}

export function expired(message: string): ApiError {
  return new ApiError(410, 'Expired', message);
}

/** 422 Invalid; details.kind is the Kind here, unlike NotFound. */
export function invalid(r: ResourceRef, name: string, causes: StatusCause[], kindForMessage?: string): ApiError {
  const parts = causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message));
  const joined = parts.length === 1 ? parts[0] : `[${parts.join(', ')}]`;
  const what = kindForMessage ?? (r.group ? `${r.kind}.${r.group}` : r.kind);
  return new ApiError(422, 'Invalid', `${what} "${name}" is invalid: ${joined}`,
    { name, group: r.group, kind: r.kind, causes });
}

/** Go's %q: strconv.Quote, as the real server quotes a bad string value. */
export function goQuote(text: string): string {
  const printable = /[\p{L}\p{M}\p{N}\p{P}\p{S} ]/u;
  const named: Record<string, string> = {
    '\x07': '\\a', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\v': '\\v', '"': '\\"', '\\': '\\\\',
  };
  let out = '"';
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    if (named[ch]) out += named[ch];
    else if (printable.test(ch)) out += ch;
    else if (code < 0x80) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else if (code < 0x10000) out += `\\u${code.toString(16).padStart(4, '0')}`;
    else out += `\\U${code.toString(16).padStart(8, '0')}`;
  }
  return `${out}"`;
}

/** Go's %#v of a decoded JSON value (map[string]interface {}, []interface {}, int64, float64, ...). */
function goSyntax(v: unknown): string {
  if (v === null || v === undefined) return 'interface {}(nil)';
  if (typeof v === 'string') return goQuote(v);
  if (Array.isArray(v)) return `[]interface {}{${v.map(goSyntax).join(', ')}}`;
  if (typeof v === 'object') {
    const entries = Object.keys(v).sort().map((k) => `${goQuote(k)}:${goSyntax((v as Record<string, unknown>)[k])}`);
    return `map[string]interface {}{${entries.join(', ')}}`;
  }
  return String(v);
}

/**
 * A bad value as the real server prints it in "Invalid value: X" (field.Error's ErrorBody):
 * numbers and booleans plainly, strings with Go's %q, anything else with Go's %#v, and a
 * missing value as the quoted string "null".
 */
export function goValue(v: unknown): string {
  if (v === null || v === undefined) return goQuote('null');
  if (typeof v === 'string') return goQuote(v);
  if (typeof v === 'object') return goSyntax(v);
  return String(v);
}

export function cause(reason: string, field: string, message: string): StatusCause {
  return { reason, message, field };
}

export const causes = {
  required: (field: string): StatusCause => cause('FieldValueRequired', field, 'Required value'),
  invalid: (field: string, value: unknown, detail: string): StatusCause =>
    cause('FieldValueInvalid', field, `Invalid value: ${goValue(value)}: ${detail}`),
  forbidden: (field: string, detail: string): StatusCause => cause('FieldValueForbidden', field, `Forbidden: ${detail}`),
  notSupported: (field: string, value: unknown, allowed: unknown[]): StatusCause =>
    cause('FieldValueNotSupported', field,
      `Unsupported value: ${goValue(value)}: supported values: ${allowed.map((a) => goValue(a)).join(', ')}`),
  duplicate: (field: string, value: unknown): StatusCause => cause('FieldValueDuplicate', field, `Duplicate value: ${goValue(value)}`),
  typeInvalid: (field: string, value: unknown, detail: string): StatusCause =>
    cause('FieldValueTypeInvalid', field, `Invalid value: ${goValue(value)}: ${detail}`),
};

// Guards at the render boundary. They do not trust the schema: every value that reaches a
// config file or a script is checked here against the narrow shape its position allows, and
// refused with the field's name otherwise. Nothing is escaped; what cannot be written verbatim
// is not written at all.
import { patterns } from '../api/schema.ts';
import { apiTokenProblem, vrrpPasswordProblem } from '../api/secrets.ts';
import { RenderError } from './errors.ts';

// The schema's own patterns, so a guard and the validation can never disagree.
const ipv4Re = new RegExp(patterns.ipv4);
const dnsLabelRe = new RegExp(patterns.dns1123Label);
const hostnameRe = new RegExp(patterns.hostOrIPv4);
// A URL path prefix: the schema's own pattern (visible ASCII without braces, '#', quotes or
// backslashes), so the two can never disagree.
const pathPrefixRe = new RegExp(patterns.pathPrefix);
// An absolute file path without anything a shell or a config parser would interpret.
const filePathRe = /^(\/[A-Za-z0-9._-]+)+$/;
const interfaceRe = /^[A-Za-z0-9_.-]{1,15}$/;
const balanceParamRe = /^[A-Za-z0-9_.-]+$/;
const urlRe = /^https?:\/\/[A-Za-z0-9.-]+(:[0-9]{1,5})?(\/[A-Za-z0-9._~-]+)*$/;

export function refuse(field: string, message: string): never {
  throw new RenderError(field, message);
}

function describe(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

export function ipv4(field: string, value: unknown): string {
  if (typeof value !== 'string' || !ipv4Re.test(value)) refuse(field, `must be an IPv4 address, got ${describe(value)}`);
  return value;
}

export function dnsLabel(field: string, value: unknown): string {
  if (typeof value !== 'string' || value.length > 63 || !dnsLabelRe.test(value)) {
    refuse(field, `must be a DNS-1123 label (lower-case letters, digits and '-'), got ${describe(value)}`);
  }
  return value;
}

/** An IPv4 address or a DNS name. */
export function host(field: string, value: unknown): string {
  if (typeof value !== 'string' || value.length > 253 || !hostnameRe.test(value)) {
    refuse(field, `must be an IPv4 address or a DNS name, got ${describe(value)}`);
  }
  return value;
}

export function isIPv4(value: string): boolean {
  return ipv4Re.test(value);
}

/** A droplet or server name as HAProxy accepts it: a hostname. */
export function serverName(field: string, value: unknown): string {
  if (typeof value !== 'string' || value.length > 253 || !hostnameRe.test(value)) {
    refuse(field, `must be a name of letters, digits, '-' and '.', got ${describe(value)}`);
  }
  return value;
}

export function pathPrefix(field: string, value: unknown): string {
  if (typeof value !== 'string' || value.length > 1024 || !pathPrefixRe.test(value)) {
    refuse(field, `must start with '/' and be visible ASCII without braces, '#', quotes or backslashes, got ${describe(value)}`);
  }
  return value;
}

export function filePath(field: string, value: unknown): string {
  if (typeof value !== 'string' || !filePathRe.test(value) || value.split('/').some((part) => part === '..' || part === '.')) {
    refuse(field, `must be an absolute path of letters, digits, '.', '_', '-' and '/', got ${describe(value)}`);
  }
  return value;
}

export function interfaceName(field: string, value: unknown): string {
  if (typeof value !== 'string' || !interfaceRe.test(value)) refuse(field, `must be a network interface name, got ${describe(value)}`);
  return value;
}

export function port(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 65535) {
    refuse(field, `must be a port number 1..65535, got ${describe(value)}`);
  }
  return value;
}

export function integer(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    refuse(field, `must be an integer ${min}..${max}, got ${describe(value)}`);
  }
  return value;
}

export function balanceParam(field: string, value: unknown): string {
  if (typeof value !== 'string' || value.length > 64 || !balanceParamRe.test(value)) {
    refuse(field, `must be letters, digits, '_', '.' and '-', got ${describe(value)}`);
  }
  return value;
}

export function httpURL(field: string, value: unknown): string {
  if (typeof value !== 'string' || !urlRe.test(value)) {
    refuse(field, `must be an http(s) URL without query, trailing slash or special characters, got ${describe(value)}`);
  }
  return value;
}

/** The failover token: written to a file, and read by the script into a curl config on stdin. */
export function apiToken(field: string, value: unknown): string {
  const problem = typeof value === 'string' ? apiTokenProblem(value) : 'must be a string';
  if (problem) refuse(field, problem);
  return value as string;
}

/** The VRRP password: validation's own check (vrrpPasswordProblem), never quoting the value. */
export function authPass(field: string, value: unknown): string {
  const problem = typeof value === 'string' ? vrrpPasswordProblem(value) : 'must be a string';
  if (problem) refuse(field, `${problem}; the value is not shown`);
  return value as string;
}

export function oneOf<T extends string>(field: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    refuse(field, `must be one of ${allowed.join(', ')}, got ${describe(value)}`);
  }
  return value as T;
}

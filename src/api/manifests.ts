// Reads multi-document YAML manifests as `kubectl apply -f` sees them, and turns every kind of
// malformed input into a problem that names the file (and line) instead of a stack trace.
import { readFileSync, statSync } from 'node:fs';
import { unknownKindProblem } from './kinds.ts';
import { KIND } from './schema.ts';
import { DEFAULT_NAMESPACE, decodeStrictBase64, findSecret, sameNamespace } from './secrets.ts';
import { describeValue, validateHALoadBalancer, type Problem } from './validate.ts';
import { readYAMLDocuments } from './yaml.ts';
import type { HALoadBalancer, SecretData } from './types.ts';

/** Larger than any real manifest; the API server itself refuses requests over 3 MiB. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export interface FileProblem extends Problem {
  file: string;
  /** Kind/name of the object, or "document N" when it has no name. */
  object: string;
}

export interface LoadedObject {
  file: string;
  /** 1-based index of the document in its file. */
  document: number;
  line: number;
  value: unknown;
}

export interface LoadedManifests {
  objects: LoadedObject[];
  problems: FileProblem[];
}

function fileProblem(file: string, message: string, object = '', path = ''): FileProblem {
  return { file, object, path, message };
}

function readText(file: string): { text?: string; problem?: FileProblem } {
  let size: number;
  try {
    const stat = statSync(file);
    if (!stat.isFile()) return { problem: fileProblem(file, 'not a regular file') };
    size = stat.size;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { problem: fileProblem(file, code === 'ENOENT' ? 'no such file' : `cannot read: ${(err as Error).message}`) };
  }
  if (size > MAX_MANIFEST_BYTES) {
    const sizeMiB = (size / 1048576).toFixed(1);
    return { problem: fileProblem(file, `file is ${sizeMiB} MiB; manifests are limited to ${MAX_MANIFEST_BYTES / 1048576} MiB`) };
  }
  const bytes = readFileSync(file);
  if (bytes.includes(0)) return { problem: fileProblem(file, 'not a text file (it contains NUL bytes); expected YAML') };
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  if (text.includes('\uFFFD')) return { problem: fileProblem(file, 'not valid UTF-8; expected YAML') };
  return { text };
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function own(object: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(object, key) ? object[key] : undefined;
}

/** kubectl flattens `kind: List` (and any `*List` with items) one level; a List in a List it refuses. */
function isList(value: unknown): value is { kind: string; items: unknown } {
  if (!isMapping(value)) return false;
  const kind = own(value, 'kind');
  return typeof kind === 'string' && kind.endsWith('List') && Object.hasOwn(value, 'items');
}

/** Parses one file into its documents; `kind: List` documents are expanded as kubectl does. */
export function loadManifestFile(file: string): LoadedManifests {
  const { text, problem } = readText(file);
  if (problem || text === undefined) return { objects: [], problems: problem ? [problem] : [] };
  const { documents, problems: yamlProblems } = readYAMLDocuments(text);
  const problems = yamlProblems.map((p) => fileProblem(`${file}:${p.line}:${p.column}`, p.message, '', p.path));
  const objects: LoadedObject[] = [];
  for (const doc of documents) {
    const { value, index, line } = doc;
    if (value === null) continue; // an empty document, as between two `---`
    if (!isList(value)) {
      objects.push({ file, document: index, line, value });
      continue;
    }
    const where = `${own(value, 'kind') as string} (document ${index})`;
    if (!Array.isArray(value.items)) {
      problems.push(fileProblem(`${file}:${line}`, `must be a list of objects; got ${describeValue(value.items)}`, where, 'items'));
      continue;
    }
    value.items.forEach((item: unknown, i) => {
      const itemLine = doc.itemLines[i] ?? line;
      if (isList(item)) {
        const message = 'a List inside a List: kubectl does not flatten nested Lists';
        problems.push(fileProblem(`${file}:${itemLine}`, message, where, `items[${i}]`));
      }
      else objects.push({ file, document: index, line: itemLine, value: item });
    });
  }
  if (!objects.length && !problems.length) problems.push(fileProblem(file, 'file is empty: it holds no YAML documents'));
  return { objects, problems };
}

function metadataOf(value: Record<string, unknown>): Record<string, unknown> {
  const meta = own(value, 'metadata');
  return isMapping(meta) ? meta : {};
}

function objectLabel(o: LoadedObject): string {
  const v = isMapping(o.value) ? o.value : {};
  const kind = own(v, 'kind');
  const name = own(metadataOf(v), 'name');
  const kindLabel = typeof kind === 'string' ? kind : 'object';
  return typeof name === 'string' && name ? `${kindLabel}/${name}` : `${kindLabel} (document ${o.document})`;
}

const where = (o: LoadedObject) => `${o.file}:${o.line}`;

function stringMap(
  value: unknown, field: string, label: string, o: LoadedObject, problems: FileProblem[],
): [string, unknown][] | undefined {
  if (value === undefined || value === null) return [];
  if (!isMapping(value)) {
    const expected = field === 'data' ? 'base64 strings' : 'strings';
    problems.push(fileProblem(where(o), `must be a mapping of keys to ${expected}; got ${describeValue(value)}`, label, field));
    return undefined;
  }
  return Object.entries(value);
}

const secretKeyPattern = /^[-._a-zA-Z0-9]+$/;

function decodeSecret(o: LoadedObject, problems: FileProblem[]): SecretData | undefined {
  const value = o.value as Record<string, unknown>;
  const label = objectLabel(o);
  const meta = own(value, 'metadata');
  const name = isMapping(meta) ? own(meta, 'name') : undefined;
  const namespace = isMapping(meta) ? own(meta, 'namespace') : undefined;
  if (typeof name !== 'string' || name === '') {
    problems.push(fileProblem(where(o), 'required field is missing', label, 'metadata.name'));
    return undefined;
  }
  if (namespace !== undefined && typeof namespace !== 'string') {
    problems.push(fileProblem(where(o), `must be a string; got ${describeValue(namespace)}`, label, 'metadata.namespace'));
    return undefined;
  }
  const before = problems.length;
  const data: Record<string, string> = Object.create(null) as Record<string, string>;
  const encoded = stringMap(own(value, 'data'), 'data', label, o, problems);
  const plain = stringMap(own(value, 'stringData'), 'stringData', label, o, problems);
  for (const [field, entries] of [['data', encoded], ['stringData', plain]] as const) {
    for (const [key, entry] of entries ?? []) {
      const path = `${field}[${JSON.stringify(key)}]`;
      if (!secretKeyPattern.test(key) || key.length > 253) {
        problems.push(fileProblem(where(o), 'a Secret key must consist of letters, digits, "-", "_" and "."', label, path));
      } else if (typeof entry !== 'string') {
        problems.push(fileProblem(where(o), `must be a string; got ${describeValue(entry)}`, label, path));
      } else if (field === 'stringData') {
        data[key] = entry; // stringData wins over data, as the API server merges them
      } else {
        const bytes = decodeStrictBase64(entry);
        if (bytes) data[key] = bytes.toString('utf8');
        else {
          const message = 'must be base64 with padding, as the API server decodes it (the value is not shown)';
          problems.push(fileProblem(where(o), message, label, path));
        }
      }
    }
  }
  if (problems.length > before) return undefined;
  const type = own(value, 'type');
  return { name, ...(namespace ? { namespace } : {}), ...(typeof type === 'string' ? { type } : {}), data };
}

export interface ValidatedManifests {
  loadBalancers: { file: string; object: HALoadBalancer }[];
  secrets: SecretData[];
  problems: FileProblem[];
}

/**
 * Refuses a second object of one kind, namespace and name in one file, naming both places: in
 * one apply only the last would count. (Across files, each is a separate apply.)
 */
function firstOfName(seen: Map<string, LoadedObject>, o: LoadedObject, namespace: unknown, name: string, problems: FileProblem[]): boolean {
  const ns = typeof namespace === 'string' && namespace ? namespace : DEFAULT_NAMESPACE;
  const key = `${o.file}\u0000${ns}/${name}`;
  const first = seen.get(key);
  if (first) {
    const message = `duplicate: ${objectLabel(o)} in namespace ${ns} is also defined at ${where(first)}; ` +
      'kubectl apply would keep only the last';
    problems.push(fileProblem(where(o), message, objectLabel(o), 'metadata.name'));
    return false;
  }
  seen.set(key, o);
  return true;
}

/**
 * Loads files and validates every HALoadBalancer in them (both layers), checking referenced
 * Secrets that the same files carry, in the object's own namespace. Objects of other kinds
 * kubectl knows are passed over, as in a kustomize directory; kinds it does not know fail.
 */
export function loadAndValidate(files: readonly string[]): ValidatedManifests {
  const loaded = files.map(loadManifestFile);
  const problems: FileProblem[] = loaded.flatMap((l) => l.problems);
  const objects = loaded.flatMap((l) => l.objects);
  const secrets: SecretData[] = [];
  const candidates: LoadedObject[] = [];
  const secretNames = new Map<string, LoadedObject>();
  const loadBalancerNames = new Map<string, LoadedObject>();

  for (const o of objects) {
    const v = o.value;
    if (!isMapping(v)) {
      const message = `not a Kubernetes object (a mapping with apiVersion and kind); got ${describeValue(v)}`;
      problems.push(fileProblem(where(o), message, `document ${o.document}`));
      continue;
    }
    const kind = own(v, 'kind');
    const unknown = unknownKindProblem(own(v, 'apiVersion'), kind);
    if (unknown) {
      problems.push(fileProblem(where(o), `${unknown.message}; got ${describeValue(own(v, unknown.path))}`, objectLabel(o), unknown.path));
      continue;
    }
    const name = own(metadataOf(v), 'name');
    const namespace = own(metadataOf(v), 'namespace');
    if (kind === 'Secret' && own(v, 'apiVersion') === 'v1') {
      const secret = decodeSecret(o, problems);
      if (secret && firstOfName(secretNames, o, namespace, secret.name, problems)) {
        // A later file's Secret of the same name replaces the earlier one, as a later apply would.
        const earlier = secrets.findIndex((s) => s.name === secret.name && sameNamespace(s.namespace, secret.namespace));
        if (earlier >= 0) secrets.splice(earlier, 1);
        secrets.push(secret);
      }
    } else if (kind === KIND) {
      if (typeof name !== 'string' || firstOfName(loadBalancerNames, o, namespace, name, problems)) candidates.push(o);
    }
  }
  if (!candidates.length && !problems.length) {
    problems.push(fileProblem(files.join(', '), `no ${KIND} found`));
  }

  const loadBalancers: ValidatedManifests['loadBalancers'] = [];
  for (const o of candidates) {
    const namespace = own(metadataOf(o.value as Record<string, unknown>), 'namespace');
    const lookup = (name: string) => findSecret(secrets, typeof namespace === 'string' ? namespace : undefined, name);
    const { problems: found, object } = validateHALoadBalancer(o.value, lookup);
    for (const p of found) problems.push({ ...p, file: where(o), object: objectLabel(o) });
    if (object) loadBalancers.push({ file: o.file, object });
  }
  return { loadBalancers, secrets, problems };
}

/**
 * Makes any value safe to print on a terminal line: control characters (C0, DEL, C1), line
 * and paragraph separators, and invisible format characters (bidi overrides, zero-width
 * spaces) become \u escapes, so no input can add a line, move the cursor or hide text.
 */
export function escapeForTerminal(text: string): string {
  return text.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, (c) => `\\u${c.codePointAt(0)!.toString(16).padStart(4, '0')}`);
}

/** One line per problem: file, object, field path, reason, every part escaped for the terminal. */
export function formatProblem(p: FileProblem): string {
  return [p.file, p.object, p.path, p.message].filter((s) => s !== '').map(escapeForTerminal).join(': ');
}

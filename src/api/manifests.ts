// Reads multi-document YAML manifests as `kubectl apply -f` sees them, and turns every kind of
// malformed input into a problem that names the file (and line) instead of a stack trace.
import { readFileSync, statSync } from 'node:fs';
import { LineCounter, parseAllDocuments } from 'yaml';
import { KIND } from './schema.ts';
import { describeValue, validateHALoadBalancer, type Problem } from './validate.ts';
import type { HALoadBalancer, SecretData } from './types.ts';

/** Larger than any real manifest; the API server itself refuses requests over 3 MiB. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** yaml's own default; more aliases than this is an expansion ("billion laughs") attack. */
const MAX_ALIAS_COUNT = 100;

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
    return { problem: fileProblem(file, `file is ${(size / 1048576).toFixed(1)} MiB; manifests are limited to ${MAX_MANIFEST_BYTES / 1048576} MiB`) };
  }
  const bytes = readFileSync(file);
  if (bytes.includes(0)) return { problem: fileProblem(file, 'not a text file (it contains NUL bytes); expected YAML') };
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  if (text.includes('\uFFFD')) return { problem: fileProblem(file, 'not valid UTF-8; expected YAML') };
  return { text };
}

/** Parses one file into its documents; `kind: List` documents are expanded as kubectl does. */
export function loadManifestFile(file: string): LoadedManifests {
  const { text, problem } = readText(file);
  if (problem || text === undefined) return { objects: [], problems: problem ? [problem] : [] };
  const lineCounter = new LineCounter();
  const documents = parseAllDocuments(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const objects: LoadedObject[] = [];
  const problems: FileProblem[] = [];
  const docs = Array.isArray(documents) ? documents : [];
  docs.forEach((doc, i) => {
    const where = `document ${i + 1}`;
    if (doc.errors.length) {
      for (const error of doc.errors) {
        const pos = lineCounter.linePos(error.pos[0]);
        problems.push(fileProblem(`${file}:${pos.line}:${pos.col}`, `YAML syntax error: ${error.message.split('\n')[0]}`));
      }
      return;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (err) {
      problems.push(fileProblem(file, `cannot load YAML: ${(err as Error).message}`, where));
      return;
    }
    if (value === null || value === undefined) return; // an empty document, as between two `---`
    const line = doc.contents ? lineCounter.linePos(doc.contents.range[0]).line : 1;
    const items = isList(value) ? (value as { items: unknown[] }).items : [value];
    for (const item of items) objects.push({ file, document: i + 1, line, value: item });
  });
  if (!objects.length && !problems.length) problems.push(fileProblem(file, 'file is empty: it holds no YAML documents'));
  return { objects, problems };
}

function isList(value: unknown): boolean {
  const v = value as Record<string, unknown>;
  return typeof v === 'object' && v !== null && typeof v.kind === 'string' && v.kind.endsWith('List') && Array.isArray(v.items);
}

function objectLabel(o: LoadedObject): string {
  const v = o.value as Record<string, unknown> | null;
  const kind = typeof v?.kind === 'string' ? v.kind : 'object';
  const name = (v?.metadata as Record<string, unknown> | undefined)?.name;
  return typeof name === 'string' && name ? `${kind}/${name}` : `${kind} (document ${o.document})`;
}

function decodeSecret(value: Record<string, unknown>, label: string, file: string, problems: FileProblem[]): SecretData | undefined {
  const meta = value.metadata as Record<string, unknown> | undefined;
  if (typeof meta?.name !== 'string') {
    problems.push(fileProblem(file, 'required field is missing', label, 'metadata.name'));
    return undefined;
  }
  const data: Record<string, string> = {};
  const raw = value.data ?? {};
  const stringData = value.stringData ?? {};
  if (typeof raw !== 'object' || Array.isArray(raw) || raw === null) {
    problems.push(fileProblem(file, 'must be a mapping of keys to base64 strings', label, 'data'));
    return undefined;
  }
  for (const [key, encoded] of Object.entries(raw as Record<string, unknown>)) {
    if (typeof encoded !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(encoded.replace(/\s/g, ''))) {
      problems.push(fileProblem(file, `must be base64; got ${describeValue(encoded)}`, label, `data.${key}`));
      continue;
    }
    data[key] = Buffer.from(encoded, 'base64').toString('utf8');
  }
  if (typeof stringData !== 'object' || Array.isArray(stringData) || stringData === null) {
    problems.push(fileProblem(file, 'must be a mapping of keys to strings', label, 'stringData'));
    return undefined;
  }
  for (const [key, plain] of Object.entries(stringData as Record<string, unknown>)) {
    if (typeof plain !== 'string') {
      problems.push(fileProblem(file, `must be a string; got ${describeValue(plain)}`, label, `stringData.${key}`));
      continue;
    }
    data[key] = plain;
  }
  const secret: SecretData = { name: meta.name, data };
  if (typeof meta.namespace === 'string') secret.namespace = meta.namespace;
  if (typeof value.type === 'string') secret.type = value.type;
  return secret;
}

export interface ValidatedManifests {
  loadBalancers: { file: string; object: HALoadBalancer }[];
  secrets: SecretData[];
  problems: FileProblem[];
}

/**
 * Loads files and validates every HALoadBalancer in them (both layers), checking referenced
 * Secrets that the same files carry. Other kinds are passed over, as in a kustomize directory.
 */
export function loadAndValidate(files: readonly string[]): ValidatedManifests {
  const loaded = files.map(loadManifestFile);
  const problems: FileProblem[] = loaded.flatMap((l) => l.problems);
  const objects = loaded.flatMap((l) => l.objects);
  const secrets: SecretData[] = [];
  const candidates: LoadedObject[] = [];

  for (const o of objects) {
    const v = o.value;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) {
      problems.push(fileProblem(o.file, `not a Kubernetes object (a mapping with apiVersion and kind); got ${describeValue(v)}`, `document ${o.document}`));
      continue;
    }
    const kind = (v as Record<string, unknown>).kind;
    if (kind === 'Secret') {
      const secret = decodeSecret(v as Record<string, unknown>, objectLabel(o), o.file, problems);
      if (secret) secrets.push(secret);
    } else if (kind === KIND) {
      candidates.push(o);
    } else if (typeof kind !== 'string' || !kind) {
      problems.push(fileProblem(o.file, 'required field is missing', objectLabel(o), 'kind'));
    }
  }
  if (!candidates.length && !problems.length) {
    problems.push(fileProblem(files.join(', '), `no ${KIND} found`));
  }

  const loadBalancers: ValidatedManifests['loadBalancers'] = [];
  for (const o of candidates) {
    const namespace = ((o.value as Record<string, unknown>).metadata as Record<string, unknown> | undefined)?.namespace;
    const lookup = (name: string) => secrets.find((s) => s.name === name && (s.namespace ?? 'default') === (typeof namespace === 'string' ? namespace : 'default'));
    const { problems: found, object } = validateHALoadBalancer(o.value, lookup);
    for (const p of found) problems.push({ ...p, file: o.file, object: objectLabel(o) });
    if (object) loadBalancers.push({ file: o.file, object });
  }
  return { loadBalancers, secrets, problems };
}

/** One line per problem: file, object, field path, reason. */
export function formatProblem(p: FileProblem): string {
  return [p.file, p.object, p.path, p.message].filter((s) => s !== '').join(': ');
}

// YAML as kubectl reads it. kubectl turns each document into JSON with sigs.k8s.io/yaml, whose
// YAML library resolves plain scalars the YAML 1.1 way: `017` is octal 15, `0x1F` hex, `1_000`
// a thousand, `yes`/`no`/`on`/`off`/`y`/`n` booleans, `~` null, `<<` a merge key; quoted and
// block scalars stay strings; map keys become JSON strings; NaN and infinities cannot become
// JSON and are refused. The `yaml` package parses the text (failsafe schema: every scalar a
// string), and this module resolves it, in one pass that is linear in the input: duplicate
// keys are found with a set per mapping (the package's own check rescans the mapping for each
// key, which is quadratic), and aliases are bounded by count and by the values they expand to.
import { LineCounter, isAlias, isMap, isScalar, isSeq, parseAllDocuments, type Node, type Scalar } from 'yaml';

/** yaml's own default; more aliases than this is an expansion ("billion laughs") attack. */
const MAX_ALIAS_COUNT = 100;
/** Values a document may expand to through aliases; far above any real manifest. */
const MAX_VALUES = 2_000_000;
/** Nesting deeper than this is not a manifest (and would exhaust the stack). */
const MAX_DEPTH = 512;

const TAG = 'tag:yaml.org,2002:';

export interface YAMLProblem {
  line: number;
  column: number;
  /** Field path inside the document, where known. */
  path: string;
  message: string;
}

export interface YAMLDocument {
  /** 1-based index in the file. */
  index: number;
  line: number;
  value: unknown;
  /** Lines of the elements of a top-level `items` sequence (the objects of a List). */
  itemLines: number[];
}

class YAMLValueError extends Error {
  readonly node: Node | undefined;
  readonly path: string;
  constructor(node: Node | undefined, path: string, message: string) {
    super(message);
    this.node = node;
    this.path = path;
  }
}

const nulls = new Set(['', '~', 'null', 'Null', 'NULL']);
const trues = new Set(['y', 'Y', 'yes', 'Yes', 'YES', 'true', 'True', 'TRUE', 'on', 'On', 'ON']);
const falses = new Set(['n', 'N', 'no', 'No', 'NO', 'false', 'False', 'FALSE', 'off', 'Off', 'OFF']);
const nans = new Set(['.nan', '.NaN', '.NAN']);
const infinities = new Set(['.inf', '.Inf', '.INF', '+.inf', '+.Inf', '+.INF']);
const negativeInfinities = new Set(['-.inf', '-.Inf', '-.INF']);
// Go's strconv.ParseInt with base 0 (after underscores are dropped): sign, then 0x, 0b, 0o or
// a leading 0 for octal, else decimal.
const goInteger = /^[-+]?(0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO]?[0-7]+|[1-9][0-9]*|0)$/;
const yamlFloat = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/;
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

function parseGoInteger(text: string): number | undefined {
  if (!goInteger.test(text)) return undefined;
  const negative = text.startsWith('-');
  const digits = text.replace(/^[-+]/, '');
  const prefixed = /^0[0-7]/.test(digits) ? `0o${digits.slice(1)}` : digits; // Go's leading-zero octal
  const magnitude = BigInt(prefixed);
  const value = negative ? -magnitude : magnitude;
  if (value > (negative || text.startsWith('+') ? INT64_MAX : UINT64_MAX) || value < -INT64_MAX - 1n) return undefined;
  return Number(value);
}

/** A plain scalar's value as go-yaml v2 resolves it; `merge` for the `<<` key. */
function resolvePlain(text: string): unknown {
  if (nulls.has(text)) return null;
  if (trues.has(text)) return true;
  if (falses.has(text)) return false;
  if (nans.has(text)) return Number.NaN;
  if (infinities.has(text)) return Number.POSITIVE_INFINITY;
  if (negativeInfinities.has(text)) return Number.NEGATIVE_INFINITY;
  if (!/^[-+.0-9]/.test(text)) return text;
  const plain = text.replaceAll('_', '');
  const integer = parseGoInteger(plain);
  if (integer !== undefined) return integer;
  if (yamlFloat.test(plain)) {
    const float = Number(plain);
    // Go's ParseFloat fails on overflow, and the text stays a string.
    if (Number.isFinite(float)) return float;
  }
  return text;
}

interface Context {
  anchors: Map<string, { value: unknown; size: number }>;
  pending: Set<string>;
  aliases: number;
  values: number;
}

function childPath(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? (path ? `${path}.${key}` : key) : `${path}[${JSON.stringify(key)}]`;
}

function scalarValue(node: Scalar, path: string): unknown {
  const text = String(node.value);
  const tag = node.tag;
  if (tag === undefined || tag === '!') return node.type === 'PLAIN' && tag === undefined ? resolvePlain(text) : text;
  switch (tag) {
    case `${TAG}str`: return text;
    case `${TAG}binary`: return Buffer.from(text.replace(/\s/g, ''), 'base64').toString('utf8');
    case `${TAG}null`: case `${TAG}bool`: case `${TAG}int`: case `${TAG}float`: {
      const value = resolvePlain(text);
      const kind = value === null ? 'null'
        : typeof value === 'boolean' ? 'bool'
        : typeof value === 'number' ? (Number.isInteger(value) ? 'int' : 'float')
        : 'str';
      if (kind === tag.slice(TAG.length) || (kind === 'int' && tag === `${TAG}float`)) return value;
      throw new YAMLValueError(node, path, `${JSON.stringify(text)} is not a valid ${tag.slice(TAG.length)}`);
    }
    default:
      throw new YAMLValueError(node, path, `the tag ${tag} is not supported`);
  }
}

/** A map key as JSON carries it: strings stay, numbers and booleans are written out. */
function keyString(key: unknown, node: Node | undefined, path: string): string {
  if (typeof key === 'string') return key;
  if (typeof key === 'boolean') return String(key);
  if (typeof key === 'number' && Number.isFinite(key)) return String(key);
  const got = key === null ? 'null' : typeof key === 'number' ? String(key) : 'a collection';
  throw new YAMLValueError(node, path, `a mapping key must be a string, number or boolean; got ${got}`);
}

function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  // A plain assignment of "__proto__" would change the object's prototype instead.
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function convert(node: Node | null | undefined, path: string, depth: number, ctx: Context): unknown {
  if (depth > MAX_DEPTH) throw new YAMLValueError(node ?? undefined, path, `nested deeper than ${MAX_DEPTH} levels`);
  if (++ctx.values > MAX_VALUES) throw new YAMLValueError(node ?? undefined, path, `aliases expand the document past ${MAX_VALUES} values`);
  if (node === null || node === undefined) return null;
  if (isAlias(node)) {
    if (++ctx.aliases > MAX_ALIAS_COUNT) {
      throw new YAMLValueError(node, path, `more than ${MAX_ALIAS_COUNT} aliases; this looks like an alias expansion attack`);
    }
    const anchor = ctx.anchors.get(node.source);
    if (!anchor) {
      throw new YAMLValueError(node, path, ctx.pending.has(node.source)
        ? `alias *${node.source} refers to its own anchor`
        : `alias *${node.source} has no anchor before it`);
    }
    ctx.values += anchor.size;
    if (ctx.values > MAX_VALUES) throw new YAMLValueError(node, path, `aliases expand the document past ${MAX_VALUES} values`);
    return anchor.value;
  }
  const anchor = node.anchor;
  if (anchor) ctx.pending.add(anchor);
  const before = ctx.values;
  let value: unknown;
  if (isScalar(node)) {
    value = scalarValue(node, path);
    if (typeof value === 'number' && !Number.isFinite(value)) {
      throw new YAMLValueError(node, path, `${String(node.value)} is ${String(value)}, which JSON cannot carry: kubectl refuses it`);
    }
  } else if (isSeq(node)) {
    value = node.items.map((item, i) => convert(item as Node, childPath(path, i), depth + 1, ctx));
  } else if (isMap(node)) {
    value = convertMap(node.items, path, depth, ctx);
  } else {
    throw new YAMLValueError(node, path, 'unexpected YAML node');
  }
  if (anchor) {
    ctx.pending.delete(anchor);
    ctx.anchors.set(anchor, { value, size: ctx.values - before });
  }
  return value;
}

function convertMap(
  pairs: readonly { key: unknown; value: unknown }[], path: string, depth: number, ctx: Context,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const explicit = new Set<string>();
  const merged: Record<string, unknown>[] = [];
  for (const pair of pairs) {
    const keyNode = pair.key as Node | null;
    if (isScalar(keyNode) && keyNode.type === 'PLAIN' && keyNode.tag === undefined && keyNode.value === '<<') {
      merged.push(...mergeSources(pair.value as Node, path, depth, ctx));
      continue;
    }
    const key = keyString(convert(keyNode, path, depth + 1, ctx), keyNode ?? undefined, path);
    if (explicit.has(key)) {
      throw new YAMLValueError(keyNode ?? undefined, childPath(path, key), 'duplicate key: kubectl\'s strict decoding refuses it');
    }
    explicit.add(key);
    setOwn(out, key, convert(pair.value as Node, childPath(path, key), depth + 1, ctx));
  }
  // Merge keys: explicit keys win, then earlier merged mappings over later ones.
  for (const source of merged) {
    for (const key of Object.keys(source)) if (!Object.hasOwn(out, key)) setOwn(out, key, source[key]);
  }
  return out;
}

function mergeSources(node: Node, path: string, depth: number, ctx: Context): Record<string, unknown>[] {
  const nodes = isSeq(node) ? (node.items as Node[]) : [node];
  return nodes.map((item) => {
    const value = convert(item, childPath(path, '<<'), depth + 1, ctx);
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new YAMLValueError(item, childPath(path, '<<'), 'a merge key (<<) takes a mapping or a list of mappings');
    }
    return value as Record<string, unknown>;
  });
}

function itemLines(contents: Node | null, lineCounter: LineCounter): number[] {
  if (!isMap(contents)) return [];
  const items = contents.items.find((p) => isScalar(p.key) && p.key.value === 'items')?.value;
  if (!isSeq(items)) return [];
  return items.items.map((item) => lineCounter.linePos((item as Node).range?.[0] ?? 0).line);
}

/** Every document of a file, resolved as kubectl resolves it, or the problems that stop it. */
export function readYAMLDocuments(text: string): { documents: YAMLDocument[]; problems: YAMLProblem[] } {
  const lineCounter = new LineCounter();
  const documents: YAMLDocument[] = [];
  const problems: YAMLProblem[] = [];
  const at = (offset: number | undefined) => lineCounter.linePos(offset ?? 0);
  let parsed;
  try {
    parsed = parseAllDocuments(text, { lineCounter, schema: 'failsafe', uniqueKeys: false, prettyErrors: false, strict: true });
  } catch (err) {
    const firstLine = (err as Error).message.split('\n')[0];
    return { documents, problems: [{ line: 1, column: 1, path: '', message: `cannot parse YAML: ${firstLine}` }] };
  }
  const docs = Array.isArray(parsed) ? parsed : [];
  docs.forEach((doc, i) => {
    if (doc.errors.length) {
      for (const error of doc.errors) {
        const pos = at(error.pos[0]);
        problems.push({ line: pos.line, column: pos.col, path: '', message: `YAML syntax error: ${error.message.split('\n')[0]}` });
      }
      return;
    }
    const ctx: Context = { anchors: new Map(), pending: new Set(), aliases: 0, values: 0 };
    try {
      const contents = doc.contents as Node | null;
      const value = convert(contents, '', 0, ctx);
      documents.push({
        index: i + 1, line: contents ? at(contents.range?.[0]).line : 1, value, itemLines: itemLines(contents, lineCounter),
      });
    } catch (err) {
      if (err instanceof YAMLValueError) {
        const pos = at(err.node?.range?.[0]);
        problems.push({ line: pos.line, column: pos.col, path: err.path, message: err.message });
      } else if (err instanceof RangeError) {
        problems.push({ line: 1, column: 1, path: '', message: `document ${i + 1} is nested too deeply to read` });
      } else {
        throw err;
      }
    }
  });
  return { documents, problems };
}

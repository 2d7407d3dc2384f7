// File-system side of `halb render`: reading observed facts and writing each node's files
// laid out as on the host, under DIR/<node-name>/.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { RenderError } from './errors.ts';
import type { ObservedFacts, RenderedNode } from './types.ts';

function fail(file: string, message: string): never {
  throw new RenderError(file, message);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function field(value: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(value, key) ? value[key] : undefined;
}

/** Checks each field's type; `optional` fields may be absent. Other fields (the rest of a status) are passed over. */
function checkFields(
  where: string, value: unknown,
  fields: Record<string, 'string' | 'number' | 'strings' | 'optional string' | 'optional number' | 'optional strings'>,
): void {
  if (!isObject(value)) fail(where, 'must be a JSON object');
  for (const [key, type] of Object.entries(fields)) {
    const v = field(value, key);
    if (v === undefined && type.startsWith('optional')) continue;
    const base = type.replace('optional ', '');
    const ok = base === 'strings' ? Array.isArray(v) && v.every((s) => typeof s === 'string')
      : base === 'number' ? typeof v === 'number' && Number.isFinite(v) : typeof v === base;
    if (!ok) fail(`${where}.${key}`, `must be ${base === 'strings' ? 'a list of strings' : `a ${base}`}`);
  }
}

/**
 * Reads FACTS.json: the shape of status, `{"floatingIP", "nodes": [{"name", "privateIPv4",
 * "anchorIPv4", ...}]}`, every field's type checked, so no malformed file reaches the renderer.
 */
export function readFacts(file: string): ObservedFacts {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    fail(file, `cannot read observed facts: ${(error as Error).message}`);
  }
  if (!isObject(value)) fail(file, 'must be a JSON object {"floatingIP", "nodes": [...]}');
  const { nodes, taggedDroplets, ...rest } = value;
  checkFields(file, rest, { floatingIP: 'string', vpcCIDR: 'optional string' });
  if (!Array.isArray(nodes)) fail(`${file}: nodes`, 'must be a list of nodes');
  nodes.forEach((node: unknown, i) => checkFields(`${file}: nodes[${i}]`, node, {
    name: 'string', privateIPv4: 'string', anchorIPv4: 'string', dropletID: 'optional number', publicIPv4: 'optional string',
    authorizedKeys: 'optional strings',
  }));
  if (taggedDroplets !== undefined) {
    if (!isObject(taggedDroplets)) fail(`${file}: taggedDroplets`, 'must be an object of tag: [{"name", "privateIPv4"}]');
    for (const [tag, droplets] of Object.entries(taggedDroplets)) {
      const where = `${file}: taggedDroplets[${JSON.stringify(tag)}]`;
      if (!Array.isArray(droplets)) fail(where, 'must be a list of {"name", "privateIPv4"}');
      droplets.forEach((d: unknown, i) => checkFields(`${where}[${i}]`, d, { name: 'string', privateIPv4: 'string' }));
    }
  }
  return value as unknown as ObservedFacts;
}

/** Writes DIR/<node>/<path> for every file, with its mode; returns the paths written. */
export function writeNodes(dir: string, nodes: RenderedNode[]): string[] {
  const written: string[] = [];
  for (const node of nodes) {
    for (const file of node.files) {
      const target = join(dir, node.name, file.path);
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, file.content, { mode: file.mode });
      chmodSync(target, file.mode); // the umask does not get a say
      written.push(target);
    }
  }
  return written;
}

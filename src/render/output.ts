// File-system side of `halb render`: reading observed facts and writing each node's files
// laid out as on the host, under DIR/<node-name>/.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { RenderError } from './errors.ts';
import type { ObservedFacts, RenderedNode } from './types.ts';

function fail(file: string, message: string): never {
  throw new RenderError(file, message);
}

/** Reads FACTS.json: the shape of status, `{"floatingIP", "nodes": [{"name", "privateIPv4", "anchorIPv4", ...}]}`. */
export function readFacts(file: string): ObservedFacts {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    fail(file, `cannot read observed facts: ${(error as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail(file, 'must be a JSON object {"floatingIP", "nodes": [...]}');
  const facts = value as Record<string, unknown>;
  if (typeof facts.floatingIP !== 'string') fail(`${file}: floatingIP`, 'must be a string');
  if (!Array.isArray(facts.nodes)) fail(`${file}: nodes`, 'must be an array');
  facts.nodes.forEach((node: unknown, i) => {
    if (node === null || typeof node !== 'object') fail(`${file}: nodes[${i}]`, 'must be an object');
    for (const key of ['name', 'privateIPv4', 'anchorIPv4']) {
      if (typeof (node as Record<string, unknown>)[key] !== 'string') fail(`${file}: nodes[${i}].${key}`, 'must be a string');
    }
  });
  if (facts.taggedDroplets !== undefined && (facts.taggedDroplets === null || typeof facts.taggedDroplets !== 'object' || Array.isArray(facts.taggedDroplets))) {
    fail(`${file}: taggedDroplets`, 'must be an object of tag: [{"name", "privateIPv4"}]');
  }
  return facts as unknown as ObservedFacts;
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

// What of a new set of node files HAProxy can take through its runtime API (the admin socket)
// instead of a reload, which would move every open connection onto a draining old worker:
// servers added, removed, re-weighted, drained or moved to another address, and certificates
// rotated. Pure: it compares the files last applied with the new ones and returns the commands,
// or why a reload is needed. The files on disk are replaced either way, so a later reload starts
// HAProxy in the same state the commands left it in.
import { isIPv4 } from 'node:net';
import { hashFiles } from './render.ts';
import type { RenderedFile } from './types.ts';
import type { HAProxyFeatures } from './versions.ts';

/** What the runtime path compares against: the config's text and every other file's digest. */
export interface AppliedFiles {
  haproxyConfig: string;
  digests: Record<string, string>;
}

export interface RuntimeCommand {
  /** The command line, without its newline. */
  command: string;
  /** Lines sent after a command ending in ` <<` (HAProxy's payload syntax), ended by an empty line. */
  payload?: string;
  /** What a successful answer contains; '' when success is an empty answer. */
  expect: string;
  /** A failure is tolerated: a removed server with connections still open stays, in maintenance, until the next reload. */
  optional?: boolean;
}

export type RuntimePlan = { kind: 'runtime'; commands: RuntimeCommand[] } | { kind: 'reload'; reason: string };

/** Balance algorithms whose servers HAProxy can add at runtime (the "dynamic" ones). */
const DYNAMIC_BALANCE = new Set(['roundrobin', 'leastconn', 'first', 'random']);
/** Server keywords `add server` refuses on the oldest versions we support (2.6): such a server reloads. */
const NOT_ADDABLE = new Set(['cookie', 'init-addr']);

/** The record of what was applied, kept by the host agent between passes. */
export function appliedFiles(files: readonly RenderedFile[], haproxyConfigPath: string): AppliedFiles {
  const config = files.find((f) => f.path === haproxyConfigPath);
  return { haproxyConfig: config?.content ?? '', digests: Object.fromEntries(files.map((f) => [f.path, hashFiles([f])])) };
}

interface ServerLine { address: string; port: string; options: string[] }
interface Backend { balance: string; defaults: string[]; servers: Map<string, ServerLine> }
interface ParsedConfig { skeleton: string; backends: Map<string, Backend> }

/** The config without its server lines (which must match between the two), and each backend's servers. */
function parseConfig(text: string): ParsedConfig {
  const skeleton: string[] = [];
  const backends = new Map<string, Backend>();
  let current: Backend | undefined;
  for (const line of text.split('\n')) {
    const words = line.trim().split(/\s+/);
    if (!line.startsWith(' ')) current = undefined;
    if (words[0] === 'backend') backends.set(words[1]!, current = { balance: '', defaults: [], servers: new Map() });
    if (current && words[0] === 'balance') current.balance = words[1]!;
    if (current && words[0] === 'default-server') current.defaults = words.slice(1);
    if (current && words[0] === 'server') {
      const target = words[2]!;
      const colon = target.lastIndexOf(':');
      current.servers.set(words[1]!, { address: target.slice(0, colon), port: target.slice(colon + 1), options: words.slice(3) });
      continue;
    }
    skeleton.push(line);
  }
  return { skeleton: skeleton.join('\n'), backends };
}

/** A server's options without its weight, and its weight (HAProxy's default is 1). */
function splitWeight(options: string[]): { rest: string; weight: string } {
  const at = options.indexOf('weight');
  if (at < 0) return { rest: options.join(' '), weight: '1' };
  return { rest: [...options.slice(0, at), ...options.slice(at + 2)].join(' '), weight: options[at + 1]! };
}

type Decision = RuntimeCommand[] | string;

function removeServer(backend: string, server: string): RuntimeCommand[] {
  // Maintenance first: no new connections, open ones finish; the delete waits for none to be left.
  return [
    { command: `set server ${backend}/${server} state maint`, expect: '' },
    { command: `del server ${backend}/${server}`, expect: 'Server deleted', optional: true },
  ];
}

function addServer(backend: string, name: string, defaults: string[], server: ServerLine): Decision {
  const refused = server.options.find((o) => NOT_ADDABLE.has(o));
  if (refused) return `server ${backend}/${name} has ${refused}, which HAProxy cannot add at runtime`;
  const options = [...defaults, ...server.options];
  const commands: RuntimeCommand[] = [
    { command: `add server ${backend}/${name} ${server.address}:${server.port} ${options.join(' ')}`.trimEnd(),
      expect: 'New server registered' },
  ];
  if (options.includes('check')) commands.push({ command: `enable health ${backend}/${name}`, expect: '' });
  commands.push({ command: `enable server ${backend}/${name}`, expect: '' });
  return commands;
}

function changeServer(backend: string, name: string, before: ServerLine, after: ServerLine): Decision {
  const was = splitWeight(before.options);
  const now = splitWeight(after.options);
  if (was.rest !== now.rest) return `server ${backend}/${name} changed more than its address and weight`;
  const commands: RuntimeCommand[] = [];
  if (before.address !== after.address || before.port !== after.port) {
    if (!isIPv4(after.address)) return `server ${backend}/${name} moves to a DNS name, which HAProxy resolves only at start`;
    commands.push({ command: `set server ${backend}/${name} addr ${after.address} port ${after.port}`, expect: 'changed' });
  }
  if (was.weight !== now.weight) commands.push({ command: `set weight ${backend}/${name} ${now.weight}`, expect: '' });
  return commands;
}

/** A backend's server changes; its other lines (balance, default-server) are equal, as part of the skeleton. */
function backendCommands(name: string, before: Backend, after: Backend, features: Pick<HAProxyFeatures, 'dynamicServers'>): Decision {
  const commands: RuntimeCommand[] = [];
  const names = new Set([...before.servers.keys(), ...after.servers.keys()]);
  for (const server of [...names].sort()) {
    const was = before.servers.get(server);
    const now = after.servers.get(server);
    const membership = !was || !now;
    if (membership && !features.dynamicServers) return `adding or removing a server at runtime needs HAProxy 2.6 or later`;
    if (membership && !DYNAMIC_BALANCE.has(after.balance)) {
      return `backend ${name} balances with ${after.balance}, whose servers are fixed at start`;
    }
    const step = !now ? removeServer(name, server)
      : !was ? addServer(name, server, after.defaults, now) : changeServer(name, server, was, now);
    if (typeof step === 'string') return step;
    commands.push(...step);
  }
  return commands;
}

function serverCommands(before: string, after: string, features: Pick<HAProxyFeatures, 'dynamicServers'>): Decision {
  const was = parseConfig(before);
  const now = parseConfig(after);
  if (was.skeleton !== now.skeleton) return 'haproxy.cfg changed more than its servers';
  const commands: RuntimeCommand[] = [];
  for (const [name, backend] of now.backends) {
    const step = backendCommands(name, was.backends.get(name)!, backend, features);
    if (typeof step === 'string') return step;
    commands.push(...step);
  }
  return commands;
}

/** The certificates the config loads on its bind lines (`crt <path>`): HAProxy's names for them. */
function boundCertificates(config: string): Set<string> {
  return new Set([...config.matchAll(/\sssl crt (\S+)/g)].map((m) => m[1]!));
}

/** A certificate rotated in place: a transaction with the new PEM, then its commit. */
function rotateCertificate(path: string, pem: string): RuntimeCommand[] {
  // The payload ends at an empty line, so the PEM must have none.
  const payload = pem.split('\n').filter((l) => l.trim() !== '').join('\n');
  return [
    { command: `set ssl cert ${path} <<`, payload, expect: 'Transaction' },
    { command: `commit ssl cert ${path}`, expect: 'Success' },
  ];
}

/**
 * The runtime commands that take HAProxy from the files last applied to `next`, or why it must
 * reload: every file other than haproxy.cfg and its bound certificates must be unchanged, and
 * haproxy.cfg may differ only in its servers.
 */
export function planRuntimeChanges(
  applied: AppliedFiles, next: readonly RenderedFile[], haproxyConfigPath: string, features: Pick<HAProxyFeatures, 'dynamicServers'>,
): RuntimePlan {
  const config = next.find((f) => f.path === haproxyConfigPath);
  if (!config) return { kind: 'reload', reason: 'no haproxy.cfg in the files' };
  const paths = new Set(next.map((f) => f.path));
  if (Object.keys(applied.digests).some((p) => !paths.has(p)) || next.some((f) => !(f.path in applied.digests))) {
    return { kind: 'reload', reason: 'files were added or removed' };
  }
  const certificates = boundCertificates(config.content);
  const commands: RuntimeCommand[] = [];
  for (const file of next.filter((f) => f.path !== haproxyConfigPath && hashFiles([f]) !== applied.digests[f.path])) {
    if (!certificates.has(file.path)) return { kind: 'reload', reason: `${file.path} changed` };
    commands.push(...rotateCertificate(file.path, file.content));
  }
  const servers = serverCommands(applied.haproxyConfig, config.content, features);
  if (typeof servers === 'string') return { kind: 'reload', reason: servers };
  return { kind: 'runtime', commands: [...servers, ...commands] };
}

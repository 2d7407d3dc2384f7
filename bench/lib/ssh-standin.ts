// A lightweight stand-in for load-balancer hosts at the SSH layer, for the scale benchmark only:
// no daemons, no namespaces, no packets beyond 127.0.0.0/8. Each host listens on its own
// loopback address (127.b.c.d for public IP a.b.c.d), all on one port, and is a real SSH server
// (ssh2) that accepts only the keys its droplet was created with. It keeps per-host state in
// memory (files, config hash, daemons running, VRRP state) and answers exactly the programs of
// src/hosts/remote.ts the way a host would: readState, stage/validate/swap, start-or-reload and
// stop-keepalived. Anything else (another command, a script it does not recognise) exits
// non-zero. The configs are checked for structure, not by HAProxy or keepalived themselves.
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import ssh2 from 'ssh2';
import type { ParsedKey } from 'ssh2';
import { generateEd25519KeyPair } from '../../src/ssh-keys.ts';
import { firstBootFromUserData } from '../../src/sandbox/fabric/cloud-config.ts';
import {
  DEFAULT_DAEMON_PATHS, RUNTIME_BEGIN, readStateScript, stageValidateSwapScript, startOrReloadScript, stopKeepalivedScript, watchVrrpScript,
  type DaemonPaths, type RemoteFile,
} from '../../src/hosts/remote.ts';

export interface StandinHostSpec {
  /** The droplet's public IPv4: the operator's address for it. */
  publicIPv4: string;
  dropletId: number;
  /** The droplet name (`<object>-<index>`): index 0 becomes MASTER when keepalived starts. */
  name: string;
  /** OpenSSH public key lines the host authorizes (the droplet's ssh_keys). */
  authorizedKeys: string[];
  /** The droplet's user_data: a cloud-config's `ssh_keys.ed25519_private` becomes the host key, as cloud-init makes it. */
  userData?: string;
}

/** What the metadata service (169.254.169.254) answers this droplet for a path, or undefined (404). */
export type MetadataLookup = (dropletId: number, path: string) => string | undefined;

interface HostState {
  spec: StandinHostSpec;
  keys: ParsedKey[];
  files: Map<string, { mode: number; content: string }>;
  haproxyRunning: boolean;
  keepalivedRunning: boolean;
  /** The host firewall file was loaded (nft -f) by a start/reload. */
  firewallLoaded: boolean;
  listener: NetServer;
}

export interface StandinCounters {
  connections: number;
  refusedAuth: number;
  execs: Record<'readState' | 'stageValidateSwap' | 'startOrReload' | 'stopKeepalived' | 'runtime' | 'watchVrrp' | 'unknown', number>;
  /** State reads that asked for the node's facts (versions, metadata): once per session. */
  factReads: number;
}

export interface SshStandin {
  port: number;
  /** The loopback address a public IPv4 maps to (127.b.c.d for a.b.c.d). */
  loopbackFor(publicIPv4: string): string;
  addHost(spec: StandinHostSpec): Promise<void>;
  removeHost(publicIPv4: string): Promise<void>;
  /** Breaks every open connection, as a network cut or a crashed host does. */
  dropConnections(): void;
  /** A host's view: what a `cat` of its files and a look at its daemons would show. */
  inspect(publicIPv4: string):
    { configHash?: string; vrrpState?: string; haproxyRunning: boolean; keepalivedRunning: boolean; files: string[] } | undefined;
  counters: StandinCounters;
  close(): Promise<void>;
}

export function loopbackFor(publicIPv4: string): string {
  const octets = publicIPv4.split('.');
  if (octets.length !== 4) throw new Error(`not an IPv4 address: ${publicIPv4}`);
  return `127.${octets.slice(1).join('.')}`;
}

const HAPROXY_SECTIONS = new Set([
  'global', 'defaults', 'frontend', 'backend', 'listen', 'userlist', 'peers', 'resolvers', 'program', 'http-errors', 'cache', 'ring',
  'mailers',
]);

/** Structure only, as far as `haproxy -c` goes without HAProxy: known sections, indented keywords. */
export function checkHAProxyConfig(text: string): string | undefined {
  const lines = text.split('\n');
  let sections = 0;
  for (const [i, raw] of lines.entries()) {
    const line = raw.replace(/#.*$/, '');
    if (!line.trim()) continue;
    if (/^\S/.test(line)) {
      const keyword = line.trim().split(/\s+/)[0]!;
      if (!HAPROXY_SECTIONS.has(keyword)) {
        return `[ALERT] config : parsing [haproxy.cfg:${i + 1}]: unknown keyword '${keyword}' out of section.`;
      }
      sections++;
    } else if (sections === 0) {
      return `[ALERT] config : parsing [haproxy.cfg:${i + 1}]: keyword outside of any section.`;
    }
  }
  if (!/^global\b/m.test(text) || !/^(frontend|listen)\b/m.test(text)) return '[ALERT] config : no global section or no frontend';
  return undefined;
}

/** Balanced braces and a vrrp_instance, as far as `keepalived -t` goes without keepalived. */
export function checkKeepalivedConfig(text: string): string | undefined {
  let depth = 0;
  for (const [i, line] of text.split('\n').entries()) {
    const code = line.replace(/#.*$/, '');
    for (const ch of code) {
      if (ch === '{') depth++;
      if (ch === '}' && --depth < 0) return `(keepalived.conf: Line ${i + 1}) unexpected '}'`;
    }
  }
  if (depth !== 0) return 'keepalived.conf: unbalanced braces';
  if (!/^vrrp_instance \S+ \{/m.test(text)) return 'keepalived.conf: no vrrp_instance';
  return undefined;
}

const STAGE_RE = /^printf '%s' '([A-Za-z0-9+/=]*)' \| base64 -d > '([^']+)\.halb-new' \|\| exit 1$/;
const CHMOD_RE = /^chmod ([0-7]+) '([^']+)\.halb-new'$/;
const HASH_RE = /^printf '%s\\n' '([^']*)' > '([^']+)'$/;

/** The files and hash a stage/validate/swap program carries, if it is exactly one. */
export function parseStageValidateSwap(script: string, paths: DaemonPaths): { files: RemoteFile[]; hash: string } | undefined {
  const files: RemoteFile[] = [];
  let hash: string | undefined;
  for (const line of script.split('\n')) {
    const staged = STAGE_RE.exec(line);
    if (staged) {
      files.push({ path: staged[2]!, mode: 0o644, content: Buffer.from(staged[1]!, 'base64').toString('utf8') });
      continue;
    }
    const chmod = CHMOD_RE.exec(line);
    if (chmod) {
      const file = files.at(-1);
      if (!file || file.path !== chmod[2]) return undefined;
      file.mode = parseInt(chmod[1]!, 8);
      continue;
    }
    const h = HASH_RE.exec(line);
    if (h && h[2] === paths.hashFile) hash = h[1]!;
  }
  if (hash === undefined || !files.length) return undefined;
  // The program must be exactly what the agent would send for these files: nothing else runs.
  let expected: string;
  try {
    expected = stageValidateSwapScript(files, hash, paths);
  } catch {
    return undefined;
  }
  return expected === script ? { files, hash } : undefined;
}

interface ExecResult { stdout: string; stderr: string; code: number }

export async function startSshStandin(options: {
  metadata: MetadataLookup;
  /** The operator's render.metadataBaseURL (its readState program names it). */
  metadataBaseURL?: string;
  paths?: DaemonPaths;
  port?: number;
}): Promise<SshStandin> {
  const paths = options.paths ?? DEFAULT_DAEMON_PATHS;
  const readState = readStateScript(paths, options.metadataBaseURL);
  const startOrReload = startOrReloadScript(paths);
  const stopKeepalived = stopKeepalivedScript(paths);
  const watchVrrp = watchVrrpScript(paths);
  const hosts = new Map<string, HostState>();
  const counters: StandinCounters = {
    connections: 0, refusedAuth: 0, factReads: 0,
    execs: { readState: 0, stageValidateSwap: 0, startOrReload: 0, stopKeepalived: 0, runtime: 0, watchVrrp: 0, unknown: 0 },
  };
  const sockets = new Set<Socket>();

  const vrrpOf = (host: HostState): string | undefined => {
    // keepalived's notify script writes the state file; stopped, it last wrote STOP.
    const recorded = host.files.get(paths.vrrpStateFile)?.content.trim();
    return recorded || undefined;
  };

  const md = (host: HostState, path: string) => options.metadata(host.spec.dropletId, `/metadata/v1/${path}`) ?? '';

  const serversOf = (host: HostState): string => {
    // HAProxy's stats CSV, as the script's awk prints it: every server UP (no data plane here).
    const cfg = host.files.get(paths.haproxyConfig)?.content ?? '';
    const out: string[] = [];
    let backend: string | undefined;
    for (const line of cfg.split('\n')) {
      const b = /^backend (\S+)/.exec(line);
      if (b) backend = b[1];
      else if (/^\S/.test(line)) backend = undefined;
      const s = /^\s+server (\S+) /.exec(line);
      if (s && backend && !backend.startsWith('halb_')) out.push(`${backend}/${s[1]}=UP,`);
    }
    return out.join('');
  };

  const run = (host: HostState, script: string): ExecResult => {
    const priv = md(host, 'interfaces/private/0/ipv4/address');
    // The first read of a session asks for the node's facts; later ones pass the private address.
    const knownFacts = priv ? readStateScript(paths, options.metadataBaseURL, undefined, { privateIPv4: priv }) : undefined;
    if (script === readState || script === knownFacts) {
      counters.execs.readState++;
      if (script === readState) counters.factReads++;
      const facts = script === readState ? [
        // What ubuntu-24-04-x64 (the spec's default image) ships.
        'halb:keepalived-version Keepalived v2.2.8 (04/04,2023), git commit v2.2.7-154-g292b299e+',
        'halb:haproxy-version HAProxy version 2.8.5-1ubuntu3 2024/04/01 - https://haproxy.org/',
        `halb:anchor ${md(host, 'interfaces/public/0/anchor_ipv4/address')}`,
        `halb:private ${priv}`,
        `halb:droplet-id ${md(host, 'id')}`,
      ] : [];
      const lines = [
        `halb:vrrp ${(vrrpOf(host) ?? '').slice(0, 16)}`,
        `halb:hash ${(host.files.get(paths.hashFile)?.content ?? '').trim().slice(0, 80)}`,
        ...facts,
        ...(priv ? [`halb:servers ${host.haproxyRunning ? serversOf(host) : ''}`] : []),
        `halb:haproxy-running ${host.haproxyRunning ? 'yes' : 'no'}`,
        `halb:keepalived-running ${host.keepalivedRunning ? 'yes' : 'no'}`,
        `halb:firewall ${host.firewallLoaded ? 'yes' : 'no'}`,
        // Every operator connection reaches the stand-in over loopback.
        'halb:ssh-client 127.0.0.1',
        ...(host.files.has(paths.sshdConfig)
          ? ['halb:sshd permitrootlogin=without-password,passwordauthentication=no,kbdinteractiveauthentication=no,']
          : []),
        'halb:booted yes',
      ];
      return { stdout: `${lines.join('\n')}\n`, stderr: '', code: 0 };
    }
    if (script === startOrReload) {
      counters.execs.startOrReload++;
      const out: string[] = [];
      const haproxyCfg = host.files.get(paths.haproxyConfig);
      const keepalivedCfg = host.files.get(paths.keepalivedConfig);
      if (host.haproxyRunning) {
        out.push('halb:reloaded haproxy');
      } else if (!haproxyCfg) {
        return { stdout: out.join('\n'), stderr: `[ALERT] Cannot open configuration file ${paths.haproxyConfig}`, code: 1 };
      } else {
        host.haproxyRunning = true;
        out.push('halb:started haproxy');
      }
      if (host.keepalivedRunning) {
        out.push('halb:reloaded keepalived');
      } else if (!keepalivedCfg) {
        const stderr = `Configuration file '${paths.keepalivedConfig}' is not a regular non-executable file`;
        return { stdout: out.join('\n'), stderr, code: 1 };
      } else {
        host.keepalivedRunning = true;
        // The first node wins the election; its peers hear its adverts and stay BACKUP.
        const state = /-0$/.test(host.spec.name) ? 'MASTER' : 'BACKUP';
        host.files.set(paths.vrrpStateFile, { mode: 0o644, content: `${state}\n` });
        out.push('halb:started keepalived');
      }
      if (host.files.has(paths.firewall)) {
        host.firewallLoaded = true;
        out.push('halb:loaded firewall');
      }
      return { stdout: `${out.join('\n')}\n`, stderr: '', code: 0 };
    }
    if (script === stopKeepalived) {
      counters.execs.stopKeepalived++;
      if (host.keepalivedRunning) {
        host.keepalivedRunning = false;
        host.files.set(paths.vrrpStateFile, { mode: 0o644, content: 'STOP\n' });
      }
      return { stdout: '', stderr: '', code: 0 };
    }
    // One round trip: the stage/validate/swap program, then HAProxy's runtime commands (taken as
    // they come: no data plane here) or start-or-reload.
    if (script.endsWith(startOrReload) && script !== startOrReload) {
      const runtimeAt = script.indexOf(`${RUNTIME_BEGIN}\n`);
      const swapped = run(host, script.slice(0, runtimeAt >= 0 ? runtimeAt : -startOrReload.length));
      if (swapped.code !== 0) return swapped;
      if (runtimeAt >= 0 && host.haproxyRunning) {
        counters.execs.runtime++;
        return { stdout: `${swapped.stdout}halb:runtime haproxy 0 commands\n`, stderr: '', code: 0 };
      }
      const reloaded = run(host, startOrReload);
      return { stdout: swapped.stdout + reloaded.stdout, stderr: reloaded.stderr, code: reloaded.code };
    }
    const swap = parseStageValidateSwap(script, paths);
    if (swap) {
      counters.execs.stageValidateSwap++;
      const byPath = new Map(swap.files.map((f) => [f.path, f]));
      const hp = byPath.get(paths.haproxyConfig);
      const hpProblem = hp ? checkHAProxyConfig(hp.content) : undefined;
      if (hpProblem) return { stdout: `halb:invalid haproxy\n${hpProblem}\n`, stderr: '', code: 3 };
      const ka = byPath.get(paths.keepalivedConfig);
      const kaProblem = ka ? checkKeepalivedConfig(ka.content) : undefined;
      if (kaProblem) return { stdout: `halb:invalid keepalived\n${kaProblem}\n`, stderr: '', code: 3 };
      for (const f of swap.files) host.files.set(f.path, { mode: f.mode, content: f.content });
      host.files.set(paths.hashFile, { mode: 0o600, content: `${swap.hash}\n` });
      return { stdout: 'halb:swapped\n', stderr: '', code: 0 };
    }
    counters.execs.unknown++;
    return { stdout: '', stderr: 'sh: stand-in host: program not recognised\n', code: 2 };
  };

  // One SSH server per host, each with its own host key (the operator pins one per node); the
  // host's own listener hands it the connections made to the host's loopback address.
  const serveHost = (target: HostState) => (client: ssh2.Connection) => {
    counters.connections++;
    client.on('error', () => undefined);
    client.on('authentication', (ctx) => {
      if (ctx.username !== 'root' || ctx.method !== 'publickey') return ctx.reject(['publickey']);
      const key = target.keys.find((k) => k.type === ctx.key.algo && sameBytes(k.getPublicSSH(), ctx.key.data));
      if (!key) {
        counters.refusedAuth++;
        return ctx.reject(['publickey']);
      }
      if (!ctx.signature || !ctx.blob) return ctx.accept(); // the "would you accept this key" query
      if (key.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true) {
        counters.refusedAuth++;
        return ctx.reject(['publickey']);
      }
      ctx.accept();
    });
    client.on('ready', () => {
      client.on('session', (acceptSession) => {
        const session = acceptSession();
        session.on('exec', (acceptExec, _reject, exec) => {
          const stream = acceptExec();
          const chunks: Buffer[] = [];
          const finish = (r: ExecResult) => {
            if (r.stdout) stream.write(r.stdout);
            if (r.stderr) stream.stderr.write(r.stderr);
            stream.exit(r.code);
            stream.end();
          };
          if (exec.command !== 'sh -s') {
            counters.execs.unknown++;
            stream.resume();
            finish({
              stdout: '', code: 127,
              stderr: `sh: 1: ${exec.command.split(' ')[0]}: not found (stand-in host runs only the agent's programs on stdin)\n`,
            });
            return;
          }
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.once('end', () => {
            // A host removed meanwhile (droplet deleted) answers nothing more.
            if (hosts.get(target.spec.publicIPv4) !== target) return finish({ stdout: '', stderr: 'host gone\n', code: 255 });
            const script = Buffer.concat(chunks).toString('utf8');
            // keepalived's state followed (tail -F on a host): the state now, then the channel stays
            // open for as long as the operator keeps it, as the real one does.
            if (script === watchVrrp) {
              counters.execs.watchVrrp++;
              stream.write(`${vrrpOf(target) ?? ''}\n`);
              return;
            }
            finish(run(target, script));
          });
        });
      });
    });
  };

  // The port every host listens on, held on 127.0.0.1 (no host there) so it is known, and
  // stays ours, before the first droplet exists.
  const portHolder = createNetServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    portHolder.once('error', reject);
    portHolder.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (portHolder.address() as { port: number }).port;

  const standin: SshStandin = {
    port,
    loopbackFor,
    counters,
    async addHost(spec) {
      if (hosts.has(spec.publicIPv4)) throw new Error(`stand-in host ${spec.publicIPv4} exists already`);
      const keys = spec.authorizedKeys.map((line) => {
        const parsed = ssh2.utils.parseKey(line);
        if (parsed instanceof Error) throw new Error(`authorized key of ${spec.name} cannot be read: ${parsed.message}`);
        return Array.isArray(parsed) ? parsed[0]! : parsed;
      });
      const address = loopbackFor(spec.publicIPv4);
      const listener = createNetServer();
      const host: HostState = {
        spec, keys, files: new Map(), haproxyRunning: false, keepalivedRunning: false, firewallLoaded: false, listener,
      };
      // The host key the droplet's cloud-config gives (the operator pins it at creation), as cloud-init installs it.
      const server = new ssh2.Server({ hostKeys: [firstBootFromUserData(spec.userData).hostKeyPrivate ?? hostKey()] }, serveHost(host));
      listener.on('connection', (socket: Socket) => {
        socket.setNoDelay(true);
        sockets.add(socket);
        socket.once('close', () => sockets.delete(socket));
        server.injectSocket(socket);
      });
      await listenWithRetry(listener, port, address);
      hosts.set(spec.publicIPv4, host);
    },
    async removeHost(publicIPv4) {
      const host = hosts.get(publicIPv4);
      if (!host) return;
      hosts.delete(publicIPv4);
      await new Promise<void>((resolve) => host.listener.close(() => resolve()));
    },
    dropConnections() {
      for (const s of sockets) s.destroy();
    },
    inspect(publicIPv4) {
      const host = hosts.get(publicIPv4);
      if (!host) return undefined;
      const hash = host.files.get(paths.hashFile)?.content.trim();
      const vrrp = vrrpOf(host);
      return {
        ...(hash ? { configHash: hash } : {}), ...(vrrp ? { vrrpState: vrrp } : {}),
        haproxyRunning: host.haproxyRunning, keepalivedRunning: host.keepalivedRunning, files: [...host.files.keys()].sort(),
      };
    },
    async close() {
      for (const s of sockets) s.destroy();
      await Promise.all([...hosts.keys()].map((ip) => standin.removeHost(ip)));
      await new Promise<void>((resolve) => portHolder.close(() => resolve()));
    },
  };
  return standin;
}

// A busy machine (CI runs test files side by side) can refuse a bind for a moment; a host that
// never listens would leave its droplet unreachable for the whole run, so try a few times.
async function listenWithRetry(listener: NetServer, port: number, address: string, attempts = 5): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await new Promise<void>((resolve, reject) => {
        listener.once('error', reject);
        listener.listen(port, address, () => {
          listener.off('error', reject);
          resolve();
        });
      });
      return;
    } catch (err) {
      if (attempt >= attempts) throw new Error(`stand-in host ${address}:${port} could not listen: ${String(err)}`);
      await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
    }
  }
}

const hostKey = () => generateEd25519KeyPair().private;

function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

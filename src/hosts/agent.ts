// The host agent: SSH (node-ssh) to a load-balancer node, as root with the operator's key.
// Every connection verifies the host key: the first key seen is pinned by the caller (status or
// a Secret), and a different key later refuses the host. One connection serves one reconcile.
import { createHash } from 'node:crypto';
import { connect as tcpConnect, type Socket } from 'node:net';
import { NodeSSH } from 'node-ssh';
import {
  DEFAULT_DAEMON_PATHS, parseMarked, parsePairs, parseVersion, readStateScript, stageValidateSwapScript, startOrReloadScript, stopKeepalivedScript,
  type DaemonPaths, type RemoteFile,
} from './remote.ts';

export class HostKeyChangedError extends Error {
  readonly host: string;
  readonly pinned: string;
  readonly presented: string;

  constructor(host: string, pinned: string, presented: string) {
    super(`host key of ${host} changed: pinned ${pinned}, presented ${presented}; refusing the host`);
    this.host = host;
    this.pinned = pinned;
    this.presented = presented;
  }
}

export class HostUnreachableError extends Error {}

/**
 * A TCP connection with Nagle's algorithm off. The agent's traffic is small messages, each
 * awaiting an answer (handshake, channel open, a program on stdin, its EOF): with Nagle on, a
 * small write waits for the peer's delayed ACK (40 ms on Linux). Against the scale benchmark's
 * SSH stand-in on loopback that cost about 400 ms per connection and 250 ms per program run
 * (5 ms and 3 ms without). The connect has its own timeout, before the SSH handshake's.
 */
function openSocket(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = tcpConnect({ host, port, noDelay: true });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`connect timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      resolve(sock);
    });
    sock.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

export interface ConnectOptions {
  host: string;
  port?: number;
  privateKey: string;
  /** The pinned host key fingerprint (SHA256:base64); unset on first contact. */
  pinnedHostKey?: string;
  timeoutMs?: number;
}

/** OpenSSH's SHA256 fingerprint of a raw host key. */
export function hostKeyFingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

export interface HostState {
  vrrpState?: 'MASTER' | 'BACKUP' | 'FAULT' | 'STOP';
  configHash?: string;
  keepalivedVersion?: string;
  haproxyVersion?: string;
  anchorIPv4?: string;
  privateIPv4?: string;
  dropletId?: number;
  haproxyRunning: boolean;
  keepalivedRunning: boolean;
  /** cloud-init finished (or the host has none). */
  booted: boolean;
  /** HAProxy's view of each server, `backend/server` → UP, DOWN, MAINT, ... */
  servers?: Record<string, string>;
  /** The operator's table (inet halb) is loaded. */
  firewallLoaded: boolean;
  /** The address this SSH session comes from, as the host sees it (after any NAT): what the
   *  host firewall must let in for the operator to keep its access. */
  sshClientAddress?: string;
  /** sshd's effective settings (`sshd -T`): passwordauthentication, permitrootlogin, ... */
  sshd?: Record<string, string>;
}

export type ApplyResult =
  | { outcome: 'unchanged' }
  | { outcome: 'applied'; started: string[] }
  | { outcome: 'invalid'; daemon: string; message: string };

const VRRP_STATES = new Set(['MASTER', 'BACKUP', 'FAULT', 'STOP']);

export class HostAgent {
  private readonly ssh: NodeSSH;
  private readonly paths: DaemonPaths;
  readonly host: string;
  /** The key the host presented, to pin on first contact. */
  readonly hostKey: string;

  private constructor(ssh: NodeSSH, host: string, hostKey: string, paths: DaemonPaths) {
    this.ssh = ssh;
    this.host = host;
    this.hostKey = hostKey;
    this.paths = paths;
  }

  /** Connects, verifying the host key against the pinned one. */
  static async connect(options: ConnectOptions, paths: DaemonPaths = DEFAULT_DAEMON_PATHS): Promise<HostAgent> {
    const ssh = new NodeSSH();
    let presented: string | undefined;
    let sock: Socket | undefined;
    try {
      sock = await openSocket(options.host, options.port ?? 22, options.timeoutMs ?? 10_000);
      await ssh.connect({
        sock,
        username: 'root',
        privateKey: options.privateKey,
        readyTimeout: options.timeoutMs ?? 10_000,
        hostVerifier: (key: Buffer) => {
          presented = hostKeyFingerprint(key);
          return options.pinnedHostKey === undefined || options.pinnedHostKey === presented;
        },
      });
    } catch (err) {
      ssh.dispose();
      sock?.destroy();
      if (presented && options.pinnedHostKey && presented !== options.pinnedHostKey) {
        throw new HostKeyChangedError(options.host, options.pinnedHostKey, presented);
      }
      throw new HostUnreachableError(`ssh to ${options.host} failed: ${(err as Error).message}`);
    }
    // A host that goes away mid-session (a droplet deleted or crashed) resets the socket; ssh2
    // reports that as an 'error' event, which must not take the whole operator down. The command
    // in flight fails on its own and the next reconcile reconnects.
    ssh.connection?.on('error', () => undefined);
    return new HostAgent(ssh, options.host, presented ?? '', paths);
  }

  /** Runs a program on stdin; never puts its text on a command line. */
  private async run(script: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const r = await this.ssh.execCommand('sh -s', { stdin: script });
    return { code: r.code, stdout: r.stdout, stderr: r.stderr };
  }

  async readState(metadataBaseURL?: string): Promise<HostState> {
    const r = await this.run(readStateScript(this.paths, metadataBaseURL));
    const m = parseMarked(r.stdout);
    const state: HostState = {
      haproxyRunning: m.get('haproxy-running') === 'yes',
      keepalivedRunning: m.get('keepalived-running') === 'yes',
      booted: m.get('booted') === 'yes',
      firewallLoaded: m.get('firewall') === 'yes',
    };
    const client = m.get('ssh-client');
    if (client && /^[0-9a-f.:]+$/i.test(client)) state.sshClientAddress = client;
    const sshd = parsePairs(m.get('sshd'));
    if (sshd) state.sshd = sshd;
    const vrrp = m.get('vrrp');
    if (vrrp && VRRP_STATES.has(vrrp)) state.vrrpState = vrrp as HostState['vrrpState'];
    const hash = m.get('hash');
    if (hash) state.configHash = hash;
    const kv = parseVersion(m.get('keepalived-version'));
    if (kv) state.keepalivedVersion = kv;
    const hv = parseVersion(m.get('haproxy-version'));
    if (hv) state.haproxyVersion = hv;
    const anchor = m.get('anchor');
    if (anchor) state.anchorIPv4 = anchor;
    const priv = m.get('private');
    if (priv) state.privateIPv4 = priv;
    const servers = parsePairs(m.get('servers'));
    if (servers) state.servers = servers;
    const id = Number(m.get('droplet-id'));
    if (Number.isInteger(id) && id > 0) state.dropletId = id;
    return state;
  }

  /**
   * Applies a node's files when their hash differs from the one on the host: stage, validate
   * with the daemons, swap, then start or reload (never restart). A failed validation leaves
   * the running config in place and returns the daemon's message.
   */
  async apply(files: readonly RemoteFile[], configHash: string, current?: HostState): Promise<ApplyResult> {
    const state = current ?? (await this.readState());
    const wantsFirewall = files.some((f) => f.path === this.paths.firewall);
    const running = state.haproxyRunning && state.keepalivedRunning && (state.firewallLoaded || !wantsFirewall);
    if (state.configHash === configHash && running) return { outcome: 'unchanged' };
    if (state.configHash !== configHash) {
      const swap = await this.run(stageValidateSwapScript(files, configHash, this.paths));
      const m = parseMarked(swap.stdout);
      if (swap.code === 3 && m.has('invalid')) {
        const message = swap.stdout.split('\n').filter((l) => l && !l.startsWith('halb:')).join(' | ').slice(0, 2000);
        return { outcome: 'invalid', daemon: m.get('invalid') ?? 'unknown', message };
      }
      if (swap.code !== 0 || !m.has('swapped')) throw new Error(`writing the config on ${this.host} failed (exit ${swap.code}): ${swap.stderr.trim().slice(0, 500)}`);
    }
    const reload = await this.run(startOrReloadScript(this.paths));
    if (reload.code !== 0) throw new Error(`starting or reloading the daemons on ${this.host} failed (exit ${reload.code}): ${reload.stderr.trim().slice(0, 500)}`);
    // Every step, as "started haproxy", "reloaded keepalived", "loaded firewall".
    const steps = reload.stdout.split('\n').filter((l) => l.startsWith('halb:')).map((l) => l.slice('halb:'.length).trim());
    return { outcome: 'applied', started: steps };
  }

  /**
   * Stops keepalived gracefully: it sends a priority-0 advert, so a BACKUP takes over at once.
   * Used before a MASTER node is replaced or removed.
   */
  async stopKeepalived(): Promise<void> {
    const r = await this.run(stopKeepalivedScript(this.paths));
    if (r.code !== 0) throw new Error(`stopping keepalived on ${this.host} failed (exit ${r.code}): ${r.stderr.trim().slice(0, 300)}`);
  }

  dispose(): void {
    this.ssh.dispose();
  }
}

// The host agent: SSH (node-ssh) to a load-balancer node, as root with the operator's key.
// Every connection verifies the host key: the first key seen is pinned by the caller (status),
// and a different key later refuses the host. Calls return their result or throw a HostError
// (./errors.ts); an aborted signal closes the connection, which ends the call in flight.
import { createHash } from 'node:crypto';
import { connect as tcpConnect, type Socket } from 'node:net';
import { NodeSSH } from 'node-ssh';
import { ConfigRefusedError, HostAuthenticationError, HostCommandError, HostKeyChangedError, HostUnreachableError } from './errors.ts';
import {
  DEFAULT_DAEMON_PATHS, applyScript, parseLogs, parseMarked, parsePairs, parseVersion, readLogsScript, readStateScript, runtimeApplyScript,
  startOrReloadScript, stopKeepalivedScript, watchVrrpScript, writePriorityOffsetScript, type DaemonPaths, type RemoteFile,
} from './remote.ts';
import { appliedFiles, planRuntimeChanges, type AppliedFiles, type RuntimePlan } from '../render/runtime.ts';
import { hashFiles } from '../render/render.ts';
import { haproxyFeatures } from '../render/versions.ts';

export { HostAuthenticationError, HostKeyChangedError, HostUnreachableError } from './errors.ts';

/** How often a quiet session asks sshd whether it is still there. */
const KEEPALIVE_INTERVAL_MS = 1_000;

/**
 * A TCP connection with Nagle's algorithm off. The agent's traffic is small messages, each
 * awaiting an answer (handshake, channel open, a program on stdin, its EOF): with Nagle on, a
 * small write waits for the peer's delayed ACK (40 ms on Linux). Against the scale benchmark's
 * SSH stand-in on loopback that cost about 400 ms per connection and 250 ms per program run
 * (5 ms and 3 ms without). The connect has its own timeout, before the SSH handshake's.
 */
function openSocket(host: string, port: number, timeoutMs: number, signal?: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = tcpConnect({ host, port, noDelay: true, ...(signal ? { signal } : {}) });
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
  /** Where the host's metadata service answers (the sandbox moves it in tests). */
  metadataBaseURL?: string;
  signal?: AbortSignal;
}

/** OpenSSH's SHA256 fingerprint of a raw host key. */
export function hostKeyFingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

export interface HostState {
  vrrpState?: 'MASTER' | 'BACKUP' | 'FAULT' | 'STOP';
  configHash?: string;
  /** When the files were last swapped in (the hash file's time), in Unix seconds. */
  configAppliedAt?: number;
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
  /** The number in keepalived's priority-offset track_file (unset: no file yet, as 0). */
  priorityOffset?: number;
  /** DigitalOcean's maintenance notice in the droplet's metadata (live_migrate), if any. */
  maintenanceEvent?: string;
}

const VRRP_STATES = new Set(['MASTER', 'BACKUP', 'FAULT', 'STOP']);

/** The state-reading program's output (readStateScript), as HostState. */
export function parseHostState(output: string): HostState {
  const m = parseMarked(output);
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
  const applied = Number(m.get('config-applied'));
  if (Number.isInteger(applied) && applied > 0) state.configAppliedAt = applied;
  const id = Number(m.get('droplet-id'));
  if (Number.isInteger(id) && id > 0) state.dropletId = id;
  const text = { configHash: m.get('hash'), anchorIPv4: m.get('anchor'), privateIPv4: m.get('private') };
  for (const [field, value] of Object.entries(text)) if (value) state[field as keyof typeof text] = value;
  const keepalivedVersion = parseVersion(m.get('keepalived-version'));
  if (keepalivedVersion) state.keepalivedVersion = keepalivedVersion;
  const haproxyVersion = parseVersion(m.get('haproxy-version'));
  if (haproxyVersion) state.haproxyVersion = haproxyVersion;
  const servers = parsePairs(m.get('servers'));
  if (servers) state.servers = servers;
  const offset = m.get('priority-offset');
  if (offset && /^-?\d{1,3}$/.test(offset)) state.priorityOffset = Number(offset);
  const event = m.get('maintenance-event');
  if (event) state.maintenanceEvent = event;
  return state;
}

/** `reloadReason`: why a change of files reloaded HAProxy instead of going through its runtime API. */
export type ApplyResult = { outcome: 'unchanged' } | { outcome: 'applied'; steps: string[]; reloadReason?: string };

/** ssh2 marks a refused key (as opposed to a broken connection) with this level. */
const isAuthenticationFailure = (err: unknown) => (err as { level?: unknown } | undefined)?.level === 'client-authentication';

/** What a node shows that stays put while it runs: read once per session. A droplet that
 *  reboots ends the session, so the next one reads them again. */
type StableFacts = Pick<HostState, 'keepalivedVersion' | 'haproxyVersion' | 'anchorIPv4' | 'privateIPv4' | 'dropletId'>;

export class HostAgent {
  private readonly ssh: NodeSSH;
  private readonly paths: DaemonPaths;
  private readonly metadataBaseURL: string | undefined;
  private facts: StableFacts | undefined;
  /** What this session last applied, with the hash it wrote: the runtime path compares against it. */
  private applied: { hash: string; files: AppliedFiles } | undefined;
  readonly host: string;
  /** The key the host presented, to pin on first contact. */
  readonly hostKey: string;

  private constructor(ssh: NodeSSH, options: ConnectOptions, hostKey: string, paths: DaemonPaths) {
    this.ssh = ssh;
    this.host = options.host;
    this.hostKey = hostKey;
    this.paths = paths;
    this.metadataBaseURL = options.metadataBaseURL;
  }

  /** Connects, verifying the host key against the pinned one. */
  static async connect(options: ConnectOptions, paths: DaemonPaths = DEFAULT_DAEMON_PATHS): Promise<HostAgent> {
    const ssh = new NodeSSH();
    let presented: string | undefined;
    let sock: Socket | undefined;
    try {
      options.signal?.throwIfAborted();
      sock = await openSocket(options.host, options.port ?? 22, options.timeoutMs ?? 10_000, options.signal);
      await ssh.connect({
        sock,
        username: 'root',
        privateKey: options.privateKey,
        readyTimeout: options.timeoutMs ?? 10_000,
        // A session kept across passes must notice a host that died without closing it (a crash,
        // a cut link): sshd answers keepalives whatever the shell does, so two unanswered in a
        // row end the session and the command in flight fails instead of waiting for the deadline.
        keepaliveInterval: KEEPALIVE_INTERVAL_MS,
        keepaliveCountMax: 2,
        hostVerifier: (key: Buffer) => {
          presented = hostKeyFingerprint(key);
          return options.pinnedHostKey === undefined || options.pinnedHostKey === presented;
        },
      });
    } catch (err) {
      ssh.dispose();
      sock?.destroy();
      if (options.signal?.aborted) throw options.signal.reason;
      if (presented && options.pinnedHostKey && presented !== options.pinnedHostKey) {
        throw new HostKeyChangedError(options.host, options.pinnedHostKey, presented);
      }
      const message = `ssh to ${options.host} failed: ${(err as Error).message}`;
      throw isAuthenticationFailure(err)
        ? new HostAuthenticationError(options.host, message)
        : new HostUnreachableError(options.host, message, { cause: err });
    }
    // A host that goes away mid-session (a droplet deleted or crashed) resets the socket; ssh2
    // reports that as an 'error' event, which must not take the whole operator down. The command
    // in flight fails on its own and the next reconcile reconnects.
    ssh.connection?.on('error', () => undefined);
    return new HostAgent(ssh, options, presented ?? '', paths);
  }

  /** Runs a program on stdin; never puts its text on a command line. Aborting closes the session. */
  private async run(script: string, signal?: AbortSignal): Promise<{ code: number | null; stdout: string; stderr: string }> {
    signal?.throwIfAborted();
    const onAbort = () => this.ssh.dispose();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const r = await this.ssh.execCommand('sh -s', { stdin: script });
      return { code: r.code, stdout: r.stdout, stderr: r.stderr };
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      throw new HostUnreachableError(this.host, `${this.host} stopped answering: ${(err as Error).message}`, { cause: err });
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** The connection is still open (a pool keeps sessions across passes while it is). */
  get alive(): boolean {
    return this.ssh.isConnected();
  }

  async readState(signal?: AbortSignal): Promise<HostState> {
    const known = this.facts?.privateIPv4 ? { privateIPv4: this.facts.privateIPv4 } : undefined;
    const r = await this.run(readStateScript(this.paths, this.metadataBaseURL, undefined, known), signal);
    const state = parseHostState(r.stdout);
    if (this.facts) return { ...state, ...this.facts };
    const { keepalivedVersion, haproxyVersion, anchorIPv4, privateIPv4, dropletId } = state;
    // Kept once every fact was read (a metadata service that did not answer is asked again).
    if (keepalivedVersion && haproxyVersion && anchorIPv4 && privateIPv4 && dropletId) {
      this.facts = { keepalivedVersion, haproxyVersion, anchorIPv4, privateIPv4, dropletId };
    }
    return state;
  }

  /**
   * Applies a node's files when their hash differs from the one on the host: stage, validate
   * with the daemons, swap, then start or reload (never restart). A refused validation leaves
   * the running config in place and throws ConfigRefusedError with the daemon's message.
   */
  async apply(files: readonly RemoteFile[], configHash: string, current: HostState, signal?: AbortSignal): Promise<ApplyResult> {
    const wantsFirewall = files.some((f) => f.path === this.paths.firewall);
    const running = current.haproxyRunning && current.keepalivedRunning && (current.firewallLoaded || !wantsFirewall);
    // The host holds these files (the hash names them): a later change may go through the runtime API.
    if (current.configHash === configHash) this.remember(files, configHash);
    if (current.configHash === configHash && running) return { outcome: 'unchanged' };
    // One round trip: stage, validate and swap the files, then HAProxy's runtime API where it
    // can take the change, else start or reload.
    const changed = current.configHash !== configHash;
    const plan = changed ? this.runtimePlan(files, current) : undefined;
    // At runtime only the files that differ from the host's are staged and swapped (haproxy.cfg,
    // a certificate): each file costs the program a few processes, most of a server edit's time.
    const script = plan?.kind === 'runtime' ? runtimeApplyScript(this.changedFiles(files), configHash, plan.commands, this.paths)
      : changed ? applyScript(files, configHash, this.paths) : startOrReloadScript(this.paths);
    const result = await this.run(script, signal);
    const marks = parseMarked(result.stdout);
    if (result.code === 3 && marks.has('invalid')) {
      const detail = result.stdout.split('\n').filter((l) => l && !l.startsWith('halb:')).join(' | ').slice(0, 2000);
      throw new ConfigRefusedError(this.host, marks.get('invalid') || 'unknown', detail);
    }
    if (changed && !marks.has('swapped')) this.fail('writing the config', result);
    if (result.code !== 0) this.fail('starting or reloading the daemons', result);
    this.remember(files, configHash);
    // Every step, as "started haproxy", "reloaded keepalived", "loaded firewall", "runtime haproxy 3 commands".
    const steps = markedSteps(result.stdout).filter((s) => s !== 'swapped');
    const reloaded = plan?.kind === 'reload' && steps.includes('reloaded haproxy');
    return { outcome: 'applied', steps, ...(reloaded ? { reloadReason: plan.reason } : {}) };
  }

  /** The files whose content differs from what this session applied last, with haproxy.cfg when
   *  a certificate changed: HAProxy checks the staged config with the staged certificate. */
  private changedFiles(files: readonly RemoteFile[]): RemoteFile[] {
    const digests = this.applied?.files.digests ?? {};
    const changed = new Set(files.filter((f) => digests[f.path] !== hashFiles([f])).map((f) => f.path));
    if (changed.size > 0) changed.add(this.paths.haproxyConfig);
    return files.filter((f) => changed.has(f.path));
  }

  private remember(files: readonly RemoteFile[], configHash: string): void {
    if (this.applied?.hash !== configHash) this.applied = { hash: configHash, files: appliedFiles(files, this.paths.haproxyConfig) };
  }

  /** HAProxy's runtime commands for a change, when the host still has what this session applied
   *  last and both daemons run; else why it reloads. */
  private runtimePlan(files: readonly RemoteFile[], current: HostState): RuntimePlan {
    const applied = this.applied;
    if (!applied || applied.hash !== current.configHash) {
      return { kind: 'reload', reason: 'the host\'s files are not the last this session applied' };
    }
    if (!current.haproxyRunning || !current.keepalivedRunning) return { kind: 'reload', reason: 'a daemon was not running' };
    // The renderer has already accepted this version for these files.
    if (!current.haproxyVersion) return { kind: 'reload', reason: 'HAProxy\'s version is not known' };
    return planRuntimeChanges(applied.files, files, this.paths.haproxyConfig, haproxyFeatures('haproxyVersion', current.haproxyVersion));
  }

  /**
   * Follows keepalived's state on the node as it changes (watchVrrpScript), over a channel of
   * this session: `onState` gets the state now and every new one. Ends with the session.
   */
  watchVrrp(onState: (state: NonNullable<HostState['vrrpState']>) => void, onEnd: () => void = () => undefined): { stop(): void } {
    const connection = this.ssh.connection;
    let channel: { close(): void } | undefined;
    let stopped = false;
    if (!connection) queueMicrotask(onEnd);
    connection?.exec('sh -s', (err, stream) => {
      if (err) return onEnd();
      channel = stream;
      stream.once('close', onEnd);
      if (stopped) stream.close();
      let pending = '';
      stream.on('data', (chunk: Buffer) => {
        pending += chunk.toString('utf8');
        const lines = pending.split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines.map((l) => l.trim())) if (VRRP_STATES.has(line)) onState(line as NonNullable<HostState['vrrpState']>);
      });
      stream.stderr.resume();
      stream.end(watchVrrpScript(this.paths));
    });
    return { stop: () => { stopped = true; channel?.close(); } };
  }

  private fail(step: string, result: { code: number | null; stderr: string }): never {
    throw new HostCommandError(this.host, `${step} on ${this.host} failed (exit ${result.code}): ${result.stderr.trim().slice(0, 500)}`);
  }

  /**
   * Stops keepalived gracefully: it sends a priority-0 advert, so a BACKUP takes over at once.
   * Used before a MASTER node is replaced or removed.
   */
  async stopKeepalived(signal?: AbortSignal): Promise<void> {
    const r = await this.run(stopKeepalivedScript(this.paths), signal);
    if (r.code !== 0) this.fail('stopping keepalived', r);
  }

  /** Writes keepalived's priority offset (a planned failover, maintenance); no daemon reloads. */
  async setPriorityOffset(offset: number, signal?: AbortSignal): Promise<void> {
    const r = await this.run(writePriorityOffsetScript(offset, this.paths), signal);
    if (r.code !== 0 || parseMarked(r.stdout).get('priority-offset') !== String(offset)) this.fail('writing the priority offset', r);
  }

  /** The last lines of the failover script's log and of HAProxy's. */
  async readLogs(lines: number, signal?: AbortSignal): Promise<ReturnType<typeof parseLogs>> {
    const r = await this.run(readLogsScript(lines, this.paths), signal);
    if (r.code !== 0) this.fail('reading the logs', r);
    return parseLogs(r.stdout);
  }

  close(): void {
    this.ssh.dispose();
  }
}

/** "halb:started haproxy" lines, as "started haproxy". */
function markedSteps(output: string): string[] {
  return output.split('\n').filter((l) => l.startsWith('halb:')).map((l) => l.slice('halb:'.length).trim());
}

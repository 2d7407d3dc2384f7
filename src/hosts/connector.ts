// The seam between the controller and the nodes: it opens a session to a node and the session
// reads state, applies files and stops keepalived. Production uses SSH (HostAgent); the
// reconciler's in-process tests use a stand-in host with the same contract. Failures are
// HostErrors (./errors.ts).
import { HostAgent, type ApplyResult, type HostState } from './agent.ts';
import { SessionPool } from './pool.ts';
import type { DaemonPaths, RemoteFile } from './remote.ts';

export interface HostTarget {
  /** Where the node's SSH server answers. */
  host: string;
  port: number;
  privateKey: string;
  /** The pinned host key fingerprint; unset on first contact. */
  pinnedHostKey?: string;
}

export interface HostSession {
  /** The host key the node presented (verified against the pin, if there was one). */
  readonly hostKey: string;
  readState(signal?: AbortSignal): Promise<HostState>;
  apply(files: readonly RemoteFile[], configHash: string, current: HostState, signal?: AbortSignal): Promise<ApplyResult>;
  stopKeepalived(signal?: AbortSignal): Promise<void>;
  /** Calls `onState` with keepalived's state now and at each change, while the session lives;
   *  absent where a host cannot be followed. */
  watchVrrp?(onState: (state: NonNullable<HostState['vrrpState']>) => void, onEnd?: () => void): { stop(): void };
  /** Writes the number keepalived adds to the node's priority (planned failover, maintenance). */
  setPriorityOffset(offset: number, signal?: AbortSignal): Promise<void>;
  close(): void;
}

export interface HostConnector {
  open(target: HostTarget, signal?: AbortSignal): Promise<HostSession>;
}

export interface SshConnectorOptions {
  timeoutMs?: number;
  metadataBaseURL?: string;
  paths?: DaemonPaths;
}

/** Opens one SSH session to a node, as root with the operator's key. */
function connectOverSsh(options: SshConnectorOptions) {
  return (target: HostTarget, signal?: AbortSignal, timeoutMs?: number) => HostAgent.connect({
    ...target,
    timeoutMs: timeoutMs ?? options.timeoutMs ?? 10_000,
    ...(options.metadataBaseURL ? { metadataBaseURL: options.metadataBaseURL } : {}),
    ...(signal ? { signal } : {}),
  }, options.paths);
}

/** Nodes over SSH, one session per call. */
export function sshHostConnector(options: SshConnectorOptions = {}): HostConnector {
  return { open: connectOverSsh(options) };
}

/** Nodes over SSH, each session kept open across passes (./pool.ts): what the operator uses. */
export function pooledSshHostConnector(options: SshConnectorOptions & { idleMs?: number; maxSessions?: number } = {}): SessionPool {
  const { idleMs, maxSessions } = options;
  const limits = { ...(idleMs ? { idleMs } : {}), ...(maxSessions !== undefined ? { maxSessions } : {}) };
  return new SessionPool({ connect: connectOverSsh(options), ...limits });
}

export type { ApplyResult, HostState, RemoteFile };

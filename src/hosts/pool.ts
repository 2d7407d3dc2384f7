// Persistent SSH sessions, one per node, kept across reconcile passes: a pass that finds a
// live session for the node (same address, same key, the pinned host key) uses it, so an edit
// costs no handshake. A session that breaks is closed and the next pass connects again. The
// pool is a HostConnector like the plain one: closing a session a pass got from it only
// returns it to the pool.
//
// The pool keeps at most `maxSessions` (each costs the operator about 50 KB): past that, a pass
// gets a session of its own, closed when the pass ends, and without a keepalived watch, so such
// a node is read at each pass, as before sessions were kept. Kept sessions are not evicted for
// newer ones (that would only trade one node's watch for another's, at a handshake per pass);
// an idle one closes after `idleMs`, and a broken one (a deleted droplet's) frees its place.
import type { HostAgent } from './agent.ts';
import type { HostConnector, HostSession, HostTarget } from './connector.ts';
import { HostUnreachableError } from './errors.ts';

interface PooledEntry {
  agent: HostAgent;
  privateKey: string;
  lastUsed: number;
}

export interface SessionPoolOptions {
  /** Opens one real session (HostAgent.connect), within timeoutMs when given. */
  connect: (target: HostTarget, signal?: AbortSignal, timeoutMs?: number) => Promise<HostAgent>;
  /** A session unused this long is closed (default 10 minutes). */
  idleMs?: number;
  /** Sessions kept at most (default DEFAULT_MAX_SESSIONS). */
  maxSessions?: number;
  now?: () => number;
}

/** How long a connection to a host whose session just broke may take: a live host on a healthy
 *  network answers well within it; a dead one is reported now, not at the connect timeout. */
const RECONNECT_AFTER_BREAK_MS = 2_000;

/** Sessions kept by default: 500 load balancers of 2 nodes. What fits the Deployment's 256Mi with
 *  1,000 of them (docs/benchmarks.md, scale); `halb operator --max-ssh-sessions` sets it. */
export const DEFAULT_MAX_SESSIONS = 1_000;

export class SessionPool implements HostConnector {
  /** Sessions by address. A broken one stays (closed) until replaced: the next connection then
   *  gets a short deadline. */
  private readonly entries = new Map<string, PooledEntry>();
  private readonly connect: SessionPoolOptions['connect'];
  private readonly idleMs: number;
  private readonly maxSessions: number;
  private readonly now: () => number;
  /** Sessions opened, for tests and benchmarks that count handshakes. */
  connections = 0;

  constructor(options: SessionPoolOptions) {
    this.connect = options.connect;
    this.idleMs = options.idleMs ?? 600_000;
    this.maxSessions = options.maxSessions ?? DEFAULT_MAX_SESSIONS;
    this.now = options.now ?? Date.now;
  }

  async open(target: HostTarget, signal?: AbortSignal): Promise<HostSession> {
    const key = `${target.host}:${target.port}`;
    this.closeIdle();
    const entry = this.entries.get(key);
    const reusable = entry?.agent.alive && entry.privateKey === target.privateKey &&
      (target.pinnedHostKey === undefined || target.pinnedHostKey === entry.agent.hostKey);
    if (reusable) {
      entry.lastUsed = this.now();
      return this.lease(key, entry);
    }
    // A new key (a rotation) is tried on a new connection; until it works, the old session stays.
    // After a session broke the host is likely down: fail fast so the pass reports it at once.
    const justBroke = entry !== undefined && !entry.agent.alive;
    let agent: HostAgent;
    try {
      agent = await this.connect(target, signal, justBroke ? RECONNECT_AFTER_BREAK_MS : undefined);
    } catch (err) {
      if (justBroke) this.entries.delete(key); // the short deadline is for the first try only
      throw err;
    }
    this.connections++;
    if (!entry && this.entries.size >= this.maxSessions) this.dropBroken();
    if (!entry && this.entries.size >= this.maxSessions) return passOnly(agent);
    if (entry) entry.agent.close();
    const fresh = { agent, privateKey: target.privateKey, lastUsed: this.now() };
    this.entries.set(key, fresh);
    return this.lease(key, fresh);
  }

  /** Sessions kept now (the halb_ssh_sessions gauge). */
  get size(): number {
    return this.entries.size;
  }

  /** Closes every session (the controller stopped). */
  closeAll(): void {
    for (const entry of this.entries.values()) entry.agent.close();
    this.entries.clear();
  }

  private dropBroken(): void {
    for (const [key, entry] of this.entries) if (!entry.agent.alive) this.entries.delete(key);
  }

  private closeIdle(): void {
    const cutoff = this.now() - this.idleMs;
    for (const [key, entry] of this.entries) {
      if (entry.lastUsed >= cutoff) continue;
      entry.agent.close();
      this.entries.delete(key);
    }
  }

  /** The pooled session as a pass sees it: close() gives it back; a broken one is closed. */
  private lease(key: string, entry: PooledEntry): HostSession {
    const dropIfBroken = <T>(call: Promise<T>): Promise<T> => call.catch((err: unknown) => {
      if (err instanceof HostUnreachableError && this.entries.get(key) === entry) entry.agent.close();
      throw err;
    });
    const agent = entry.agent;
    return { ...callsOf(agent, dropIfBroken), watchVrrp: (onState, onEnd) => agent.watchVrrp(onState, onEnd), close: () => undefined };
  }
}

/** A session past the budget: the pass's own, closed with it, and not followed. */
function passOnly(agent: HostAgent): HostSession {
  return { ...callsOf(agent, (call) => call), close: () => agent.close() };
}

/** The agent's calls as a session offers them, each passed through `guard`. */
function callsOf(agent: HostAgent, guard: <T>(call: Promise<T>) => Promise<T>): Omit<HostSession, 'watchVrrp' | 'close'> {
  return {
    hostKey: agent.hostKey,
    readState: (signal) => guard(agent.readState(signal)),
    apply: (files, hash, current, signal) => guard(agent.apply(files, hash, current, signal)),
    stopKeepalived: (signal) => guard(agent.stopKeepalived(signal)),
    setPriorityOffset: (offset, signal) => guard(agent.setPriorityOffset(offset, signal)),
  };
}

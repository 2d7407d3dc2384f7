// How the operator logs in to its nodes, and SSH key rotation. It connects with the first key a
// node takes: the Secret's key, then the previous one (the Secret's `<key>.previous`, or the key
// that last worked on this droplet). A node reached with an older key keeps it in its
// authorized_keys next to the new one; once the new key works there, the old one is dropped. So
// access holds at every step of a rotation.
import ssh2 from 'ssh2';
import type { HostConnector, HostSession } from '../hosts/connector.ts';
import type { Logger } from '../log.ts';
import { HostAuthenticationError } from '../hosts/errors.ts';

/** The OpenSSH public key line for a private key (PEM or OpenSSH format). */
export function publicKeyOf(privateKey: string): string {
  const parsed = ssh2.utils.parseKey(privateKey);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key instanceof Error) throw new Error(`the SSH private key cannot be read: ${key instanceof Error ? key.message : 'no key'}`);
  return `${key.type} ${key.getPublicSSH().toString('base64')} halb-operator`;
}

/** The key that last logged in to each droplet: what a rotation falls back to. Lives as long
 *  as the operator process; a restarted operator relies on `<key>.previous` instead. */
export class LoginKeys {
  private readonly byDroplet = new Map<number, string>();

  lastWorked(dropletId: number): string | undefined {
    return this.byDroplet.get(dropletId);
  }

  worked(dropletId: number, privateKey: string): void {
    this.byDroplet.set(dropletId, privateKey);
  }

  /** A droplet that is gone needs no memory. */
  forgetExcept(dropletIds: ReadonlySet<number>): void {
    for (const id of this.byDroplet.keys()) if (!dropletIds.has(id)) this.byDroplet.delete(id);
  }
}

export interface OperatorKeys {
  /** The Secret's key. */
  current: string;
  /** `<key>.previous`, during a rotation. */
  previous?: string;
}

export interface NodeLogin {
  session: HostSession;
  /** The private key that logged in. */
  loginKey: string;
}

export interface NodeAddress {
  dropletId: number;
  host: string;
  port: number;
  pinnedHostKey?: string;
}

interface LoginContext {
  hosts: HostConnector;
  loginKeys: LoginKeys;
  signal: AbortSignal;
  log: Logger;
}

/** Logs in with the first key the node takes; a key refused (not a broken connection) moves on to the next. */
export async function loginToNode(ctx: LoginContext, keys: OperatorKeys, node: NodeAddress & { name: string }): Promise<NodeLogin> {
  const remembered = ctx.loginKeys.lastWorked(node.dropletId);
  const candidates = [...new Set([keys.current, ...(keys.previous ? [keys.previous] : []), ...(remembered ? [remembered] : [])])];
  for (const [i, privateKey] of candidates.entries()) {
    try {
      const target = { host: node.host, port: node.port, privateKey, ...(node.pinnedHostKey ? { pinnedHostKey: node.pinnedHostKey } : {}) };
      const session = await ctx.hosts.open(target, ctx.signal);
      ctx.loginKeys.worked(node.dropletId, privateKey);
      if (i > 0) ctx.log.info({ node: node.name }, 'connected with the previous SSH key');
      return { session, loginKey: privateKey };
    } catch (err) {
      if (!(err instanceof HostAuthenticationError) || i === candidates.length - 1) throw err;
    }
  }
  throw new Error('no SSH key to try');
}

/** root's authorized_keys on a node: the operator's key, the older key it still logs in with
 *  during a rotation, and the people's keys (spec.droplets.sshKeys). */
export function authorizedKeysFor(keys: OperatorKeys, loginKey: string | undefined, peopleKeys: readonly string[]): string[] {
  const operator = publicKeyOf(keys.current);
  const older = loginKey && loginKey !== keys.current ? [publicKeyOf(loginKey)] : [];
  return [operator, ...older, ...peopleKeys];
}

// The DigitalOcean provider the operator uses. One client per token; every resync observes all
// HALoadBalancers with two paginated lists (droplets by the common tag, reserved IPs), so its
// cost grows with pages, not with the number of objects.
import { createHash } from 'node:crypto';
import { createDigitalOceanClient } from './client.ts';
import type { ClientOptions, DigitalOceanClient } from './client.ts';
import { cloudInit, type NodeHostKey } from './cloud-init.ts';
import { PER_PAGE, deleteDroplet, ensureNodeDroplets, listDropletsByTag, toNodeDroplet, waitForActive } from './droplets.ts';
import type { EnsureDropletsResult, NodeDroplet, NodeSpec } from './droplets.ts';
import { DEFAULT_WAIT, poll, type WaitSettings } from './poll.ts';
import { DigitalOceanError } from './errors.ts';
import { COMMON_TAG, uidTag } from './naming.ts';
import { ensureBackendFirewall, listFirewalls, pruneBackendFirewalls } from './firewalls.ts';
import type { ApiFirewall, BackendFirewallSpec } from './firewalls.ts';
import {
  adoptReservedIp, assignReservedIp, createReservedIp, deleteReservedIp, getReservedIp, listReservedIps,
  requestAssign, requestDelete, requestUnassign,
  toReservedIpInfo, unassignReservedIp, waitForAction,
} from './reserved-ips.ts';
import type { ActionRequest, ReservedIpInfo } from './reserved-ips.ts';

export type { NodeDroplet, NodeSpec, EnsureDropletsResult } from './droplets.ts';
export type { WaitSettings } from './poll.ts';
export type { ActionRequest, ReservedIpInfo } from './reserved-ips.ts';
export { withAbortSignal } from './client.ts';
export type { BackendFirewallSpec } from './firewalls.ts';
export { DigitalOceanError } from './errors.ts';

/** What one resync sees of DigitalOcean, for every HALoadBalancer at once. */
export interface Inventory {
  /** halb node droplets by owner UID, each list in index order. */
  nodesByUid: Map<string, NodeDroplet[]>;
  reservedIps: ReservedIpInfo[];
  /** Which reserved IP each droplet holds. */
  reservedIpByDroplet: Map<number, ReservedIpInfo>;
  reservedIpByAddress: Map<string, ReservedIpInfo>;
  /** Pages (requests) this observation cost: what looking again costs. */
  pages: number;
}

export interface ProviderOptions extends ClientOptions {
  wait?: Partial<WaitSettings>;
}

export interface InfrastructureSpec extends Omit<NodeSpec, 'userData'> {
  /** spec.floatingIP.address: adopt this address; empty = find ours or create one. */
  floatingIPAddress?: string;
  userData?: NodeSpec['userData'];
}

export interface InfrastructureResult extends EnsureDropletsResult {
  reservedIp: ReservedIpInfo;
}

/** The MD5 fingerprint DigitalOcean gives an OpenSSH public key. */
export function sshKeyFingerprint(publicKey: string): string {
  const blob = publicKey.trim().split(/\s+/)[1];
  if (blob === undefined || !/^[A-Za-z0-9+/]+={0,2}$/.test(blob)) {
    throw new Error('SSH public key is not in OpenSSH format ("ssh-ed25519 AAAA... comment")');
  }
  return createHash('md5').update(Buffer.from(blob, 'base64')).digest('hex').match(/../g)!.join(':');
}

export class DigitalOceanProvider {
  readonly client: DigitalOceanClient;
  readonly wait: WaitSettings;

  private readonly publicKeys = new Map<string, string>();

  constructor(options: ProviderOptions) {
    this.client = createDigitalOceanClient(options);
    this.wait = { ...DEFAULT_WAIT, ...options.wait };
  }

  /** Two paginated lists, shared by every HALoadBalancer in this resync. */
  async observe(): Promise<Inventory> {
    const [apiReserved, droplets] = await Promise.all([listReservedIps(this.client), listDropletsByTag(this.client, COMMON_TAG)]);
    const reserved = apiReserved.map(toReservedIpInfo);
    const addresses = new Set(reserved.map((r) => r.ip));
    const nodes = droplets.map((d) => toNodeDroplet(d, addresses)).filter((n): n is NodeDroplet => n !== undefined);
    const nodesByUid = new Map<string, NodeDroplet[]>();
    for (const n of nodes) {
      const list = nodesByUid.get(n.uid) ?? [];
      list.push(n);
      nodesByUid.set(n.uid, list);
    }
    for (const list of nodesByUid.values()) list.sort((a, b) => a.index - b.index || a.id - b.id);
    const reservedIpByDroplet = new Map<number, ReservedIpInfo>();
    for (const r of reserved) if (r.dropletId !== null) reservedIpByDroplet.set(r.dropletId, r);
    const pages = Math.max(1, Math.ceil(droplets.length / PER_PAGE)) + Math.max(1, Math.ceil(apiReserved.length / PER_PAGE));
    return { nodesByUid, reservedIps: reserved, reservedIpByDroplet, reservedIpByAddress: new Map(reserved.map((r) => [r.ip, r])), pages };
  }

  ensureDroplets(spec: NodeSpec): Promise<EnsureDropletsResult> {
    return ensureNodeDroplets(this.client, spec);
  }

  waitForActive(uid: string, ids: readonly number[]): Promise<NodeDroplet[]> {
    return waitForActive(this.client, uid, ids, this.wait);
  }

  deleteDroplet(id: number): Promise<void> {
    return deleteDroplet(this.client, id);
  }

  /** Deletes every droplet of one HALoadBalancer in one request (DELETE /v2/droplets?tag_name=). */
  async deleteNodesOf(uid: string): Promise<void> {
    try {
      await this.client.dots.droplet.deleteDropletsByTag({ tag_name: uidTag(uid) });
      this.client.logger.info({ uid }, 'droplets deleted by owner tag');
    } catch (err) {
      // No such tag: nothing was ever created, or it is all gone already.
      if (!(err instanceof DigitalOceanError && err.status === 404)) throw err;
    }
  }

  /** Reserves an unassigned address in a region. Not idempotent by itself (reserved IPs carry no
   * tags): the caller records the address (status.floatingIP) before anything else. */
  async createReservedIpInRegion(region: string): Promise<ReservedIpInfo> {
    return toReservedIpInfo((await createReservedIp(this.client, { region })).reservedIp);
  }

  /**
   * The object's reserved IP: the adopted address if one is named, else the one already on one
   * of its droplets, else a new one reserved straight onto node 0 (which must be active). An IP
   * reserved onto a droplet can never be orphaned by a crash: a re-run finds it on the droplet.
   */
  async ensureReservedIp(spec: { address?: string; region: string; nodes: readonly NodeDroplet[] }): Promise<ReservedIpInfo> {
    if (spec.address) return this.adoptReservedIp(spec.address, spec.region);
    const ids = new Set(spec.nodes.map((n) => n.id));
    // An address reserved onto our droplet shows the droplet only once its action completes;
    // until then it is locked and unassigned. Wait for such addresses before creating one.
    const ours = await poll(`reserved IPs in ${spec.region} to settle`, async () => {
      const all = (await listReservedIps(this.client)).map(toReservedIpInfo);
      const found = all.find((r) => r.dropletId !== null && ids.has(r.dropletId));
      if (found) return found;
      return all.some((r) => r.locked && r.dropletId === null && r.region === spec.region) ? undefined : null;
    }, this.wait, this.client.sleep, { method: 'GET', path: '/reserved_ips' });
    if (ours) return ours;
    const first = spec.nodes[0];
    if (!first) throw new Error('ensureReservedIp needs at least one node droplet');
    const { reservedIp, actionId } = await createReservedIp(this.client, { dropletId: first.id });
    if (actionId !== undefined) await waitForAction(this.client, actionId, this.wait);
    const now = await getReservedIp(this.client, reservedIp.ip);
    return toReservedIpInfo(now ?? reservedIp);
  }

  /** A named address, which must exist in the region (a terminal DigitalOceanError otherwise). */
  async adoptReservedIp(address: string, region: string): Promise<ReservedIpInfo> {
    return toReservedIpInfo(await adoptReservedIp(this.client, address, region));
  }

  /**
   * Reserves a new address straight onto a droplet, without waiting for the assign action: the
   * address is locked and shows no droplet until the action completes. An address reserved onto
   * a droplet can never be orphaned by a crash: once the action completes it is on the droplet.
   */
  async requestReservedIpOnto(dropletId: number): Promise<ReservedIpInfo> {
    const { reservedIp } = await createReservedIp(this.client, { dropletId });
    return { ...toReservedIpInfo(reservedIp), locked: true };
  }

  /** Asks for an assign and returns at once: started, done (already there) or busy. */
  requestAssign(ip: string, dropletId: number): Promise<ActionRequest> {
    return requestAssign(this.client, ip, dropletId);
  }

  requestUnassign(ip: string): Promise<ActionRequest> {
    return requestUnassign(this.client, ip);
  }

  /** Deletes the address once: 'deleted' (or gone), or 'busy' while an action runs on it. */
  requestDeleteReservedIp(ip: string): Promise<'deleted' | 'busy'> {
    return requestDelete(this.client, ip);
  }

  /** Droplets, then `active`, then the reserved IP: every step safe to repeat after a crash. */
  async ensureInfrastructure(spec: InfrastructureSpec): Promise<InfrastructureResult> {
    const userData = spec.userData ?? ((name: string, _index: number, hostKey?: NodeHostKey) =>
      cloudInit({ objectName: spec.objectName, nodeName: name, ...(hostKey ? { hostKey } : {}) }));
    const droplets = await this.ensureDroplets({ ...spec, userData });
    const nodes = await this.waitForActive(spec.uid, droplets.nodes.map((n) => n.id));
    const reservedIp = await this.ensureReservedIp({
      ...(spec.floatingIPAddress ? { address: spec.floatingIPAddress } : {}), region: spec.region, nodes,
    });
    return { ...droplets, nodes, reservedIp };
  }

  /**
   * Which droplets of the account share a physical machine (GET /v2/reports/droplet_neighbors_ids):
   * one list of droplet ids per machine that runs more than one. One request for every object.
   */
  async neighborGroups(): Promise<number[][]> {
    const res = await this.client.http.get('/reports/droplet_neighbors_ids');
    const groups = (res.data as { neighbor_ids?: unknown }).neighbor_ids;
    return Array.isArray(groups)
      ? groups.filter(Array.isArray).map((g) => (g as unknown[]).filter((id): id is number => typeof id === 'number'))
      : [];
  }

  /** Powers a droplet on (a node stopped during maintenance); the action completes later. */
  async powerOnDroplet(id: number): Promise<void> {
    await this.client.dots.droplet.powerOnDroplet({ droplet_id: id });
    this.client.logger.info({ id }, 'droplet power-on requested');
  }

  /** Droplets carrying a tag (a backend's dropletTag), by name and VPC address. */
  async taggedDroplets(tag: string): Promise<{ name: string; privateIPv4: string }[]> {
    const droplets = await listDropletsByTag(this.client, tag);
    return droplets.flatMap((d) => {
      const privateIPv4 = d.networks?.v4?.find((n) => n.type === 'private')?.ip_address;
      return privateIPv4 && d.status === 'active' ? [{ name: d.name, privateIPv4 }] : [];
    }).sort((a, b) => a.name.localeCompare(b.name) || a.privateIPv4.localeCompare(b.privateIPv4));
  }

  getReservedIp(ip: string): Promise<ReservedIpInfo | undefined> {
    return getReservedIp(this.client, ip).then((r) => (r ? toReservedIpInfo(r) : undefined));
  }

  assignReservedIp(ip: string, dropletId: number): Promise<{ changed: boolean }> {
    return assignReservedIp(this.client, ip, dropletId, this.wait);
  }

  unassignReservedIp(ip: string): Promise<{ changed: boolean }> {
    return unassignReservedIp(this.client, ip, this.wait);
  }

  deleteReservedIp(ip: string): Promise<void> {
    return deleteReservedIp(this.client, ip, this.wait);
  }

  listFirewalls(): Promise<ApiFirewall[]> {
    return listFirewalls(this.client);
  }

  ensureBackendFirewall(spec: BackendFirewallSpec, existing?: ApiFirewall[]): Promise<{ id: string; changed: boolean }> {
    return ensureBackendFirewall(this.client, spec, existing);
  }

  pruneBackendFirewalls(uid: string, keepBackends: readonly string[], existing?: ApiFirewall[]): Promise<string[]> {
    return pruneBackendFirewalls(this.client, uid, keepBackends, existing);
  }

  /** Registers the operator's SSH public key once; returns its fingerprint for droplet creation.
   * Looks it up by fingerprint (GET /account/keys/{fp}), not by listing: listing is limited to
   * 10 requests a minute. */
  /**
   * The public halves of account SSH keys named by id or fingerprint (spec.droplets.sshKeys),
   * for the nodes' authorized_keys. A key's public half never changes, so each is read once.
   */
  async sshPublicKeys(ids: readonly string[]): Promise<string[]> {
    const out: string[] = [];
    for (const id of ids) {
      let key = this.publicKeys.get(id);
      if (!key) {
        const { data } = await this.client.dots.sshKey.getSshKey({ ssh_key_id: id });
        key = data.ssh_key.public_key.trim();
        this.publicKeys.set(id, key);
      }
      out.push(key);
    }
    return out;
  }

  async ensureSshKey(publicKey: string, name: string): Promise<string> {
    const fingerprint = sshKeyFingerprint(publicKey);
    try {
      await this.client.dots.sshKey.getSshKey({ ssh_key_id: fingerprint });
      return fingerprint;
    } catch (err) {
      if (!(err instanceof DigitalOceanError && err.status === 404)) throw err;
    }
    try {
      await this.client.dots.sshKey.createSshKey({ name, public_key: publicKey.trim() });
      this.client.logger.info({ fingerprint, name }, 'SSH key registered');
    } catch (err) {
      // Registered meanwhile (or by an earlier run whose answer was lost): that is the goal.
      if (!(err instanceof DigitalOceanError && err.status === 422 && /already in use/i.test(err.message))) throw err;
    }
    return fingerprint;
  }
}

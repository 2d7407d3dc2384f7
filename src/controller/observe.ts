// Observe: what DigitalOcean and the hosts show for one object, as one value (Observed) that
// the planner and the status decide from, plus the open host sessions that acting uses.
import type { HALoadBalancer } from '../api/types.ts';
import type { DigitalOceanProvider, Inventory, NodeDroplet, ReservedIpInfo } from '../digitalocean/provider.ts';
import type { HostState } from '../hosts/agent.ts';
import type { HostSession } from '../hosts/connector.ts';
import { HostError, HostKeyChangedError } from '../hosts/errors.ts';
import type { PassContext } from './context.ts';
import { isAborted } from './errors.ts';
import type { Observed, ObservedHost } from './observed.ts';
import { loginToNode, type OperatorKeys } from './ssh-access.ts';

/** An open session to a node, the state it read, and the key that logged in. */
export interface NodeConnection {
  session: HostSession;
  state: HostState;
  loginKey: string;
}

export interface Observation {
  observed: Observed;
  /** The object's droplets as DigitalOcean lists them. */
  droplets: NodeDroplet[];
  /** Sessions by node name, for the nodes that answered. The pipeline closes them. */
  connections: Map<string, NodeConnection>;
}

/**
 * The object's reserved IP: the adopted address, else the one on one of its droplets, else the
 * one status recorded when it was reserved, while that address is on no droplet (an unassign,
 * or its holder deleted): still ours, not to be reserved twice.
 */
export function findReservedIP(object: HALoadBalancer, inventory: Inventory, droplets: readonly NodeDroplet[]): ReservedIpInfo | undefined {
  const adopted = object.spec.floatingIP.address;
  if (adopted) return inventory.reservedIpByAddress.get(adopted);
  const onNode = droplets.map((d) => inventory.reservedIpByDroplet.get(d.id)).find((r) => r !== undefined);
  if (onNode) return onNode;
  const recorded = object.status?.floatingIP ? inventory.reservedIpByAddress.get(object.status.floatingIP) : undefined;
  return recorded?.dropletId === null ? recorded : undefined;
}

const objectKeyOf = (object: HALoadBalancer) => `${object.metadata.namespace ?? 'default'}/${object.metadata.name}`;

export async function observe(
  ctx: PassContext, object: HALoadBalancer, provider: DigitalOceanProvider, keys: OperatorKeys,
): Promise<Observation> {
  const inventory = await ctx.shared.inventory(provider);
  const droplets = inventory.nodesByUid.get(object.metadata.uid ?? '') ?? [];
  const reservedIP = findReservedIP(object, inventory, droplets);
  // An address being reserved onto a droplet shows no droplet until its action completes: one
  // in this region may be ours, reserved by a pass whose answer or status write was lost.
  const settling = inventory.reservedIps.some((r) => r.locked && r.dropletId === null && r.region === object.spec.region);
  const connections = new Map<string, NodeConnection>();
  const [hosts, neighborGroups] = await Promise.all([
    observeHosts(ctx, object, droplets, keys, connections), colocatedDroplets(ctx, provider, droplets),
  ]);
  ctx.vrrpWatches?.keepOnly(objectKeyOf(object), new Set(connections.keys()));
  const current = reservedIP && moving(reservedIP, droplets, hosts)
    ? await provider.getReservedIp(reservedIP.ip) ?? reservedIP
    : reservedIP;
  const observed: Observed = {
    droplets: droplets.map((d) => ({ ...d })),
    hosts,
    ...(current ? { reservedIP: { ip: current.ip, dropletId: current.dropletId, locked: current.locked } } : {}),
    ...(settling && !reservedIP ? { reservedIPSettling: true } : {}),
    ...(neighborGroups ? { neighborGroups } : {}),
  };
  return { observed, droplets, connections };
}

/** The object's droplets that share a physical machine, from DigitalOcean's neighbours report.
 *  A report that cannot be read is left out: placement is advice, not worth failing a pass. */
async function colocatedDroplets(
  ctx: PassContext, provider: DigitalOceanProvider, droplets: readonly NodeDroplet[],
): Promise<number[][] | undefined> {
  if (droplets.length < 2) return [];
  try {
    const ours = new Set(droplets.map((d) => d.id));
    return (await ctx.shared.neighborGroups(provider))
      .map((group) => group.filter((id) => ours.has(id)))
      .filter((group) => group.length > 1);
  } catch (err) {
    if (isAborted(err, ctx.signal)) throw err;
    ctx.log.warn({ err }, 'neighbours report not read');
    return undefined;
  }
}

/**
 * The shared inventory may be a couple of seconds old. While the reserved IP moves (an action
 * in progress, or keepalived's MASTER is not yet its holder: a failover under way) the pass
 * reads it from DigitalOcean again, one request, so status follows the failover at once.
 */
function moving(reservedIP: ReservedIpInfo, droplets: readonly NodeDroplet[], hosts: Record<string, ObservedHost>): boolean {
  if (reservedIP.locked) return true;
  const masters = droplets.filter((d) => hosts[d.name]?.vrrpState === 'MASTER');
  return masters.length === 1 && masters[0]!.id !== reservedIP.dropletId;
}

async function observeHosts(ctx: PassContext, object: HALoadBalancer, droplets: readonly NodeDroplet[], keys: OperatorKeys,
  connections: Map<string, NodeConnection>): Promise<Record<string, ObservedHost>> {
  const hosts: Record<string, ObservedHost> = {};
  const pins = new Map((object.status?.nodes ?? []).map((n) => [n.name, n]));
  await Promise.all(droplets.filter((d) => d.status === 'active' && d.publicIPv4).map(async (droplet) => {
    // The key the operator made for the droplet, pinned by its tag since creation; else, for a
    // droplet made before that, the key pinned at first contact (status) for this droplet.
    const pinned = pins.get(droplet.name);
    const pinnedHostKey = droplet.hostKeyPin ?? (pinned?.dropletID === droplet.id ? pinned.hostKey : undefined);
    const endpoint = ctx.settings.sshEndpoint?.(droplet.publicIPv4!) ?? { host: droplet.publicIPv4!, port: 22 };
    try {
      const node = { name: droplet.name, dropletId: droplet.id, ...endpoint, ...(pinnedHostKey ? { pinnedHostKey } : {}) };
      const login = await loginToNode(ctx, keys, node);
      const state = await login.session.readState(ctx.signal).catch((err: unknown) => {
        login.session.close();
        throw err;
      });
      connections.set(droplet.name, { ...login, state });
      hosts[droplet.name] = observedHost(state, login.session.hostKey);
      ctx.vrrpWatches?.follow(objectKeyOf(object), droplet.name, login.session);
    } catch (err) {
      if (!(err instanceof HostError)) throw err;
      hosts[droplet.name] = {
        reachable: false, error: err.message, ...(err instanceof HostKeyChangedError ? { hostKeyChanged: true } : {}),
      };
    }
  }));
  return hosts;
}

function observedHost(state: HostState, hostKey: string): ObservedHost {
  const { booted, sshClientAddress, dropletId: _dropletId, ...read } = state;
  return {
    ...read,
    reachable: booted,
    hostKey,
    ...(sshClientAddress ? { operatorAddress: sshClientAddress } : {}),
    ...(booted ? {} : { error: 'cloud-init has not finished' }),
  };
}

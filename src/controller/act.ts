// Act: carries out the plan's actions, each idempotent and found again after a crash, each
// recorded as an Event. Nothing here waits for DigitalOcean: an action it starts (an assign, a
// reserved IP being reserved onto a droplet) shows as `locked` on the next pass, which the
// planner reads as "busy, look again soon".
import type { HALoadBalancer } from '../api/types.ts';
import { cloudInit } from '../digitalocean/cloud-init.ts';
import type { DigitalOceanProvider } from '../digitalocean/provider.ts';
import type { ApplyResult } from '../hosts/connector.ts';
import { ConfigRefusedError } from '../hosts/errors.ts';
import { DEFAULT_PATHS } from '../render/index.ts';
import { renderSshdDropIn } from '../render/hardening.ts';
import type { PassContext } from './context.ts';
import type { Desired } from './desired.ts';
import { isNotFound, statusCodeOf, terminal, terminalReasons } from './errors.ts';
import type { Observation } from './observe.ts';
import type { Observed } from './observed.ts';
import type { Action } from './plan.ts';
import { publicKeyOf, type OperatorKeys } from './ssh-access.ts';

export interface ActOutcome {
  /** The observation, updated with what acting changed (config applied, an address reserved). */
  observed: Observed;
  /** The actions that changed something, in the order they were carried out. */
  done: Action[];
}

interface ActInput {
  object: HALoadBalancer;
  provider: DigitalOceanProvider;
  keys: OperatorKeys;
  observation: Observation;
  desired: Desired;
}

type ActionOf<K extends Action['kind']> = Extract<Action, { kind: K }>;

export async function act(ctx: PassContext, input: ActInput, actions: readonly Action[]): Promise<ActOutcome> {
  const observed = structuredClone(input.observation.observed);
  const done: Action[] = [];
  const creates = actions.filter((a): a is ActionOf<'CreateDroplet'> => a.kind === 'CreateDroplet');
  if (creates.length) done.push(...(await createDroplets(ctx, input, creates)));
  for (const action of actions) {
    if (action.kind === 'CreateDroplet' || action.kind === 'ApplyConfig') continue;
    if (await actOnCloudOrHost(ctx, input, observed, action)) done.push(action);
  }
  // Config goes to every node at once: a reload is seamless, and validation is per node.
  const applies = actions.filter((a): a is ActionOf<'ApplyConfig'> => a.kind === 'ApplyConfig');
  const applied = await Promise.allSettled(applies.map((action) => applyConfig(ctx, input, observed, action)));
  done.push(...applies.filter((_, i) => applied[i]!.status === 'fulfilled' && applied[i]!.value));
  // A node that failed otherwise than by refusing the files fails the pass, after the others are done.
  const failed = applied.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
  if (done.some((a) => a.kind !== 'ApplyConfig' && a.kind !== 'HandOverMaster' && a.kind !== 'SetPriorityOffset')) {
    ctx.shared.forgetInventory(input.provider);
  }
  return { observed, done };
}

async function actOnCloudOrHost(ctx: PassContext, input: ActInput, observed: Observed, action: Action): Promise<boolean> {
  switch (action.kind) {
    case 'DeleteDroplet': return deleteDroplet(ctx, input, action);
    case 'CreateReservedIP': return reserveIP(ctx, input, observed, action);
    case 'AdoptReservedIP': return adoptIP(ctx, input, observed, action);
    case 'AssignReservedIP': return assignIP(ctx, input, action);
    case 'HandOverMaster': return handOver(ctx, input, action);
    case 'SetPriorityOffset': return setPriorityOffset(ctx, input, action);
    case 'PowerOnDroplet': return powerOn(ctx, input, action);
    default: return false;
  }
}

/** Every missing node at once; the provider lists by the owner tag first, so none is made twice. */
async function createDroplets(ctx: PassContext, input: ActInput, creates: ActionOf<'CreateDroplet'>[]): Promise<Action[]> {
  const { object, provider } = input;
  const spec = object.spec;
  const uid = object.metadata.uid ?? '';
  const fingerprint = await provider.ensureSshKey(publicKeyOf(input.keys.current), `halb-operator-${uid.slice(0, 8)}`);
  const sshdDropIn = { path: DEFAULT_PATHS.sshdConfig, content: renderSshdDropIn() };
  const result = await provider.ensureDroplets({
    uid, objectName: object.metadata.name, count: spec.droplets.count, region: spec.region, size: spec.droplets.size,
    image: spec.droplets.image,
    ...(spec.vpcUUID ? { vpcUUID: spec.vpcUUID } : {}), sshKeys: [fingerprint, ...spec.droplets.sshKeys], extraTags: spec.droplets.tags,
    // Each droplet's SSH host key is made here, delivered in its user_data and pinned by a tag
    // in the same create request: the first connection is verified, nothing trusted on first use.
    hostKeys: true,
    userData: (node, _index, hostKey) =>
      cloudInit({ objectName: object.metadata.name, nodeName: node, sshdDropIn, ...(hostKey ? { hostKey } : {}) }),
  });
  for (const id of result.created) {
    const node = result.nodes.find((n) => n?.id === id);
    await ctx.events.record(object, 'Normal', 'DropletCreated', `created droplet ${node?.name ?? id} (id ${id})`);
    ctx.log.info({ node: node?.name, dropletId: id }, 'created droplet');
  }
  return result.created.length ? creates : [];
}

async function deleteDroplet(ctx: PassContext, input: ActInput, action: ActionOf<'DeleteDroplet'>): Promise<boolean> {
  await input.provider.deleteDroplet(action.dropletId);
  await ctx.events.record(input.object, 'Normal', 'DropletDeleted',
    `deleted droplet ${action.node} (id ${action.dropletId}): ${action.reason}`);
  ctx.log.info({ node: action.node, dropletId: action.dropletId, reason: action.reason }, 'deleted droplet');
  return true;
}

/** Reserves a new address straight onto node 0; the assign finishes while the pass goes on. */
async function reserveIP(ctx: PassContext, input: ActInput, observed: Observed, action: ActionOf<'CreateReservedIP'>): Promise<boolean> {
  const reserved = await input.provider.requestReservedIpOnto(action.ontoDropletId);
  observed.reservedIP = { ip: reserved.ip, dropletId: null, locked: true };
  await ctx.events.record(input.object, 'Normal', 'ReservedIPCreated', `reserved IP ${reserved.ip} for ${action.node}`);
  ctx.log.info({ ip: reserved.ip, node: action.node }, 'created reserved IP');
  return true;
}

async function adoptIP(ctx: PassContext, input: ActInput, observed: Observed, action: ActionOf<'AdoptReservedIP'>): Promise<boolean> {
  const adopted = await input.provider.adoptReservedIp(action.ip, input.object.spec.region).catch((err: unknown) => {
    if (isNotFound(err)) {
      throw terminal(terminalReasons.cloudResourceNotFound, 'spec.floatingIP.address',
        `reserved IP ${action.ip} does not exist in this DigitalOcean account`);
    }
    throw err;
  });
  observed.reservedIP = { ip: adopted.ip, dropletId: adopted.dropletId, locked: adopted.locked };
  await ctx.events.record(input.object, 'Normal', 'ReservedIPAdopted',
    `reserved IP ${adopted.ip}${adopted.dropletId ? ` on droplet ${adopted.dropletId}` : ''}`);
  ctx.log.info({ ip: adopted.ip }, 'adopted reserved IP');
  return true;
}

/** Asks DigitalOcean to move the address; busy (another action on it) is left for the next pass. */
async function assignIP(ctx: PassContext, input: ActInput, action: ActionOf<'AssignReservedIP'>): Promise<boolean> {
  const result = await input.provider.requestAssign(action.ip, action.dropletId);
  if (result.outcome !== 'started') return false;
  const backstop = action.reason === 'Backstop';
  await ctx.events.record(input.object, backstop ? 'Warning' : 'Normal', backstop ? 'ReservedIPReassigned' : 'ReservedIPAssigned', backstop
    ? `reserved IP ${action.ip} moved to MASTER ${action.node}: it had stayed on a non-MASTER node past the grace period`
    : `reserved IP ${action.ip} assigned to ${action.node}`);
  ctx.log.info({ ip: action.ip, node: action.node, reason: action.reason }, 'assigned reserved IP');
  return true;
}

/** Stops keepalived on a MASTER about to go: it leaves with a priority-0 advert, a BACKUP takes over. */
async function handOver(ctx: PassContext, input: ActInput, action: ActionOf<'HandOverMaster'>): Promise<boolean> {
  const connection = input.observation.connections.get(action.node);
  if (!connection) return false;
  await connection.session.stopKeepalived(ctx.signal);
  await ctx.events.record(input.object, 'Normal', 'MasterHandedOver',
    `stopped keepalived on ${action.node} so a BACKUP takes over before the node is replaced`);
  ctx.log.info({ node: action.node }, 'handed over MASTER');
  return true;
}

/** Writes a node's priority-offset file; keepalived reads it at once (a planned failover, maintenance). */
async function setPriorityOffset(ctx: PassContext, input: ActInput, action: ActionOf<'SetPriorityOffset'>): Promise<boolean> {
  const connection = input.observation.connections.get(action.node);
  if (!connection) return false;
  await connection.session.setPriorityOffset(action.offset, ctx.signal);
  ctx.log.info({ node: action.node, offset: action.offset }, 'set priority offset');
  return true;
}

/** Powers on a droplet stopped during maintenance; one already being powered on is left be. */
async function powerOn(ctx: PassContext, input: ActInput, action: ActionOf<'PowerOnDroplet'>): Promise<boolean> {
  try {
    await input.provider.powerOnDroplet(action.dropletId);
  } catch (err) {
    if (statusCodeOf(err) === 422) return false; // a pending event: the power-on under way
    throw err;
  }
  await ctx.events.record(input.object, 'Normal', 'DropletPoweredOn',
    `powered on ${action.node} (id ${action.dropletId}): its maintenance ended`);
  ctx.log.info({ node: action.node, dropletId: action.dropletId }, 'powered on droplet');
  return true;
}

/** Applies one node's files. A daemon refusing them is recorded on the node (status says why,
 *  and it waits for a person); any other failure is thrown, and the pass is retried. */
async function applyConfig(ctx: PassContext, input: ActInput, observed: Observed, action: ActionOf<'ApplyConfig'>): Promise<boolean> {
  const connection = input.observation.connections.get(action.node);
  const node = input.desired.nodes.find((r) => r.name === action.node);
  const host = observed.hosts[action.node];
  if (!connection || !node || !host) return false; // not reachable yet: the next pass tries again
  try {
    const result = await connection.session.apply(node.files, node.configHash, connection.state, ctx.signal);
    if (result.outcome === 'unchanged') return false;
    const repaired = host.configHash === node.configHash;
    Object.assign(host, { configHash: node.configHash, haproxyRunning: true, keepalivedRunning: true });
    // A repair only restarts the daemons; new files move the applied time (halb_node_config_applied_timestamp_seconds).
    if (!repaired) host.configAppliedAt = Math.floor(ctx.clock.now().getTime() / 1000);
    await recordApplied(ctx, input.object, action.node, repaired, node.configHash, result);
    return true;
  } catch (err) {
    if (!(err instanceof ConfigRefusedError)) throw err;
    host.applyError = err.message;
    await ctx.events.record(input.object, 'Warning', 'ConfigRejected', `${action.node}: ${host.applyError}`);
    ctx.log.warn({ node: action.node, err: err.message }, 'config rejected on host');
    return false;
  }
}

/** How a change went live, for its Event: "runtime haproxy 2 commands" (no reload), or a reload and why. */
export function howApplied(steps: readonly string[], reloadReason: string | undefined): string | undefined {
  const runtime = steps.find((s) => s.startsWith('runtime haproxy'));
  if (runtime) return runtime;
  const why = reloadReason ?? steps.find((s) => s.startsWith('runtime-failed'));
  return steps.includes('reloaded haproxy') && why ? `reloaded haproxy: ${why}` : undefined;
}

async function recordApplied(
  ctx: PassContext, object: HALoadBalancer, node: string, repaired: boolean, hash: string, result: ApplyResult & { outcome: 'applied' },
): Promise<void> {
  const { steps, reloadReason } = result;
  if (repaired) {
    // Same files, but a daemon was not running: drift on the host, repaired.
    const started = steps.filter((s) => s.startsWith('started')).map((s) => s.replace('started ', ''));
    await ctx.events.record(object, 'Warning', 'DaemonRestarted',
      `started ${started.join(' and ') || 'the daemons'} on ${node}: not running`);
    ctx.log.warn({ node, started }, 'restarted stopped daemons');
  } else {
    const how = howApplied(steps, reloadReason);
    await ctx.events.record(object, 'Normal', 'ConfigApplied', `applied config ${hash.slice(0, 19)} on ${node}${how ? ` (${how})` : ''}`);
    ctx.log.info({ node, hash, steps, ...(reloadReason ? { reloadReason } : {}) }, 'applied config');
  }
}

// Status from observation, as a pure function. The reserved IP's holder comes from
// DigitalOcean (it is what clients reach); the VRRP states come from the hosts; the conditions
// compare the two. Status changes only when an observation changes, so writing it "only if
// changed" means something: lastSyncTime is the time a node's config last changed, not the
// time it was last read.
import type { Condition, GraceTimers, HALoadBalancer, HALoadBalancerStatus, NodeStatus } from '../api/types.ts';
import { nodeName } from '../api/derived.ts';
import type { Problem } from '../api/validate.ts';
import { conditionTypes as T, kstatusConditions, setConditions, summarizeReady, type ConditionInput } from './conditions.ts';
import { certificateCondition, type CertificateExpiry } from './certificates.ts';
import { lockOutMessage, lockedOutAddress, sshExposedCondition } from './access.ts';
import { dayTwoConditionTypes, dayTwoStatusConditions, type DayTwo } from './handover.ts';
import { standingDroplet, type Observed, type ObservedDroplet } from './observed.ts';

export interface StatusInput {
  object: HALoadBalancer;
  observed: Observed;
  /** Desired config hash per node name; a node without one has nothing rendered yet. */
  desiredHashes: Record<string, string>;
  now: string;
  /** Leaf certificates of the TLS frontends, for CertificateExpiring. */
  certificates?: readonly CertificateExpiry[];
  /** The planner's waits in progress, carried in status for the next leader. */
  graceStarted?: GraceTimers;
  /** Maintenance, the planned failover and colocation, as the planner saw them. */
  dayTwo?: DayTwo;
  /** The node a colocation replacement is deleting this pass, if any. */
  replacingColocated?: string;
}

const NO_DAY_TWO: DayTwo = {
  maintenance: new Map(), returning: new Map(), exempt: new Set(), powerOn: [], offsets: {}, colocated: [], busy: false,
};

const list = (names: string[]) => names.join(', ');

interface NodeView {
  name: string;
  droplet?: ObservedDroplet;
  host: Observed['hosts'][string] | undefined;
  desiredHash?: string;
  /** Why the node may not be MASTER (maintenance): it is left alone, and its absence is expected. */
  maintenance?: string;
  /** It is FAULT on purpose: the MASTER a planned failover asked to leave. */
  handingOver?: boolean;
  /** Unmarked from maintenance, not answering yet: in service, the note kept in status. */
  returning?: string;
}

/** Nodes in service: those not in maintenance. */
const inService = (nodes: NodeView[]) => nodes.filter((n) => n.maintenance === undefined);

function nodeViews(input: StatusInput): NodeView[] {
  const { object, observed, desiredHashes } = input;
  return Array.from({ length: object.spec.droplets.count }, (_, index) => {
    const name = nodeName(object.metadata.name, index);
    const droplet = standingDroplet(observed.droplets, index, observed.reservedIP?.dropletId);
    const dayTwo = input.dayTwo ?? NO_DAY_TWO;
    const maintenance = dayTwo.maintenance.get(name);
    const planned = dayTwo.planned;
    const view: NodeView = {
      name, host: observed.hosts[name],
      ...(maintenance === undefined ? {} : { maintenance }),
      ...(dayTwo.returning.has(name) ? { returning: dayTwo.returning.get(name)! } : {}),
      ...(planned && !planned.timedOut && planned.from === name ? { handingOver: true } : {}),
    };
    if (droplet) view.droplet = droplet;
    const desired = desiredHashes[name];
    if (desired !== undefined) view.desiredHash = desired;
    return view;
  });
}

function dropletsCondition(nodes: NodeView[]): ConditionInput {
  const missing = nodes.filter((n) => !n.droplet).map((n) => n.name);
  const notActive = (n: NodeView) => n.droplet && n.droplet.status !== 'active';
  const down = inService(nodes).filter(notActive).map((n) => `${n.name} (${n.droplet!.status})`);
  const resting = nodes.filter((n) => n.maintenance !== undefined && notActive(n)).map((n) => `${n.name} (${n.droplet!.status})`);
  if (missing.length) return { type: T.dropletsReady, status: 'False', reason: 'Creating', message: `droplets missing: ${list(missing)}` };
  if (down.length) return { type: T.dropletsReady, status: 'False', reason: 'NotActive', message: `droplets not active: ${list(down)}` };
  if (resting.length) {
    return {
      type: T.dropletsReady, status: 'True', reason: 'NodeInMaintenance',
      message: `droplets in service active; in maintenance: ${list(resting)}`,
    };
  }
  return { type: T.dropletsReady, status: 'True', reason: 'AllActive', message: `${nodes.length} droplets active` };
}

function floatingIPCondition(nodes: NodeView[], observed: Observed): ConditionInput {
  const reservedIP = observed.reservedIP;
  if (!reservedIP) return { type: T.floatingIPAssigned, status: 'False', reason: 'Creating', message: 'no reserved IP yet' };
  if (reservedIP.dropletId === null) {
    return {
      type: T.floatingIPAssigned, status: 'False', reason: reservedIP.locked ? 'Assigning' : 'Unassigned',
      message: `${reservedIP.ip} is not assigned to a droplet`,
    };
  }
  const holder = nodes.find((n) => n.droplet?.id === reservedIP.dropletId);
  if (!holder) {
    return {
      type: T.floatingIPAssigned, status: 'False', reason: 'AssignedElsewhere',
      message: `${reservedIP.ip} is assigned to droplet ${reservedIP.dropletId}, which is not one of this load balancer's nodes`,
    };
  }
  return { type: T.floatingIPAssigned, status: 'True', reason: 'Assigned', message: `${reservedIP.ip} is on ${holder.name}` };
}

function configCondition(nodes: NodeView[], spec: HALoadBalancer['spec']): ConditionInput {
  const lockedOut = nodes.flatMap((n) => {
    const address = lockedOutAddress(spec, n.host);
    return address ? [{ name: n.name, address }] : [];
  });
  if (lockedOut.length) return { type: T.configApplied, status: 'False', reason: 'WouldLockOut', message: lockOutMessage(spec, lockedOut) };
  const keyChanged = nodes.filter((n) => n.host?.hostKeyChanged).map((n) => n.name);
  if (keyChanged.length) {
    return {
      type: T.configApplied, status: 'False', reason: 'HostKeyChanged',
      message: `host key differs from the pinned one, host refused: ${list(keyChanged)}`,
    };
  }
  const failed = nodes.filter((n) => n.host?.applyError);
  if (failed.length) {
    return {
      type: T.configApplied, status: 'False', reason: 'ValidationFailed',
      message: failed.map((n) => `${n.name}: ${n.host!.applyError}`).join('; '),
    };
  }
  // Nodes in maintenance are left alone: they get the config once they are back.
  const serving = inService(nodes);
  const unreachable = serving.filter((n) => n.droplet && !n.host?.reachable);
  if (unreachable.length) {
    return {
      type: T.configApplied, status: 'False', reason: 'HostUnreachable',
      message: unreachable.map((n) => `${n.name}: ${n.host?.error ?? 'not reached yet'}`).join('; '),
    };
  }
  const isStale = (n: NodeView) => !n.desiredHash || n.host?.configHash !== n.desiredHash;
  const stale = serving.filter(isStale).map((n) => n.name);
  if (stale.length) {
    return { type: T.configApplied, status: 'False', reason: 'Applying', message: `config not yet applied on ${list(stale)}` };
  }
  const hash = serving[0]?.desiredHash?.slice(0, 19) ?? '';
  const waiting = nodes.filter((n) => n.maintenance !== undefined && isStale(n)).map((n) => n.name);
  if (waiting.length) {
    return {
      type: T.configApplied, status: 'True', reason: 'NodeInMaintenance',
      message: `config ${hash} applied on every node in service; ${list(waiting)} in maintenance gets it when back`,
    };
  }
  return { type: T.configApplied, status: 'True', reason: 'Applied', message: `config ${hash} applied on every node` };
}

function failoverCondition(nodes: NodeView[], plannedFailover?: ConditionInput): ConditionInput {
  const serving = inService(nodes);
  const unknown = serving.filter((n) => !n.host?.reachable || !n.host.vrrpState).map((n) => n.name);
  const masters = nodes.filter((n) => n.host?.reachable && n.host.vrrpState === 'MASTER').map((n) => n.name);
  // A MASTER a planned failover asked to leave is FAULT on purpose.
  const faulty = serving
    .filter((n) => !n.handingOver && (n.host?.vrrpState === 'FAULT' || n.host?.vrrpState === 'STOP'))
    .map((n) => `${n.name} (${n.host!.vrrpState})`);
  const moving = nodes.find((n) => n.handingOver);
  if (masters.length > 1) {
    return { type: T.failoverReady, status: 'False', reason: 'SplitBrain', message: `more than one MASTER: ${list(masters)}` };
  }
  if (unknown.length) {
    return { type: T.failoverReady, status: 'Unknown', reason: 'StateUnknown', message: `VRRP state not read from ${list(unknown)}` };
  }
  if (!masters.length && moving) {
    return {
      type: T.failoverReady, status: 'Unknown', reason: 'FailoverRequested',
      message: plannedFailover?.message ?? `MASTER is moving from ${moving.name}`,
    };
  }
  if (!masters.length) return { type: T.failoverReady, status: 'False', reason: 'NoMaster', message: 'no node is MASTER' };
  if (faulty.length) {
    return { type: T.failoverReady, status: 'False', reason: 'NodeFault', message: `not able to take over: ${list(faulty)}` };
  }
  const resting = nodes.filter((n) => n.maintenance !== undefined).map((n) => n.name);
  if (resting.length) {
    return {
      type: T.failoverReady, status: 'True', reason: 'NodeInMaintenance',
      message: `${masters[0]} is MASTER; in maintenance: ${list(resting)}`,
    };
  }
  return { type: T.failoverReady, status: 'True', reason: 'OneMaster', message: `${masters[0]} is MASTER, ${nodes.length - 1} BACKUP` };
}

/** Degraded: traffic may still flow, but something needs attention. */
function degradedCondition(nodes: NodeView[], observed: Observed, failover: ConditionInput): ConditionInput {
  const reservedIP = observed.reservedIP;
  const holder = reservedIP?.dropletId == null ? undefined : nodes.find((n) => n.droplet?.id === reservedIP.dropletId);
  if (failover.reason === 'SplitBrain' || failover.reason === 'NoMaster' || failover.reason === 'NodeFault') {
    return { type: T.degraded, status: 'True', reason: failover.reason, message: failover.message };
  }
  // During a planned failover the IP stays on the old MASTER until the new one has moved it.
  if (holder?.host?.vrrpState && holder.host.vrrpState !== 'MASTER' && !holder.handingOver) {
    return {
      type: T.degraded, status: 'True', reason: 'HolderNotMaster',
      message: `${reservedIP!.ip} is on ${holder.name}, which is ${holder.host.vrrpState}`,
    };
  }
  // A backend with no server UP, as the MASTER's HAProxy sees it: clients get 503s for it.
  const masterServers = nodes.find((n) => n.host?.vrrpState === 'MASTER')?.host?.servers;
  if (masterServers) {
    const backends = new Map<string, boolean>();
    for (const [key, state] of Object.entries(masterServers)) {
      const backend = key.slice(0, key.indexOf('/'));
      backends.set(backend, (backends.get(backend) ?? false) || state.startsWith('UP'));
    }
    const down = [...backends].filter(([, up]) => !up).map(([b]) => b);
    if (down.length) return { type: T.degraded, status: 'True', reason: 'BackendDown', message: `no server UP in backend ${list(down)}` };
  }
  const lost = inService(nodes).filter((n) => n.droplet?.status === 'active' && n.host && !n.host.reachable).map((n) => n.name);
  if (lost.length && holder) return { type: T.degraded, status: 'True', reason: 'NodeUnreachable', message: `unreachable: ${list(lost)}` };
  // A node in maintenance is expected to be away: not a degradation, but said.
  const resting = nodes.filter((n) => n.maintenance !== undefined).map((n) => `${n.name} (${n.maintenance})`);
  if (resting.length) {
    return { type: T.degraded, status: 'False', reason: 'NodeInMaintenance', message: `in maintenance: ${list(resting)}` };
  }
  return { type: T.degraded, status: 'False', reason: 'AsExpected', message: '' };
}

function nodeStatus(n: NodeView, previous: NodeStatus | undefined, now: string): NodeStatus {
  const out: NodeStatus = { name: n.name };
  if (n.droplet) out.dropletID = n.droplet.id;
  const publicIPv4 = n.droplet?.publicIPv4;
  const privateIPv4 = n.host?.privateIPv4 ?? n.droplet?.privateIPv4;
  if (publicIPv4) out.publicIPv4 = publicIPv4;
  if (privateIPv4) out.privateIPv4 = privateIPv4;
  // The anchor address is the droplet's for life: kept while the node cannot be read (maintenance).
  const anchorIPv4 = n.host?.anchorIPv4 ?? (previous?.dropletID === n.droplet?.id ? previous?.anchorIPv4 : undefined);
  if (anchorIPv4) out.anchorIPv4 = anchorIPv4;
  const servers = n.host?.reachable ? n.host.servers : undefined;
  if (servers) out.serversUp = `${Object.values(servers).filter((v) => v.startsWith('UP')).length}/${Object.keys(servers).length}`;
  const state = n.host?.reachable ? n.host.vrrpState : undefined;
  out.vrrpState = state === 'MASTER' || state === 'BACKUP' || state === 'FAULT' ? state : 'UNKNOWN';
  // A droplet the operator made the key for is pinned by its tag from creation on. Otherwise the
  // pin stays with the droplet it was taken from at first contact; a replacement is pinned afresh.
  const pin = n.droplet?.hostKeyPin ?? n.host?.hostKey ?? (previous?.dropletID === n.droplet?.id ? previous?.hostKey : undefined);
  if (pin) {
    out.hostKey = pin;
    out.hostKeyPinned = n.droplet?.hostKeyPin ? 'AtCreation' : 'OnFirstContact';
  }
  const hash = n.host?.configHash ?? previous?.configHash;
  if (hash) out.configHash = hash;
  // lastSyncTime moves when the node's config changes, so an unchanged node keeps its status.
  const lastSync = hash && hash === previous?.configHash ? previous.lastSyncTime : (n.host?.configHash ? now : previous?.lastSyncTime);
  if (lastSync) out.lastSyncTime = lastSync;
  const maintenance = n.maintenance ?? n.returning;
  if (maintenance !== undefined) out.maintenance = maintenance;
  return out;
}

function isNodeReady(n: NodeView): boolean {
  return n.droplet?.status === 'active' && !!n.host?.reachable && !!n.desiredHash && n.host.configHash === n.desiredHash &&
    (n.host.vrrpState === 'MASTER' || n.host.vrrpState === 'BACKUP');
}

/** The whole status for a valid spec. */
export function computeStatus(input: StatusInput): HALoadBalancerStatus {
  const { object, observed, now } = input;
  const previous = object.status ?? {};
  const generation = object.metadata.generation ?? 0;
  const nodes = nodeViews(input);

  const dayTwo = input.dayTwo ?? NO_DAY_TWO;
  const failover = failoverCondition(nodes, dayTwo.condition);
  const inputs: ConditionInput[] = [
    dropletsCondition(nodes),
    floatingIPCondition(nodes, observed),
    configCondition(nodes, object.spec),
    failover,
  ];
  inputs.unshift(summarizeReady(inputs));
  inputs.splice(1, 0, ...kstatusConditions(inputs, dayTwo.condition));
  inputs.push(degradedCondition(nodes, observed, failover));
  inputs.push(sshExposedCondition(object.spec, nodes.map((n) =>
    ({ name: n.name, host: n.host, current: !!n.desiredHash && n.host?.configHash === n.desiredHash }))));
  inputs.push(object.spec.credentials.failoverTokenSecretRef
    ? {
      type: T.failoverTokenShared, status: 'False', reason: 'SeparateToken',
      message: 'the nodes carry the failover token, not the operator token',
    }
    : {
      type: T.failoverTokenShared, status: 'True', reason: 'OperatorToken',
      message: 'the nodes carry the operator token for failover; ' +
        'a token with only the reserved_ip scope (credentials.failoverTokenSecretRef) is safer',
    });

  const certificates = certificateCondition(input.certificates ?? [], new Date(now));
  if (certificates) inputs.push(certificates);
  if (dayTwo.condition) inputs.push(dayTwo.condition);
  inputs.push(...dayTwoStatusConditions(dayTwo, object.spec.droplets.replaceColocated, input.replacingColocated));
  // A condition that no longer applies (the TLS frontends are gone, no node in maintenance) goes, rather than linger.
  const present = new Set(inputs.map((c) => c.type));
  const optional = new Set<string>([T.certificateExpiring, ...Object.values(dayTwoConditionTypes)]);
  const kept = (previous.conditions ?? []).filter((c) => !optional.has(c.type) || present.has(c.type));
  const status: HALoadBalancerStatus = {
    observedGeneration: generation,
    nodesReady: `${nodes.filter(isNodeReady).length}/${nodes.length}`,
    nodes: nodes.map((n) => nodeStatus(n, previous.nodes?.find((p) => p.name === n.name), now)),
    conditions: setConditions(kept, inputs, generation, now),
  };
  if (observed.reservedIP) status.floatingIP = observed.reservedIP.ip;
  if (input.graceStarted && Object.keys(input.graceStarted).length) status.graceStarted = input.graceStarted;
  const holder = observed.reservedIP?.dropletId == null ? undefined : nodes.find((n) => n.droplet?.id === observed.reservedIP!.dropletId);
  if (holder) status.activeNode = holder.name;
  if (dayTwo.planned) status.plannedFailover = dayTwo.planned;
  if (holder && previous.activeNode && previous.activeNode !== holder.name) {
    // A planned failover names its reason; any other move is keepalived's own (a failure).
    const planned = previous.plannedFailover?.to === holder.name ? previous.plannedFailover.reason : 'Unplanned';
    status.lastFailover = { time: now, from: previous.activeNode, to: holder.name, reason: planned };
  } else if (previous.lastFailover) {
    status.lastFailover = previous.lastFailover;
  }
  return status;
}

/** Status for what only a person can fix: Ready=False and Stalled=True with the reason
 *  (InvalidSpec, SecretNotFound, ...); nothing else moves. */
export function stalledStatus(object: HALoadBalancer, problems: readonly Problem[], now: string, reason: string): HALoadBalancerStatus {
  const generation = object.metadata.generation ?? 0;
  const message = problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('; ');
  const ready: ConditionInput = { type: T.ready, status: 'False', reason, message };
  const conditions: Condition[] = setConditions(object.status?.conditions ?? [], [ready, ...kstatusConditions([ready])], generation, now);
  return { ...object.status, observedGeneration: generation, conditions };
}

/** Whether writing `next` would change anything: the "write status only if changed" test. */
export function statusChanged(previous: HALoadBalancerStatus | undefined, next: HALoadBalancerStatus): boolean {
  return JSON.stringify(canonical(previous ?? {})) !== JSON.stringify(canonical(next));
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => [k, canonical(v)]));
  }
  return value;
}

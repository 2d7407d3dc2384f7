// Day-two decisions, pure: which nodes may not be MASTER (maintenance, DigitalOcean's
// maintenance notices), which node should hold the reserved IP (halb.dev/preferred-node), and
// the planned failover that gets it there. keepalived still decides: the operator only writes
// each node's priority-offset file (keepalived's track_file, render/keepalived.ts):
//  - the MASTER handing over gets HAND_OVER: it goes FAULT and leaves with a priority-0 advert,
//    so the target takes over after its skew time instead of the advert timeout; its HAProxy
//    keeps serving the connections the reserved IP still brings it;
//  - the target gets PREFERRED, so among several BACKUPs it is the one that wins;
//  - once the target is MASTER the old one drops to LOWEST (eligible again, never preempting),
//    and once DigitalOcean shows the IP on the target the planned failover is done;
//  - a node in maintenance stays at LOWEST: never chosen while another can serve, yet still
//    taken over by keepalived if every other node fails.
// A request that cannot be followed (no such node, a node in maintenance, not a healthy BACKUP)
// moves nothing and says why in the PlannedFailover condition.
import { dayTwoRequests } from '../api/day-two.ts';
import { nodeName } from '../api/derived.ts';
import type { HALoadBalancer, PlannedFailover } from '../api/types.ts';
import { PRIORITY_OFFSET } from '../render/keepalived.ts';
import type { ConditionInput } from './conditions.ts';
import { standingDroplet, type Observed, type ObservedDroplet, type ObservedHost } from './observed.ts';

/** How long the target may take to become MASTER after the MASTER was asked to leave: keepalived
 *  needs well under a second; longer means VRRP between them is broken. */
export const HANDOVER_TIMEOUT_MS = 10_000;
/** After a planned failover timed out, how long before the operator asks again. */
export const HANDOVER_RETRY_MS = 60_000;

export type PlannedFailoverReason = PlannedFailover['reason'];

export const dayTwoConditionTypes = {
  plannedFailover: 'PlannedFailover',
  nodeInMaintenance: 'NodeInMaintenance',
  nodesColocated: 'NodesColocated',
} as const;

export interface DayTwoInput {
  object: HALoadBalancer;
  observed: Observed;
  desiredHashes: Record<string, string>;
  now: Date;
}

export interface DayTwo {
  /** Nodes that may not become MASTER, with the reason people read (status.nodes[].maintenance). */
  maintenance: Map<string, string>;
  /** Nodes unmarked but not yet answering again: in service (status counts them), yet their
   *  droplet is kept and powered on rather than replaced. Status keeps the note until they answer. */
  returning: Map<string, string>;
  /** Nodes whose droplet is kept even when powered off, and which get no config or repair. */
  exempt: Set<string>;
  /** Nodes back from maintenance whose droplet is off: powered on, not replaced. */
  powerOn: string[];
  /** The planned failover under way, as status carries it. */
  planned?: PlannedFailover;
  /** The number each node's priority-offset file should hold. */
  offsets: Record<string, number>;
  /** This object's nodes that share a physical machine, one list per machine. */
  colocated: string[][];
  /** The PlannedFailover condition, when a failover is asked for, under way, or refused. */
  condition?: ConditionInput;
  /** Something is moving: look again soon. */
  busy: boolean;
}

interface NodeView {
  name: string;
  droplet?: ObservedDroplet;
  host?: ObservedHost;
}

const REASON_TEXT: Record<PlannedFailoverReason, string> = {
  PreferredNode: 'halb.dev/preferred-node names it',
  Maintenance: 'the MASTER is in maintenance',
  MaintenanceEvent: 'DigitalOcean announced maintenance of the MASTER\'s droplet',
};

export function describePlannedFailover(planned: Pick<PlannedFailover, 'from' | 'to' | 'reason'>): string {
  return `moving MASTER from ${planned.from} to ${planned.to}: ${REASON_TEXT[planned.reason]}`;
}

function nodeViews(input: DayTwoInput): NodeView[] {
  const { object, observed } = input;
  return Array.from({ length: object.spec.droplets.count }, (_, index) => {
    const name = nodeName(object.metadata.name, index);
    const droplet = standingDroplet(observed.droplets, index, observed.reservedIP?.dropletId);
    const host = observed.hosts[name];
    return { name, ...(droplet ? { droplet } : {}), ...(host ? { host } : {}) };
  });
}

/** Why each node may not be MASTER now: its annotation, else DigitalOcean's notice. */
function ineligibleNodes(
  input: DayTwoInput, nodes: readonly NodeView[],
): Map<string, { reason: 'Maintenance' | 'MaintenanceEvent'; text: string }> {
  const marked = dayTwoRequests(input.object.metadata).maintenance;
  const out = new Map<string, { reason: 'Maintenance' | 'MaintenanceEvent'; text: string }>();
  for (const n of nodes) {
    const note = marked.get(n.name);
    const event = n.host?.reachable ? n.host.maintenanceEvent : undefined;
    if (note !== undefined) out.set(n.name, { reason: 'Maintenance', text: `in maintenance (${note})` });
    else if (event) out.set(n.name, { reason: 'MaintenanceEvent', text: `DigitalOcean announced maintenance: ${event}` });
  }
  return out;
}

/** A BACKUP that could take over now and serve: current config, both daemons up, a server UP. */
function healthyBackup(input: DayTwoInput, n: NodeView): boolean {
  const host = n.host;
  if (n.droplet?.status !== 'active' || !host?.reachable || host.vrrpState !== 'BACKUP') return false;
  if (!host.keepalivedRunning || !host.haproxyRunning) return false;
  if (!input.desiredHashes[n.name] || host.configHash !== input.desiredHashes[n.name]) return false;
  const servers = Object.values(host.servers ?? {});
  return servers.length === 0 || servers.some((s) => s.startsWith('UP'));
}

function whyNotHealthy(input: DayTwoInput, n: NodeView): string {
  if (n.droplet?.status !== 'active') return n.droplet ? `its droplet is ${n.droplet.status}` : 'it has no droplet';
  if (!n.host?.reachable) return `it is not reachable${n.host?.error ? ` (${n.host.error})` : ''}`;
  if (n.host.vrrpState !== 'BACKUP') return `it is ${n.host.vrrpState ?? 'in no VRRP state'}, not BACKUP`;
  if (!n.host.keepalivedRunning || !n.host.haproxyRunning) return 'a daemon on it is not running';
  if (n.host.configHash !== input.desiredHashes[n.name]) return 'its config is not current';
  return 'no backend server is UP on it';
}

type Want = { to: string; reason: PlannedFailoverReason } | { refused: string; message: string } | undefined;

/** Where MASTER should go, if anywhere, from the node that leads now. */
function wanted(
  input: DayTwoInput, nodes: readonly NodeView[], ineligible: ReturnType<typeof ineligibleNodes>, leader: string | undefined,
): Want {
  const preferred = dayTwoRequests(input.object.metadata).preferredNode;
  const byName = new Map(nodes.map((n) => [n.name, n]));
  let refusal: Want;
  if (preferred !== undefined) {
    const target = byName.get(preferred);
    if (!target) {
      refusal = {
        refused: 'NodeNotFound',
        message: `halb.dev/preferred-node names ${preferred}, which is not a node of this load balancer ` +
          `(${nodes.map((n) => n.name).join(', ')}): nothing moves`,
      };
    } else if (ineligible.has(preferred)) {
      refusal = {
        refused: 'NodeInMaintenance',
        message: `halb.dev/preferred-node names ${preferred}, which is ${ineligible.get(preferred)!.text}: nothing moves`,
      };
    } else if (preferred === leader) {
      return undefined;
    } else if (!healthyBackup(input, target)) {
      refusal = {
        refused: 'NotHealthyBackup',
        message: `halb.dev/preferred-node names ${preferred}, ` +
          `which is not a healthy BACKUP (${whyNotHealthy(input, target)}): nothing moves`,
      };
    } else {
      return { to: preferred, reason: 'PreferredNode' };
    }
  }
  const leaving = leader === undefined ? undefined : ineligible.get(leader);
  if (!leaving) return refusal;
  const to = nodes.find((n) => n.name !== leader && !ineligible.has(n.name) && healthyBackup(input, n));
  if (to) return { to: to.name, reason: leaving.reason };
  return refusal ?? {
    refused: 'NoHealthyBackup',
    message: `${leader} is ${leaving.text} but no other node is a healthy BACKUP to take over: it stays MASTER`,
  };
}

/** The day-two part of one plan. `planned` is status.plannedFailover from the last pass. */
export function planDayTwo(
  input: DayTwoInput, planned: PlannedFailover | undefined, previousMaintenance: ReadonlyMap<string, string>,
): DayTwo {
  const nodes = nodeViews(input);
  const now = input.now.getTime();
  const ineligible = ineligibleNodes(input, nodes);
  const masters = nodes.filter((n) => n.host?.reachable && n.host.vrrpState === 'MASTER').map((n) => n.name);
  const master = masters.length === 1 ? masters[0] : undefined;
  const holder = nodes.find((n) => n.droplet && n.droplet.id === input.observed.reservedIP?.dropletId)?.name;

  // The record of the last pass: done once the target is MASTER and holds the IP.
  let record = planned && !(master === planned.to && holder === planned.to) ? planned : undefined;
  const movingIP = record !== undefined && master === record.to;
  // While a MASTER hands over (or comes back after a timed-out one) it may be in no MASTER state
  // for a moment: it still leads until another node is MASTER.
  const leader = master ?? (record && !movingIP ? record.from : undefined);
  const want = wanted(input, nodes, ineligible, leader);
  const target = want && 'to' in want ? want : undefined;

  if (target && leader && target.to !== leader) {
    const same = record !== undefined && record.from === leader && record.to === target.to;
    const retryDue = record?.timedOut !== undefined && now - Date.parse(record.timedOut) >= HANDOVER_RETRY_MS;
    if (!same || retryDue) record = { from: leader, to: target.to, reason: target.reason, requested: input.now.toISOString() };
  } else if (record && !movingIP) {
    record = undefined; // no longer wanted, or already where it is wanted
  }
  if (record && !record.timedOut && !movingIP && now - Date.parse(record.requested) > HANDOVER_TIMEOUT_MS) {
    record = { ...record, timedOut: input.now.toISOString() };
  }

  // The preferred node keeps its lift while it leads, so a preempting peer does not take MASTER back.
  const preferred = dayTwoRequests(input.object.metadata).preferredNode;
  const offsets: Record<string, number> = {};
  for (const n of nodes) {
    offsets[n.name] = ineligible.has(n.name) ? PRIORITY_OFFSET.lowest
      : n.name === preferred && n.name === leader ? PRIORITY_OFFSET.preferred
      : PRIORITY_OFFSET.none;
  }
  if (record && !record.timedOut) {
    offsets[record.to] = PRIORITY_OFFSET.preferred;
    offsets[record.from] = movingIP ? PRIORITY_OFFSET.lowest : PRIORITY_OFFSET.handOver;
  }

  const maintenance = new Map([...ineligible].map(([name, why]) => [name, why.text]));
  const exempt = new Set(ineligible.keys());
  const returning = new Map<string, string>();
  const powerOn: string[] = [];
  for (const n of nodes) {
    // Unmarked but not answering yet (powered off, booting, or DigitalOcean's list still says
    // active about a droplet just powered off): kept, and powered on if off, until it answers.
    if (ineligible.has(n.name) || !previousMaintenance.has(n.name) || !n.droplet) continue;
    if (n.droplet.status === 'active' && n.host?.reachable) continue;
    exempt.add(n.name);
    returning.set(n.name, `back from maintenance: ${n.droplet.status === 'off' ? 'powering on' : 'not answering yet'}`);
    if (n.droplet.status === 'off') powerOn.push(n.name);
  }

  const condition = conditionOf(record, want, movingIP, now);
  return {
    maintenance, returning, exempt, powerOn, offsets,
    ...(record ? { planned: record } : {}),
    colocated: colocatedNodes(input, nodes),
    ...(condition ? { condition } : {}),
    busy: (record !== undefined && !record.timedOut) || powerOn.length > 0,
  };
}

function conditionOf(record: PlannedFailover | undefined, want: Want, movingIP: boolean, now: number): ConditionInput | undefined {
  const type = dayTwoConditionTypes.plannedFailover;
  if (record?.timedOut) {
    const retry = Math.max(0, Math.ceil((Date.parse(record.timedOut) + HANDOVER_RETRY_MS - now) / 1000));
    return {
      type, status: 'False', reason: 'TimedOut',
      message: `${record.to} did not become MASTER within ${HANDOVER_TIMEOUT_MS / 1000} s of ${record.from} handing over; ` +
        `priorities put back, trying again in ${retry} s`,
    };
  }
  if (record) {
    const waitingForIP = movingIP ? `; ${record.to} is MASTER, waiting for the reserved IP to move` : '';
    return { type, status: 'True', reason: 'FailoverRequested', message: `${describePlannedFailover(record)}${waitingForIP}` };
  }
  if (want && 'refused' in want) return { type, status: 'False', reason: want.refused, message: want.message };
  return undefined;
}

/** Groups of this object's standing droplets on one physical machine, as node names. */
function colocatedNodes(input: DayTwoInput, nodes: readonly NodeView[]): string[][] {
  const byId = new Map(nodes.filter((n) => n.droplet).map((n) => [n.droplet!.id, n.name]));
  return (input.observed.neighborGroups ?? [])
    .map((group) => group.flatMap((id) => (byId.has(id) ? [byId.get(id)!] : [])).sort())
    .filter((names) => names.length > 1);
}

/** NodeInMaintenance and NodesColocated, each present only while it is True. */
export function dayTwoStatusConditions(dayTwo: DayTwo, replaceColocated: boolean, replacing: string | undefined): ConditionInput[] {
  const out: ConditionInput[] = [];
  if (dayTwo.maintenance.size) {
    out.push({
      type: dayTwoConditionTypes.nodeInMaintenance, status: 'True', reason: 'NodeInMaintenance',
      message: [...dayTwo.maintenance].map(([name, why]) => `${name}: ${why}`).join('; '),
    });
  }
  if (dayTwo.colocated.length) {
    const groups = dayTwo.colocated.map((g) => g.join(' and ')).join('; ');
    const plan = replacing ? `; replacing ${replacing}`
      : replaceColocated ? '; a BACKUP is replaced once the load balancer is otherwise healthy'
      : '; spec.droplets.replaceColocated: true replaces one';
    out.push({
      type: dayTwoConditionTypes.nodesColocated, status: 'True', reason: 'SharedHost',
      message: `${groups} share a physical machine (DigitalOcean neighbours)${plan}`,
    });
  }
  return out;
}

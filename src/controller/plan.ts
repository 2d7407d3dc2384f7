// The planner: from one observation, the actions that move DigitalOcean and the hosts toward the
// spec. Pure, so every rule is a table test. Principles:
//  - droplets are matched by their node-index tag; a missing one is created, a dead or duplicate
//    one deleted, never two created for one index (the provider looks up by tag before creating);
//  - the reserved IP is created or adopted, and assigned only when it is unassigned (first
//    assignment). keepalived decides who is MASTER; the operator never moves the IP against it,
//    except the backstop: the IP stuck on a non-MASTER while another node is MASTER, for longer
//    than a grace period (the failover script on the MASTER evidently failed);
//  - disruptive changes (size, image, scale-down) go one node at a time, BACKUPs first, and the
//    MASTER only after a controlled hand-over;
//  - day-two requests (handover.ts) only write each node's priority-offset file: keepalived
//    moves MASTER. A node in maintenance is left alone (no config, no repair, kept when off)
//    and nothing disruptive starts while one is, or while a planned failover is under way.
import { nodeName } from '../api/derived.ts';
import type { HALoadBalancer } from '../api/types.ts';
import { lockedOutAddress } from './access.ts';
import { planDayTwo, type DayTwo } from './handover.ts';
import { DEAD_DROPLET_STATUSES, standingDroplet, type Observed, type ObservedDroplet } from './observed.ts';

export type Action =
  | { kind: 'CreateDroplet'; index: number; node: string }
  | { kind: 'DeleteDroplet'; dropletId: number; node: string; reason: 'Duplicate' | 'Dead' | 'ScaleDown' | 'Replace' | 'Colocated' }
  | { kind: 'CreateReservedIP'; ontoDropletId: number; node: string }
  | { kind: 'AdoptReservedIP'; ip: string }
  | { kind: 'AssignReservedIP'; ip: string; dropletId: number; node: string; reason: 'FirstAssignment' | 'Backstop' }
  | { kind: 'ApplyConfig'; node: string; dropletId: number }
  | { kind: 'HandOverMaster'; node: string; dropletId: number }
  | { kind: 'SetPriorityOffset'; node: string; dropletId: number; offset: number }
  | { kind: 'PowerOnDroplet'; node: string; dropletId: number };

export interface PlanInput {
  object: HALoadBalancer;
  observed: Observed;
  desiredHashes: Record<string, string>;
  now: Date;
  /** When the backstop first saw the IP on a non-MASTER; carried between reconciles. */
  backstopSince?: Date;
  backstopGraceMs: number;
  /** When HAProxy was first seen stopped on the MASTER; carried between reconciles. */
  masterHAProxyDownSince?: Date;
}

export interface Plan {
  actions: Action[];
  backstopSince?: Date;
  masterHAProxyDownSince?: Date;
  /** Look again soon: something is in progress outside the operator. */
  requeueAfterMs?: number;
  /** Maintenance, the planned failover, colocation: what status reports of them. */
  dayTwo: DayTwo;
}

/** How soon to look again while DigitalOcean or a host is still busy: DigitalOcean reads are
 *  one shared inventory per couple of seconds, so looking often costs little. */
export const PROGRESS_REQUEUE_MS = 1_000;
/** How soon to look again while the reserved IP moves (an assign in progress): clients reach
 *  the new holder the moment it completes, and status should say so soon after. */
export const MOVING_REQUEUE_MS = 250;
/** How long after keepalived made a new MASTER its failover script is taken to be moving the IP:
 *  status is reported first meanwhile, and repairs wait (only this long, should the script fail). */
export const FAILOVER_UNDER_WAY_MS = 2_000;
/** How long HAProxy may lie dead on the MASTER before the operator restarts it: keepalived's
 *  check (1 s interval, one retry) and the BACKUP's takeover take about 3 s. Restarting sooner
 *  would race keepalived and could cancel the failover it is making. */
export const MASTER_REPAIR_GRACE_MS = 5_000;

function stateOf(input: PlanInput, index: number) {
  return input.observed.hosts[nodeName(input.object.metadata.name, index)]?.vrrpState;
}

/** What one plan is built up of, step by step. */
interface Draft {
  input: PlanInput;
  actions: Action[];
  /** Something is in progress: look again soon. */
  busy: boolean;
  /** The reserved IP is moving: look again sooner. */
  moving: boolean;
  holderId: number | null;
  /** The standing live droplet of every index. */
  kept: Map<number, ObservedDroplet>;
  /** Those of the indexes the spec wants (0..count-1). */
  desired: ObservedDroplet[];
  masters: ObservedDroplet[];
  allActive: boolean;
  dayTwo: DayTwo;
  /** A node is in maintenance or a planned failover is under way: nothing disruptive starts. */
  dayTwoBusy: boolean;
}

export function plan(input: PlanInput): Plan {
  const draft = planDroplets(input);
  const leaving = planScaleDown(draft);
  const drifted = planReplacements(draft, leaving);
  if (!leaving && !drifted.length) planColocated(draft);
  planDayTwoActions(draft);
  // Nodes in maintenance get no config and no repair: a person may be working on them.
  const staying = draft.desired.filter((d) => !drifted.includes(d) && !draft.dayTwo.exempt.has(d.name));
  const reserved = planReservedIP(draft);
  const requeueAfterMs = reserved.waitMs ?? (draft.moving ? MOVING_REQUEUE_MS : draft.busy ? PROGRESS_REQUEUE_MS : undefined);
  const out = finish(draft.actions, requeueAfterMs, reserved.backstopSince, input, staying, draft.desired);
  // A failover: status names the new holder first, and host repairs (seconds each; status is
  // written after acting) wait: until the IP has moved (looking every 250 ms, for 2 s at most),
  // or, once it has, until the pass after the one that reports it (1 ms later).
  const repairs = out.actions.some((a) => a.kind === 'ApplyConfig');
  const reportFirst = holderMovedSinceStatus(draft) ? REPORT_FIRST_REQUEUE_MS
    : failoverUnderWay(input, reserved.backstopSince) ? out.requeueAfterMs : undefined;
  if (repairs && reportFirst !== undefined) {
    const reportOnly = out.actions.filter((a) => a.kind !== 'ApplyConfig');
    return { ...out, actions: reportOnly, requeueAfterMs: reportFirst, dayTwo: draft.dayTwo };
  }
  return { ...out, dayTwo: draft.dayTwo };
}

/** How soon the repairs a failover's report put off run: right after its status is written. */
const REPORT_FIRST_REQUEUE_MS = 1;

/** keepalived made a new MASTER moments ago and the IP is still on the old one. */
function failoverUnderWay(input: PlanInput, backstopSince: Date | undefined): boolean {
  return backstopSince !== undefined && input.now.getTime() - backstopSince.getTime() < FAILOVER_UNDER_WAY_MS;
}

/** The reserved IP is on one of the object's nodes, not the one status names. */
function holderMovedSinceStatus(draft: Draft): boolean {
  const previous = draft.input.object.status?.activeNode;
  const holder = draft.input.observed.droplets.find((d) => d.id === draft.holderId);
  return previous !== undefined && holder !== undefined && holder.name !== previous;
}

// 1. One live droplet per index, the standing one; delete the dead and the duplicates.
// 2. Create what is missing.
function planDroplets(input: PlanInput): Draft {
  const { object, observed } = input;
  const count = object.spec.droplets.count;
  const holderId = observed.reservedIP?.dropletId ?? null;
  const maintenanceBefore = new Map((object.status?.nodes ?? []).filter((n) => n.maintenance).map((n) => [n.name, n.maintenance!]));
  const dayTwo = planDayTwo(input, object.status?.plannedFailover, maintenanceBefore);
  const dayTwoBusy = dayTwo.maintenance.size > 0 || (dayTwo.planned !== undefined && !dayTwo.planned.timedOut);
  const draft: Draft = {
    input, actions: [], busy: dayTwo.busy, moving: false, holderId, kept: new Map(), desired: [], masters: [], allActive: false,
    dayTwo, dayTwoBusy,
  };
  for (const index of new Set(observed.droplets.map((d) => d.index))) {
    const standing = standingDroplet(observed.droplets, index, holderId);
    // A node in maintenance may be powered off on purpose: its droplet is kept.
    const exempt = standing !== undefined && index < count && dayTwo.exempt.has(standing.name);
    const keep = standing && (!DEAD_DROPLET_STATUSES.has(standing.status) || exempt) ? standing : undefined;
    if (keep) draft.kept.set(index, keep);
    for (const d of observed.droplets.filter((o) => o.index === index && o !== keep).sort((a, b) => a.id - b.id)) {
      draft.actions.push({
        kind: 'DeleteDroplet', dropletId: d.id, node: d.name, reason: DEAD_DROPLET_STATUSES.has(d.status) ? 'Dead' : 'Duplicate',
      });
    }
  }
  for (let index = 0; index < count; index++) {
    const droplet = draft.kept.get(index);
    if (!droplet) draft.actions.push({ kind: 'CreateDroplet', index, node: nodeName(object.metadata.name, index) });
    if (droplet?.status !== 'active' && !(droplet && dayTwo.exempt.has(droplet.name))) draft.busy = true;
  }
  draft.desired = [...draft.kept.entries()].filter(([index]) => index < count).map(([, d]) => d);
  draft.allActive = draft.desired.length === count && draft.desired.every((d) => d.status === 'active');
  draft.masters = draft.desired.filter((d) => stateOf(input, d.index) === 'MASTER');
  return draft;
}

// 3. Remove nodes beyond count, one at a time, after the MASTER role has moved off them.
function planScaleDown(draft: Draft): ObservedDroplet | undefined {
  const count = draft.input.object.spec.droplets.count;
  const surplus = [...draft.kept.entries()].filter(([index]) => index >= count).map(([, d]) => d).sort((a, b) => b.index - a.index);
  const leaving = surplus[0];
  if (!leaving) return undefined;
  const isMaster = stateOf(draft.input, leaving.index) === 'MASTER' || leaving.id === draft.holderId;
  if (!isMaster) draft.actions.push({ kind: 'DeleteDroplet', dropletId: leaving.id, node: leaving.name, reason: 'ScaleDown' });
  else if (draft.allActive && !draft.dayTwoBusy) draft.actions.push({ kind: 'HandOverMaster', node: leaving.name, dropletId: leaving.id });
  draft.busy = true;
  return leaving;
}

// 4. Replace nodes whose size or image changed, one at a time, BACKUPs first, only when the
//    pair is otherwise healthy so a replacement never takes the last working node.
function planReplacements(draft: Draft, leaving: ObservedDroplet | undefined): ObservedDroplet[] {
  const { input, desired, masters, holderId } = draft;
  const wanted = input.object.spec.droplets;
  // An image drifts only when DigitalOcean reports one and neither its slug nor its id is the spec's.
  const imageDrift = (d: ObservedDroplet) =>
    (d.image !== undefined || d.imageId !== undefined) && d.image !== wanted.image && d.imageId !== wanted.image;
  const drifted = desired.filter((d) => (d.size !== undefined && d.size !== wanted.size) || imageDrift(d));
  const settled = isSettled(draft);
  const handedOver = drifted.find((d) => stateOf(input, d.index) === 'STOP' && d.id !== holderId);
  if (draft.dayTwoBusy) {
    // Not while a node is in maintenance or a planned failover moves MASTER: one thing at a time.
  } else if (handedOver && masters.length === 1 && !leaving) {
    // A MASTER handed over (keepalived stopped on it): replace it now that another node leads.
    draft.actions.push({ kind: 'DeleteDroplet', dropletId: handedOver.id, node: handedOver.name, reason: 'Replace' });
    draft.busy = true;
  } else if (drifted.length && settled && !leaving) {
    const backup = drifted.filter((d) => stateOf(input, d.index) === 'BACKUP' && d.id !== holderId).sort((a, b) => b.index - a.index)[0];
    const master = drifted.find((d) => stateOf(input, d.index) === 'MASTER');
    if (backup) draft.actions.push({ kind: 'DeleteDroplet', dropletId: backup.id, node: backup.name, reason: 'Replace' });
    else if (master) draft.actions.push({ kind: 'HandOverMaster', node: master.name, dropletId: master.id });
    // else: a drifted BACKUP still holds the IP; the backstop moves it first.
    draft.busy = true;
  }
  return drifted;
}

/** Every node active and MASTER or BACKUP, exactly one MASTER. */
function isSettled(draft: Draft): boolean {
  return draft.allActive && draft.masters.length === 1 &&
    draft.desired.every((d) => ['MASTER', 'BACKUP'].includes(stateOf(draft.input, d.index) ?? ''));
}

// 4b. With spec.droplets.replaceColocated, replace a BACKUP that shares a physical machine with
//     another node, one at a time and only when all is otherwise well: the new droplet lands
//     where DigitalOcean places it, and the neighbours report says whether they are apart.
function planColocated(draft: Draft): void {
  const { input, dayTwo } = draft;
  if (!input.object.spec.droplets.replaceColocated || !dayTwo.colocated.length || draft.dayTwoBusy || !isSettled(draft)) return;
  const backup = dayTwo.colocated.flat().map((name) => draft.desired.find((d) => d.name === name))
    .filter((d): d is ObservedDroplet => d !== undefined && d.id !== draft.holderId && stateOf(input, d.index) === 'BACKUP')
    .sort((a, b) => b.index - a.index)[0];
  if (!backup) return;
  draft.actions.push({ kind: 'DeleteDroplet', dropletId: backup.id, node: backup.name, reason: 'Colocated' });
  draft.busy = true;
}

// 4c. Day two: each node's priority-offset file as handover.ts wants it (the target's lift
//     first, then the MASTER's hand-over, so the right BACKUP wins), and droplets powered off
//     for maintenance powered on once it ends.
function planDayTwoActions(draft: Draft): void {
  const { input, dayTwo } = draft;
  const changes = draft.desired.flatMap((d) => {
    const host = input.observed.hosts[d.name];
    const want = dayTwo.offsets[d.name];
    return want !== undefined && host?.reachable && (host.priorityOffset ?? 0) !== want ? [{ d, want }] : [];
  }).sort((a, b) => b.want - a.want);
  for (const { d, want } of changes) draft.actions.push({ kind: 'SetPriorityOffset', node: d.name, dropletId: d.id, offset: want });
  for (const name of dayTwo.powerOn) {
    const d = draft.desired.find((x) => x.name === name);
    if (d) draft.actions.push({ kind: 'PowerOnDroplet', node: d.name, dropletId: d.id });
  }
}

// 5. The reserved IP: adopt or create, and give it its first assignment.
function planReservedIP(draft: Draft): { backstopSince?: Date; waitMs?: number } {
  const { input, actions, masters } = draft;
  const { spec } = input.object;
  const reservedIP = input.observed.reservedIP;
  const node0 = draft.kept.get(0);
  if (spec.floatingIP.address && reservedIP?.ip !== spec.floatingIP.address) {
    actions.push({ kind: 'AdoptReservedIP', ip: spec.floatingIP.address });
  } else if (!reservedIP) {
    // An address being reserved in the region may be ours (a pass whose answer was lost): wait.
    if (node0?.status === 'active' && !input.observed.reservedIPSettling) {
      actions.push({ kind: 'CreateReservedIP', ontoDropletId: node0.id, node: node0.name });
    }
  } else if (reservedIP.dropletId === null && !reservedIP.locked) {
    const target = masters.length === 1 ? masters[0] : node0;
    if (target?.status === 'active') {
      actions.push({ kind: 'AssignReservedIP', ip: reservedIP.ip, dropletId: target.id, node: target.name, reason: 'FirstAssignment' });
    }
  } else if (!reservedIP.locked) {
    return planBackstop(draft, reservedIP);
  } else {
    draft.moving = true;
  }
  draft.busy = true;
  return {};
}

// 6. Backstop: the IP on a node keepalived does not make MASTER while another node is.
function planBackstop(draft: Draft, reservedIP: NonNullable<Observed['reservedIP']>): { backstopSince?: Date; waitMs?: number } {
  const { input, masters } = draft;
  const holder = draft.desired.find((d) => d.id === reservedIP.dropletId);
  const holderState = holder ? stateOf(input, holder.index) : undefined;
  if (!holder || !holderState || holderState === 'MASTER') return {};
  // No MASTER yet: an election is under way (the holder went FAULT or BACKUP; a BACKUP takes over
  // within about a second). Look again soon: the new MASTER's watch may not be running (a node
  // back from a crash, a node past the session budget), and status should name it at once.
  if (masters.length === 0) return { waitMs: PROGRESS_REQUEUE_MS };
  if (masters.length !== 1) return {};
  const backstopSince = input.backstopSince ?? input.now;
  const waited = input.now.getTime() - backstopSince.getTime();
  // The failover script on the new MASTER is usually moving the IP right now: look again soon
  // (status follows), and step in only when the grace is over.
  if (waited < input.backstopGraceMs) {
    // The script's assign usually completes within a couple of seconds: look often until then.
    const every = waited < FAILOVER_UNDER_WAY_MS ? MOVING_REQUEUE_MS : PROGRESS_REQUEUE_MS;
    return { backstopSince, waitMs: Math.min(input.backstopGraceMs - waited, every) };
  }
  draft.actions.push({
    kind: 'AssignReservedIP', ip: reservedIP.ip, dropletId: masters[0]!.id, node: masters[0]!.name, reason: 'Backstop',
  });
  draft.busy = true;
  return {};
}

/**
 * When no node runs keepalived yet (creation, or every node restarted), one starts first: the
 * node the reserved IP is on, else the lowest index. It becomes MASTER and the others start
 * once it carries the config, as BACKUPs: the first election moves no address, and no
 * "failover" is recorded at creation. Undefined when some node already runs keepalived.
 */
function firstToStart(input: PlanInput, staying: readonly ObservedDroplet[], starts: readonly Action[]): Action | undefined {
  const hostOf = (d: ObservedDroplet) => input.observed.hosts[nodeName(input.object.metadata.name, d.index)];
  if (staying.some((d) => hostOf(d)?.keepalivedRunning === true)) return undefined;
  const startable = staying.filter((d) =>
    hostOf(d)?.reachable === true && starts.some((a) => a.kind === 'ApplyConfig' && a.dropletId === d.id));
  if (startable.length < 2) return undefined;
  const first = startable.find((d) => d.id === input.observed.reservedIP?.dropletId) ??
    [...startable].sort((a, b) => a.index - b.index)[0]!;
  return starts.find((a) => a.kind === 'ApplyConfig' && a.dropletId === first.id);
}

// 7. Config: every active node that stays whose files differ from the rendered ones, or whose
//    daemons are not running (drift: someone stopped them). Nodes on their way out (surplus,
//    or drifted and about to be replaced) are left alone: their keepalived may be stopped on
//    purpose after a hand-over.
//    A node whose keepalived does not run yet (new, replaced, or stopped by hand) starts only
//    once every running peer carries the current config, so it already hears the MASTER's
//    unicast adverts when it starts: started earlier, it would hear none, declare itself MASTER
//    after three advert intervals and claim the reserved IP.
function finish(
  actions: Action[], requeueAfterMs: number | undefined, backstopSince: Date | undefined, input: PlanInput, staying: ObservedDroplet[],
  // Every node, those in maintenance too: a BACKUP in maintenance still takes over from a failed MASTER.
  peers: readonly ObservedDroplet[] = staying): Omit<Plan, 'dayTwo'> {
  const reloads: Action[] = [];
  const starts: Action[] = [];
  let masterDownSince: Date | undefined;
  const hostOf = (d: ObservedDroplet) => input.observed.hosts[nodeName(input.object.metadata.name, d.index)];
  for (const d of staying) {
    const name = nodeName(input.object.metadata.name, d.index);
    const want = input.desiredHashes[name];
    const host = input.observed.hosts[name];
    // HAProxy dead on the MASTER, keepalived up, a BACKUP ready: keepalived's failover first.
    if (host?.vrrpState === 'MASTER' && host.haproxyRunning === false && host.keepalivedRunning === true && host.configHash === want &&
      peers.some((o) => o !== d && hostOf(o)?.vrrpState === 'BACKUP')) {
      masterDownSince = input.masterHAProxyDownSince ?? input.now;
      const waited = input.now.getTime() - masterDownSince.getTime();
      if (waited < MASTER_REPAIR_GRACE_MS) {
        requeueAfterMs = Math.min(requeueAfterMs ?? MASTER_REPAIR_GRACE_MS - waited, MASTER_REPAIR_GRACE_MS - waited);
        continue;
      }
    }
    // A flushed firewall is drift like a stopped daemon.
    const stopped = host?.reachable === true &&
      (host.haproxyRunning === false || host.keepalivedRunning === false || host.firewallLoaded === false);
    // Never load a firewall that shuts the operator out (status says why).
    const lockOut = lockedOutAddress(input.object.spec, host) !== undefined;
    if (d.status === 'active' && want !== undefined && !host?.hostKeyChanged && !lockOut && (host?.configHash !== want || stopped)) {
      (host?.keepalivedRunning === true ? reloads : starts).push({ kind: 'ApplyConfig', node: name, dropletId: d.id });
    }
  }
  actions.push(...reloads);
  const first = firstToStart(input, staying, starts);
  if (reloads.length === 0) actions.push(...(first ? [first] : starts));
  if (starts.length && (reloads.length || first)) requeueAfterMs = Math.min(requeueAfterMs ?? PROGRESS_REQUEUE_MS, PROGRESS_REQUEUE_MS);
  const out: Omit<Plan, 'dayTwo'> = { actions };
  if (requeueAfterMs !== undefined) out.requeueAfterMs = requeueAfterMs;
  if (backstopSince) out.backstopSince = backstopSince;
  if (masterDownSince) out.masterHAProxyDownSince = masterDownSince;
  return out;
}

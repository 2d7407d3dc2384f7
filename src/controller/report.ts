// Status: computed from what was observed and what acting changed, written once and only if it
// changed; Events for what a person should notice (a failover, a warning turning on); metrics.
import type { HALoadBalancer, HALoadBalancerStatus } from '../api/types.ts';
import type { Problem } from '../api/validate.ts';
import { conditionTypes as T } from './conditions.ts';
import type { ControllerContext, PassContext } from './context.ts';
import { dayTwoConditionTypes as D, describePlannedFailover } from './handover.ts';
import { syncMetricsEndpoints } from './metrics-endpoints.ts';
import { failoverReason, nodeSeries } from './node-metrics.ts';
import { computeStatus, stalledStatus, statusChanged, type StatusInput } from './status.ts';

/** Computes the status, tells people what changed, and writes it if it changed. */
export async function report(ctx: PassContext, input: Omit<StatusInput, 'now'>): Promise<HALoadBalancerStatus> {
  const { object } = input;
  const status = computeStatus({ ...input, now: ctx.clock.now().toISOString() });
  ctx.metrics.setCertificates(object.metadata.namespace ?? 'default', object.metadata.name, input.certificates ?? []);
  await noticePlannedFailover(ctx, object, status);
  await noticeFailover(ctx, object, status);
  await noticeWarnings(ctx, object, status);
  await noticeDayTwo(ctx, object, status);
  await writeStatus(ctx, object, status);
  recordNodeMetrics(ctx, object, status);
  ctx.metrics.setNodeSeries(object.metadata.namespace ?? 'default', object.metadata.name, nodeSeries(object, status, input.observed));
  await syncMetricsEndpoints(ctx, object, status);
  return status;
}

/** Ready=False and Stalled=True with the reason; nothing else in status moves. */
export async function reportStalled(ctx: PassContext, object: HALoadBalancer, reason: string, problems: readonly Problem[]): Promise<void> {
  await writeStatus(ctx, object, stalledStatus(object, problems, ctx.clock.now().toISOString(), reason));
  ctx.log.info({ problems, reason }, 'refused spec');
}

async function writeStatus(ctx: PassContext, object: HALoadBalancer, status: HALoadBalancerStatus): Promise<void> {
  if (statusChanged(object.status, status)) await ctx.kube.patchStatus(object, status);
}

async function noticeFailover(ctx: PassContext, object: HALoadBalancer, status: HALoadBalancerStatus): Promise<void> {
  const before = object.status?.activeNode;
  if (!before || !status.activeNode || before === status.activeNode) return;
  // A planned failover is counted as such, so that rolling maintenance does not look like flapping.
  const planned = status.lastFailover?.reason ?? 'Unplanned';
  const reason = planned === 'Unplanned' ? failoverReason(before, status.nodes ?? []) : 'planned';
  ctx.metrics.failovers.inc({ namespace: object.metadata.namespace ?? 'default', name: object.metadata.name, reason });
  const why = planned === 'Unplanned' ? 'unplanned: keepalived moved MASTER' : `planned: ${planned}`;
  await ctx.events.record(object, 'Normal', 'FailoverObserved',
    `reserved IP ${status.floatingIP} moved from ${before} to ${status.activeNode} (${why})`);
  ctx.log.info({ from: before, to: status.activeNode, reason, planned }, 'observed failover');
}

/** FailoverRequested when the operator asks keepalived for a planned failover. */
async function noticePlannedFailover(ctx: PassContext, object: HALoadBalancer, status: HALoadBalancerStatus): Promise<void> {
  const planned = status.plannedFailover;
  if (!planned || planned.timedOut || planned.requested === object.status?.plannedFailover?.requested) return;
  await ctx.events.record(object, 'Normal', 'FailoverRequested', describePlannedFailover(planned));
  ctx.log.info({ from: planned.from, to: planned.to, reason: planned.reason }, 'requested planned failover');
}

/** Events for the day-two conditions as they change: a refused or timed-out planned failover
 *  (Warning), a node entering or leaving maintenance, nodes found on one physical machine. */
async function noticeDayTwo(ctx: PassContext, object: HALoadBalancer, status: HALoadBalancerStatus): Promise<void> {
  const find = (conditions: HALoadBalancerStatus['conditions'], type: string) => conditions?.find((c) => c.type === type);
  const now = (type: string) => find(status.conditions, type);
  const before = (type: string) => find(object.status?.conditions, type);
  const planned = now(D.plannedFailover);
  if (planned?.status === 'False' && planned.reason !== before(D.plannedFailover)?.reason) {
    await ctx.events.record(object, 'Warning', planned.reason === 'TimedOut' ? 'FailoverTimedOut' : 'FailoverRefused', planned.message);
  }
  const maintenance = now(D.nodeInMaintenance);
  if ((maintenance?.message ?? '') !== (before(D.nodeInMaintenance)?.message ?? '')) {
    await ctx.events.record(object, 'Normal', 'NodeInMaintenance', maintenance?.message ?? 'no node is in maintenance');
  }
  const colocated = now(D.nodesColocated);
  if (colocated && colocated.message !== before(D.nodesColocated)?.message) {
    await ctx.events.record(object, 'Warning', 'NodesColocated', colocated.message);
  }
}

/** A Warning Event when a warning condition turns on (or changes its reason): SSH open to
 *  all, a certificate near its end, a firewall refused for locking the operator out. */
async function noticeWarnings(ctx: PassContext, object: HALoadBalancer, status: HALoadBalancerStatus): Promise<void> {
  const before = (type: string) => object.status?.conditions?.find((c) => c.type === type);
  for (const c of status.conditions ?? []) {
    const warning = ((c.type === T.sshExposed || c.type === T.certificateExpiring) && c.status === 'True') ||
      (c.type === T.configApplied && c.reason === 'WouldLockOut');
    const previous = before(c.type);
    if (warning && (previous?.status !== c.status || previous.reason !== c.reason)) {
      await ctx.events.record(object, 'Warning', c.type === T.configApplied ? c.reason : c.type, c.message);
    }
  }
}

function recordNodeMetrics(ctx: PassContext, object: HALoadBalancer, status: HALoadBalancerStatus): void {
  const labels = { namespace: object.metadata.namespace ?? 'default', name: object.metadata.name };
  for (const state of ['MASTER', 'BACKUP', 'FAULT', 'UNKNOWN'] as const) {
    ctx.metrics.nodesByState.set({ ...labels, state }, (status.nodes ?? []).filter((n) => n.vrrpState === state).length);
  }
}

/** An object that is gone leaves no series behind; its metrics Service goes with it (owner). */
export function forgetObjectMetrics(ctx: ControllerContext, namespace: string, name: string): void {
  ctx.metrics.forgetObject(namespace, name);
  ctx.metricsEndpoints.forget(namespace, name);
}

// The per-node series of each HALoadBalancer on the operator's /metrics, as a pure function of
// the status just computed and what was observed: VRRP state, holder of the floating IP, servers
// up per backend, when the node's files were applied, whether the node answered; and the reason
// of a failover. Cardinality is bounded by the spec (README, "Metrics and alerts"): at most 5
// nodes × (4 states + 3) series, 5 × backends, and 4 failover reasons per object.
import type { HALoadBalancer, HALoadBalancerStatus, NodeStatus } from '../api/types.ts';
import type { Observed } from './observed.ts';

export const VRRP_STATES = ['MASTER', 'BACKUP', 'FAULT', 'UNKNOWN'] as const;
export type VRRPState = (typeof VRRP_STATES)[number];

/**
 * Why the floating IP left its holder, from what that node is now: gone (replaced, scaled down,
 * dead), unreachable, no longer MASTER (its check failed, keepalived stopped), or still MASTER
 * (a split brain resolved, or a handover).
 */
export const FAILOVER_REASONS = ['node_gone', 'node_unreachable', 'master_lost', 'other'] as const;
export type FailoverReason = (typeof FAILOVER_REASONS)[number];

export interface NodeSeries {
  node: string;
  vrrpState: VRRPState;
  holdsIP: boolean;
  reachable: boolean;
  /** Servers HAProxy sees UP, per backend of the spec; absent when the node was not read. */
  serversUp?: Record<string, number>;
  /** When the node's files were last applied (the applied hash file's time), Unix seconds. */
  configAppliedSeconds?: number;
}

/** HAProxy's server statuses that count as up ("UP", "UP 1/3" while rising is still up). */
const isUp = (state: string) => state === 'UP' || state.startsWith('UP ') || state === 'no check';

export function nodeSeries(object: HALoadBalancer, status: HALoadBalancerStatus, observed: Observed): NodeSeries[] {
  const backends = object.spec.backends.map((b) => b.name);
  return (status.nodes ?? []).map((n) => {
    const host = observed.hosts[n.name];
    const series: NodeSeries = {
      node: n.name,
      vrrpState: n.vrrpState ?? 'UNKNOWN',
      holdsIP: status.activeNode === n.name,
      reachable: host?.reachable === true,
    };
    if (host?.reachable && host.servers) {
      const up: Record<string, number> = Object.fromEntries(backends.map((b) => [b, 0]));
      for (const [key, state] of Object.entries(host.servers)) {
        const backend = key.slice(0, key.indexOf('/'));
        if (backend in up && isUp(state)) up[backend]!++;
      }
      series.serversUp = up;
    }
    if (host?.configAppliedAt !== undefined) series.configAppliedSeconds = host.configAppliedAt;
    return series;
  });
}

/** The reason of a change of holder from `previous`, by what that node is in the new status. */
export function failoverReason(previous: string, nodes: readonly NodeStatus[]): FailoverReason {
  const node = nodes.find((n) => n.name === previous);
  if (!node) return 'node_gone';
  if (!node.vrrpState || node.vrrpState === 'UNKNOWN') return 'node_unreachable';
  if (node.vrrpState !== 'MASTER') return 'master_lost';
  return 'other';
}

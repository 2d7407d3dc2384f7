// What the plugin shows of an HALoadBalancer, read from its status alone (the operator's
// observations): one row per node, the conditions worth a person's eye, and the checks a
// failover target must pass before the plugin asks for it.
import type { FailoverRecord, HALoadBalancer, NodeStatus, PlannedFailover } from '../api/types.ts';

export interface NodeRow {
  name: string;
  /** active (holds the reserved IP), standby, or maintenance. */
  role: 'active' | 'standby' | 'maintenance';
  vrrpState: string;
  ipHolder: boolean;
  configHash: string;
  /** The last failover this node took part in, for people ("became active 2m ago (PreferredNode)"). */
  lastFailover: string;
  serversUp: string;
  maintenance?: string;
}

export interface StatusView {
  name: string;
  namespace: string;
  floatingIP?: string;
  activeNode?: string;
  ready: string;
  /** Conditions a person should read now: anything True that is not the usual, or False that should be True. */
  notes: { type: string; status: string; reason: string; message: string }[];
  plannedFailover?: PlannedFailover;
  lastFailover?: FailoverRecord;
  nodes: NodeRow[];
}

const USUAL: Record<string, string> = {
  Ready: 'True', Reconciling: 'False', Stalled: 'False', DropletsReady: 'True', FloatingIPAssigned: 'True', ConfigApplied: 'True',
  FailoverReady: 'True', Degraded: 'False', FailoverTokenShared: 'False',
};

/** "3m ago", "2h ago", from an RFC 3339 time. */
export function age(time: string | undefined, now: Date): string {
  if (!time) return '';
  const s = Math.max(0, Math.round((now.getTime() - Date.parse(time)) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  if (s < 172_800) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86_400)}d ago`;
}

export function statusView(object: HALoadBalancer, now: Date): StatusView {
  const status = object.status ?? {};
  const ready = status.conditions?.find((c) => c.type === 'Ready');
  const last = status.lastFailover;
  const row = (n: NodeStatus): NodeRow => {
    const holder = status.activeNode === n.name;
    const took = last?.to === n.name ? `became active ${age(last.time, now)}`
      : last?.from === n.name ? `handed over ${age(last.time, now)}`
      : '';
    return {
      name: n.name,
      role: n.maintenance ? 'maintenance' : holder ? 'active' : 'standby',
      vrrpState: n.vrrpState ?? 'UNKNOWN',
      ipHolder: holder,
      configHash: n.configHash?.replace(/^sha256:/, '').slice(0, 12) ?? '',
      lastFailover: took && last?.reason ? `${took} (${last.reason})` : took,
      serversUp: n.serversUp ?? '',
      ...(n.maintenance ? { maintenance: n.maintenance } : {}),
    };
  };
  return {
    name: object.metadata.name,
    namespace: object.metadata.namespace ?? 'default',
    ...(status.floatingIP ? { floatingIP: status.floatingIP } : {}),
    ...(status.activeNode ? { activeNode: status.activeNode } : {}),
    ready: ready ? `Ready=${ready.status} ${ready.reason}: ${ready.message}` : 'waiting for the operator',
    notes: (status.conditions ?? [])
      .filter((c) => c.type !== 'Ready' && USUAL[c.type] !== c.status && !(c.status === 'False' && !(c.type in USUAL)))
      .map((c) => ({ type: c.type, status: c.status, reason: c.reason, message: c.message })),
    ...(status.plannedFailover ? { plannedFailover: status.plannedFailover } : {}),
    ...(last ? { lastFailover: last } : {}),
    nodes: (status.nodes ?? []).map(row),
  };
}

/** Columns padded to their widest cell, two spaces apart, as kubectl prints tables. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  return [header, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('   ').trimEnd()).join('\n');
}

/**
 * Why `node` cannot take MASTER now, as the operator would refuse it (handover.ts), read from
 * status: undefined when it can. The operator checks again from what it sees on the hosts.
 */
export function refuseTarget(object: HALoadBalancer, node: string): { reason: string; message: string } | undefined {
  const nodes = object.status?.nodes ?? [];
  const n = nodes.find((x) => x.name === node);
  if (!n) {
    const known = nodes.map((x) => x.name).join(', ') || 'none yet';
    return { reason: 'NodeNotFound', message: `${node} is not a node of ${object.metadata.name} (${known})` };
  }
  if (n.maintenance) return { reason: 'NodeInMaintenance', message: `${node} is ${n.maintenance}` };
  if (object.status?.activeNode === node) return undefined;
  if (n.vrrpState !== 'BACKUP') {
    return { reason: 'NotHealthyBackup', message: `${node} is ${n.vrrpState ?? 'UNKNOWN'}, not a healthy BACKUP` };
  }
  if (n.serversUp?.startsWith('0/')) return { reason: 'NotHealthyBackup', message: `${node} sees no backend server UP (${n.serversUp})` };
  return undefined;
}

/** The BACKUP a plain `failover` hands MASTER to: the first that passes refuseTarget. */
export function pickTarget(object: HALoadBalancer): string | undefined {
  return (object.status?.nodes ?? []).map((n) => n.name).find((name) => name !== object.status?.activeNode && !refuseTarget(object, name));
}

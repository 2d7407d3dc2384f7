// One observed value per reconcile: what DigitalOcean and the hosts showed for one
// HALoadBalancer. The planner and the status writer decide from this alone, without I/O.

/** A load-balancer droplet as DigitalOcean lists it (the provider's NodeDroplet fits). */
export interface ObservedDroplet {
  id: number;
  name: string;
  /** Node index, from the droplet's tags. */
  index: number;
  /** DigitalOcean status: new, active, off, archive. */
  status: string;
  createdAt: string;
  size?: string;
  /** Image slug and id, as DigitalOcean reports them. */
  image?: string;
  imageId?: string;
  publicIPv4?: string;
  privateIPv4?: string;
  /** The private address's netmask: with it, the VPC's range. */
  privateNetmask?: string;
  /** The host key fingerprint pinned by the droplet's tag, set when the operator created it with a key it made. */
  hostKeyPin?: string;
}

export interface ObservedReservedIP {
  ip: string;
  dropletId: number | null;
  /** An action is in progress on the address. */
  locked: boolean;
}

/** keepalived's state as the notify script wrote it to /run/halb/vrrp-state. */
export type HostVRRPState = 'MASTER' | 'BACKUP' | 'FAULT' | 'STOP';

export interface ObservedHost {
  /** SSH answered and the host was read. */
  reachable: boolean;
  /** Why it could not be read, for the condition message. */
  error?: string;
  /** The host presented a different key from the one pinned at first contact. */
  hostKeyChanged?: boolean;
  vrrpState?: HostVRRPState;
  /** sha256 of the files the host carries now. */
  configHash?: string;
  /** When those files were swapped in, in Unix seconds. */
  configAppliedAt?: number;
  /** The daemon's own message when the last validation on the host failed. */
  applyError?: string;
  anchorIPv4?: string;
  privateIPv4?: string;
  /** The host key fingerprint the host presented (pinned on first contact). */
  hostKey?: string;
  haproxyRunning?: boolean;
  keepalivedRunning?: boolean;
  keepalivedVersion?: string;
  haproxyVersion?: string;
  /** HAProxy's view of each backend server, `backend/server` → UP, DOWN, MAINT, ... */
  servers?: Record<string, string>;
  /** The operator's nftables table is loaded on the host. */
  firewallLoaded?: boolean;
  /** Where the operator's SSH session comes from, as the host sees it. */
  operatorAddress?: string;
  /** sshd's effective settings (`sshd -T`), for the SSHExposed condition. */
  sshd?: Record<string, string>;
  /** The number in keepalived's priority-offset file (unset: no file yet, which means 0). */
  priorityOffset?: number;
  /** DigitalOcean's maintenance notice in the droplet's metadata (live_migrate). */
  maintenanceEvent?: string;
}

/** Everything observed for one object; `hosts` is keyed by node name. */
export interface Observed {
  droplets: ObservedDroplet[];
  reservedIP?: ObservedReservedIP;
  /** No reserved IP was found for the object, but one in its region is being reserved onto a
   *  droplet (locked, on no droplet yet): it may be the object's own, so none is made meanwhile. */
  reservedIPSettling?: boolean;
  hosts: Record<string, ObservedHost>;
  /** Droplets of the account that share a physical machine, one list of ids per machine
   *  (DigitalOcean's neighbours report); unset when it could not be read. */
  neighborGroups?: number[][];
}

/** DigitalOcean statuses of droplets that will not come back by themselves. */
export const DEAD_DROPLET_STATUSES: ReadonlySet<string> = new Set(['off', 'archive']);

/**
 * The droplet that stands for node `index`, one rule for the planner, the status and the
 * renderer's facts: among the index's live droplets the one holding the reserved IP, else the
 * oldest live one, else the oldest. The planner deletes the others.
 */
export function standingDroplet<T extends { id: number; index: number; status: string }>(
  droplets: readonly T[], index: number, holderId: number | null | undefined,
): T | undefined {
  const ofIndex = droplets.filter((d) => d.index === index).sort((a, b) => a.id - b.id);
  const live = ofIndex.filter((d) => !DEAD_DROPLET_STATUSES.has(d.status));
  return live.find((d) => d.id === holderId) ?? live[0] ?? ofIndex[0];
}

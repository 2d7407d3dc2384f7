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
}

/** Everything observed for one object; `hosts` is keyed by node name. */
export interface Observed {
  droplets: ObservedDroplet[];
  reservedIP?: ObservedReservedIP;
  hosts: Record<string, ObservedHost>;
}

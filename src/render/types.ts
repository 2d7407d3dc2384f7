// Inputs and outputs of the renderer. The renderer is pure: the same HALoadBalancer, Secrets,
// observed facts and settings always give byte-identical files.

/** What the operator observed of one load-balancer node: the shape of status.nodes[]. */
export interface ObservedNode {
  name: string;
  dropletID?: number;
  publicIPv4?: string;
  privateIPv4: string;
  anchorIPv4: string;
  /** OpenSSH public key lines root's authorized_keys must hold, the operator's first. Unset:
   *  the file is not managed (offline renders without the SSH key Secret). */
  authorizedKeys?: string[];
}

/** A droplet carrying a backend's dropletTag. */
export interface TaggedDroplet {
  name: string;
  privateIPv4: string;
}

/** Observed facts the files depend on: the shape of status, plus tagged backend droplets. */
export interface ObservedFacts {
  floatingIP: string;
  nodes: ObservedNode[];
  /** Droplets per DigitalOcean tag, for backends with dropletTag. A missing tag means none. */
  taggedDroplets?: Record<string, TaggedDroplet[]>;
  /** The VPC's range (private address and netmask, as DigitalOcean reports them): who may
   *  scrape metrics when spec.access.metricsSourceCIDRs is empty. Unset: the nodes themselves. */
  vpcCIDR?: string;
}

/** Versions of the daemons installed on a host, as `keepalived --version` / `haproxy -v` print them. */
export interface DaemonVersions {
  keepalived: string;
  haproxy: string;
}

/** Absolute paths on the load-balancer hosts. */
export interface RenderPaths {
  haproxyConfig: string;
  haproxyCertDir: string;
  haproxyAdminSocket: string;
  keepalivedConfig: string;
  checkScript: string;
  notifyScript: string;
  failoverScript: string;
  failoverToken: string;
  failoverLog: string;
  /** Holds one word, MASTER, BACKUP, FAULT or STOP, for the operator to read. */
  vrrpStateFile: string;
  /** keepalived's track_file: a number the operator writes, added to the node's priority. */
  priorityOffset: string;
  /** The nftables host firewall, and the systemd unit that loads it at boot. */
  firewall: string;
  firewallUnit: string;
  /** The sshd drop-in (keys only) and root's authorized_keys. */
  sshdConfig: string;
  authorizedKeys: string;
}

export interface RenderSettings {
  /** Versions per node name; nodes not listed use defaultVersions. */
  versions?: Record<string, DaemonVersions>;
  defaultVersions: DaemonVersions;
  /** DigitalOcean API base URL, without /v2. */
  apiBaseURL: string;
  /** Droplet metadata service base URL. */
  metadataBaseURL: string;
  /** The VPC interface on the droplets: VRRP runs over it. */
  vpcInterface: string;
  /** HAProxy health endpoint on 127.0.0.1, which keepalived's check calls. */
  healthPort: number;
  /** Prometheus metrics on the node's VPC address. */
  metricsPort: number;
  /** sshd's port on the nodes, opened by the host firewall to spec.access.sshSourceCIDRs. */
  sshPort: number;
  /** How long the failover script keeps retrying before it gives up. */
  failoverDeadlineSeconds: number;
  paths: RenderPaths;
}

export interface RenderedFile {
  /** Absolute path on the host. */
  path: string;
  /** File mode, for example 0o600. */
  mode: number;
  content: string;
}

export interface RenderedNode {
  name: string;
  files: RenderedFile[];
  /** `sha256:<hex>` over every file's path, mode and content, in path order. */
  configHash: string;
}

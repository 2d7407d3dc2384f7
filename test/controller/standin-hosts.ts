// A stand-in for the load-balancer hosts at the HostConnector seam, for the reconciler's
// in-process tests (no root, no SSH, no daemons). It keeps what a host would show in memory:
// its files and their hash, which daemons run, the VRRP state, and the addresses the metadata
// service reports. Hosts appear and vanish with the simulator's droplets. keepalived is modelled
// as far as the operator can see it: the first node of an object to start keepalived becomes
// MASTER, later ones BACKUP, and a MASTER that stops hands over to a running BACKUP, whose
// failover script then moves the reserved IP (onMaster). The contract is the real one:
// results, or the HostErrors of src/hosts/errors.ts.
import { randomBytes } from 'node:crypto';
import type { ApplyResult, HostConnector, HostSession, HostState, HostTarget, RemoteFile } from '../../src/hosts/connector.ts';
import { ConfigRefusedError, HostAuthenticationError, HostKeyChangedError, HostUnreachableError } from '../../src/hosts/errors.ts';
import { publicKeyOf } from '../../src/controller/ssh-access.ts';
import { publicKeyFingerprint } from '../../src/digitalocean/cloud-init.ts';
import { firstBootFromUserData } from '../../src/sandbox/fabric/cloud-config.ts';
import type { DropletView } from '../../src/sandbox/digitalocean/simulator.ts';

export interface StandInHost {
  droplet: DropletView;
  hostKey: string;
  authorizedKeys: string[];
  files: Map<string, RemoteFile>;
  configHash?: string;
  haproxyRunning: boolean;
  keepalivedRunning: boolean;
  firewallLoaded: boolean;
  vrrpState?: 'MASTER' | 'BACKUP' | 'FAULT' | 'STOP';
  /** HAProxy's server states, `backend/server` → UP, DOWN, ...; set by a test. */
  servers?: Record<string, string>;
  /** When files were last swapped in, Unix seconds. */
  configAppliedAt?: number;
  /** Answers SSH (false: crashed or not booted). */
  up: boolean;
  /** keepalived's priority-offset track_file, as the operator last wrote it. */
  priorityOffset?: number;
  /** What the droplet's metadata announces (DigitalOcean's live_migrate). */
  maintenanceEvent?: string;
}

const keyBlob = (line: string) => line.trim().split(/\s+/)[1];

export class StandInHosts implements HostConnector {
  readonly hosts = new Map<string, StandInHost>();
  /** Every session opened, for tests that count connections. */
  opened = 0;
  /** A daemon refusing files: set to make the next apply on any host fail validation. */
  refuse: { daemon: string; detail: string } | undefined;
  /** keepalived made a host MASTER: its failover script would move the reserved IP now. */
  onMaster: (host: StandInHost) => void = () => undefined;
  /** Added latency of every host call, for tests of cancellation. */
  latencyMs = 0;

  add(droplet: DropletView): void {
    // As cloud-init does: the host key user_data gives (ssh_keys), else one of its own.
    const given = firstBootFromUserData(droplet.userData).hostKeyPublic;
    this.hosts.set(droplet.publicIPv4, {
      droplet, hostKey: given ? publicKeyFingerprint(given) : `SHA256:${randomBytes(32).toString('base64').replace(/=+$/, '')}`,
      authorizedKeys: [...droplet.sshPublicKeys],
      files: new Map(), haproxyRunning: false, keepalivedRunning: false, firewallLoaded: false, up: true,
    });
  }

  remove(droplet: DropletView): void {
    this.hosts.delete(droplet.publicIPv4);
  }

  byName(name: string): StandInHost | undefined {
    return [...this.hosts.values()].find((h) => h.droplet.name === name);
  }

  /** The host's processes die (a crash): keepalived elsewhere takes over. */
  crash(name: string): void {
    const host = this.byName(name)!;
    const wasMaster = host.vrrpState === 'MASTER';
    Object.assign(host, { up: false, haproxyRunning: false, keepalivedRunning: false, vrrpState: undefined });
    if (wasMaster) this.electAfter(host);
  }

  /** A power action reached the droplet: off is a crash; on is a boot with no daemon running
   *  (as in the sandbox, which has no systemd), files and the priority-offset file kept. */
  power(droplet: DropletView, change: 'off' | 'on' | 'reboot'): void {
    const host = this.byName(droplet.name);
    if (!host) return;
    if (change !== 'on' && host.up) this.crash(droplet.name);
    if (change !== 'off') host.up = true;
  }

  async open(target: HostTarget, signal?: AbortSignal): Promise<HostSession> {
    await this.pause(signal);
    const host = this.hosts.get(target.host);
    if (!host?.up) throw new HostUnreachableError(target.host, `ssh to ${target.host} failed: connect ECONNREFUSED`);
    if (target.pinnedHostKey && target.pinnedHostKey !== host.hostKey) {
      throw new HostKeyChangedError(target.host, target.pinnedHostKey, host.hostKey);
    }
    const offered = keyBlob(publicKeyOf(target.privateKey));
    if (!host.authorizedKeys.some((k) => keyBlob(k) === offered)) {
      throw new HostAuthenticationError(target.host, `ssh to ${target.host} failed: All configured authentication methods failed`);
    }
    this.opened++;
    return this.session(host);
  }

  private session(host: StandInHost): HostSession {
    let open = true;
    const check = async (signal?: AbortSignal) => {
      await this.pause(signal);
      if (!open || !host.up) throw new HostUnreachableError(host.droplet.publicIPv4, `${host.droplet.publicIPv4} stopped answering`);
    };
    return {
      hostKey: host.hostKey,
      readState: async (signal) => { await check(signal); return this.state(host); },
      apply: async (files, hash, current, signal) => { await check(signal); return this.apply(host, files, hash, current); },
      stopKeepalived: async (signal) => { await check(signal); this.stopKeepalived(host); },
      setPriorityOffset: async (offset, signal) => { await check(signal); this.setPriorityOffset(host, offset); },
      close: () => { open = false; },
    };
  }

  private async pause(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    if (!this.latencyMs) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, this.latencyMs);
      signal?.addEventListener('abort', () => { clearTimeout(timer); reject(signal.reason); }, { once: true });
    });
  }

  private state(host: StandInHost): HostState {
    const d = host.droplet;
    return {
      haproxyRunning: host.haproxyRunning, keepalivedRunning: host.keepalivedRunning, booted: true, firewallLoaded: host.firewallLoaded,
      anchorIPv4: d.anchorIPv4, privateIPv4: d.privateIPv4, dropletId: d.id, keepalivedVersion: '2.2.7', haproxyVersion: '2.6.12',
      sshClientAddress: '203.0.113.253',
      sshd: { passwordauthentication: 'no', kbdinteractiveauthentication: 'no', permitrootlogin: 'without-password' },
      ...(host.configHash ? { configHash: host.configHash } : {}),
      ...(host.vrrpState ? { vrrpState: host.vrrpState } : {}),
      ...(host.servers ? { servers: { ...host.servers } } : {}),
      ...(host.configAppliedAt ? { configAppliedAt: host.configAppliedAt } : {}),
      ...(host.priorityOffset === undefined ? {} : { priorityOffset: host.priorityOffset }),
      ...(host.maintenanceEvent ? { maintenanceEvent: host.maintenanceEvent } : {}),
    };
  }

  private apply(host: StandInHost, files: readonly RemoteFile[], hash: string, current: HostState): ApplyResult {
    const running = current.haproxyRunning && current.keepalivedRunning && current.firewallLoaded;
    if (current.configHash === hash && running) return { outcome: 'unchanged' };
    if (this.refuse) throw new ConfigRefusedError(host.droplet.publicIPv4, this.refuse.daemon, this.refuse.detail);
    for (const file of files) host.files.set(file.path, file);
    const keys = files.find((f) => f.path.endsWith('/authorized_keys'));
    if (keys) host.authorizedKeys = keys.content.split('\n').filter((l) => l.trim() && !l.startsWith('#'));
    if (host.configHash !== hash) host.configAppliedAt = Math.floor(Date.now() / 1000);
    host.configHash = hash;
    const steps = [
      host.haproxyRunning ? 'reloaded haproxy' : 'started haproxy', host.keepalivedRunning ? 'reloaded keepalived' : 'started keepalived',
      'loaded firewall',
    ];
    host.haproxyRunning = true;
    host.firewallLoaded = true;
    if (!host.keepalivedRunning) this.startKeepalived(host);
    return { outcome: 'applied', steps };
  }

  private peers(host: StandInHost): StandInHost[] {
    const owner = host.droplet.tags.find((t) => t.startsWith('halb-uid-'));
    return [...this.hosts.values()].filter((h) => h !== host && h.droplet.tags.includes(owner ?? '') && h.keepalivedRunning);
  }

  private startKeepalived(host: StandInHost): void {
    host.keepalivedRunning = true;
    const master = this.peers(host).some((p) => p.vrrpState === 'MASTER');
    host.vrrpState = master ? 'BACKUP' : 'MASTER';
    if (!master) this.onMaster(host);
  }

  private stopKeepalived(host: StandInHost): void {
    const wasMaster = host.vrrpState === 'MASTER';
    host.keepalivedRunning = false;
    host.vrrpState = 'STOP';
    if (wasMaster) this.electAfter(host);
  }

  /**
   * keepalived reading the track_file: at -254 or below a MASTER leaves with a priority-0 advert
   * (FAULT) and the BACKUP with the highest priority takes over; above it a FAULT node whose
   * HAProxy serves returns as BACKUP. Other values only change who is chosen next.
   */
  private setPriorityOffset(host: StandInHost, offset: number): void {
    host.priorityOffset = offset;
    if (!host.keepalivedRunning) return;
    if (offset <= -254 && host.vrrpState !== 'FAULT') {
      const wasMaster = host.vrrpState === 'MASTER';
      host.vrrpState = 'FAULT';
      if (wasMaster) this.electAfter(host);
    } else if (offset > -254 && host.vrrpState === 'FAULT' && host.haproxyRunning) {
      const master = this.peers(host).some((p) => p.vrrpState === 'MASTER');
      host.vrrpState = master ? 'BACKUP' : 'MASTER';
      if (!master) this.onMaster(host);
    }
  }

  /** The node's priority as keepalived computes it: 200 - 10 × index, plus the offset, within 1..254. */
  private priority(host: StandInHost): number {
    const index = Number(/-(\d+)$/.exec(host.droplet.name)?.[1] ?? 0);
    return Math.min(254, Math.max(1, 200 - 10 * index + (host.priorityOffset ?? 0)));
  }

  /** The running BACKUP with the highest priority takes over: keepalived's choice, then the failover script. */
  private electAfter(host: StandInHost): void {
    const next = this.peers(host).filter((p) => p.vrrpState === 'BACKUP').sort((a, b) => this.priority(b) - this.priority(a))[0];
    if (!next) return;
    next.vrrpState = 'MASTER';
    this.onMaster(next);
  }
}

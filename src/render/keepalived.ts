// keepalived.conf for one node: one vrrp_instance for the HALoadBalancer, unicast over the VPC,
// a check that HAProxy answers, and notify scripts that record the state and claim the IP.
import * as guard from './guard.ts';
import type { KeepalivedFeatures } from './versions.ts';

export interface VRRPSettings {
  virtualRouterID: number;
  priority: number;
  preempt: boolean;
  /** Seconds; a multiple of 0.01. */
  advertInterval: number;
  version: 2 | 3;
  /** PASS authentication; VRRPv2 only. */
  authPass?: string;
}

export interface KeepalivedNodeInput {
  lbName: string;
  nodeName: string;
  vpcInterface: string;
  privateIPv4: string;
  peerIPv4s: string[];
  vrrp: VRRPSettings;
  checkScript: string;
  notifyScript: string;
  failoverScript: string;
  /** The track_file through which the operator moves the node's priority (planned failover). */
  priorityOffsetFile: string;
  features: KeepalivedFeatures;
  /** spec.failover.checkIntervalSeconds, when set. */
  checkIntervalSeconds?: number;
}

/**
 * How often keepalived checks that HAProxy serves, in seconds. keepalived 2.3.2 and later take
 * fractions: 0.2 s there by default, so a dead HAProxy on the MASTER is noticed within 0.2 s
 * instead of 1 s. Older keepalived takes whole seconds only: 1 by default, a fraction rounded up.
 */
export const DEFAULT_CHECK_INTERVAL = { fractional: 0.2, whole: 1 } as const;

export function checkInterval(requested: number | undefined, features: KeepalivedFeatures): number {
  const field = 'spec.failover.checkIntervalSeconds';
  if (requested !== undefined && (typeof requested !== 'number' || !Number.isFinite(requested) || requested < 0.1 || requested > 10)) {
    guard.refuse(field, `must be 0.1..10 seconds, got ${JSON.stringify(requested)}`);
  }
  if (!features.fractionalScriptInterval) return requested === undefined ? DEFAULT_CHECK_INTERVAL.whole : Math.ceil(requested - 1e-9);
  // keepalived keeps microseconds; tenths of a millisecond are plenty and keep the file stable.
  return requested === undefined ? DEFAULT_CHECK_INTERVAL.fractional : Math.round(requested * 1000) / 1000;
}

/**
 * Values the operator writes to the priority-offset file (keepalived adds the number to the
 * node's priority and keeps the result within 1..254; below -253 the node goes FAULT):
 * 0 leaves the node as configured; HAND_OVER makes a MASTER leave at once with a priority-0
 * advert, so a BACKUP takes over without waiting out the advert timeout; LOWEST keeps a node
 * in maintenance the last choice, yet still able to take over if every other node fails;
 * PREFERRED lifts the node a planned failover moves to above every other (priorities are 200
 * down to 160).
 */
export const PRIORITY_OFFSET = { none: 0, handOver: -254, lowest: -253, preferred: 50 } as const;

// RFC 7600's IPv4 dummy address: keepalived 2.2.7 demands a virtual address with VRRPv3, and
// this one on loopback routes nothing anywhere.
export const PLACEHOLDER_VIP = '192.0.0.8/32';

/** Checks the VRRP settings derived from the spec (src/api/derived.ts) for what keepalived parses. */
export function vrrpSettings(input: {
  advertIntervalSeconds: number;
  version: 2 | 3;
  authPass: string | undefined;
  virtualRouterID: number;
  priority: number;
  preempt: boolean;
}): VRRPSettings {
  const field = 'spec.failover.advertIntervalSeconds';
  const advert = input.advertIntervalSeconds;
  if (typeof advert !== 'number' || !Number.isFinite(advert) || advert < 0.01 || advert > 40.95) {
    guard.refuse(field, `must be 0.01..40.95 seconds, got ${JSON.stringify(advert)}`);
  }
  const centis = Math.round(advert * 100);
  if (Math.abs(advert * 100 - centis) > 1e-6) guard.refuse(field, `must be a multiple of 0.01 s, got ${advert}`);
  if (input.version === 2 && centis % 100 !== 0) {
    // PASS authentication exists only in VRRPv2, whose advert interval is whole seconds.
    guard.refuse(field, `must be whole seconds with failover.authSecretRef, because PASS authentication needs VRRPv2; got ${advert}`);
  }
  if (input.version === 3 && input.authPass !== undefined) guard.refuse('spec.failover.authSecretRef', 'PASS authentication needs VRRPv2');
  return {
    virtualRouterID: guard.integer('spec.failover.virtualRouterID', input.virtualRouterID, 1, 255),
    priority: guard.integer('priority', input.priority, 1, 254),
    preempt: input.preempt,
    advertInterval: centis / 100,
    version: input.version,
    ...(input.authPass === undefined ? {} : { authPass: guard.authPass('spec.failover.authSecretRef', input.authPass) }),
  };
}

export function renderKeepalivedConfig(input: KeepalivedNodeInput): string {
  const { vrrp, features } = input;
  const instance = `halb-${guard.dnsLabel('metadata.name', input.lbName)}`;
  const notify = (state: string) => `"${input.notifyScript} ${state}"`;
  const lines = [
    `# Rendered by halb for node ${input.nodeName}. The operator replaces this file; edit the HALoadBalancer instead.`,
    'global_defs {',
    `    router_id ${input.nodeName}`,
    '    enable_script_security',
    // The failover script reads the root-only token file.
    '    script_user root',
    '}',
    '',
    '# HAProxy serving, checked over HTTP: no process-name lookup, which Debian\'s keepalived resolves wrongly.',
    'vrrp_script halb_haproxy_serving {',
    `    script "${input.checkScript}"`,
    // The script retries once itself (two tries of at most 0.4 s), so one failed run means
    // HAProxy is not serving and the node goes FAULT at once; the timeout covers both tries.
    `    interval ${checkInterval(input.checkIntervalSeconds, features)}`,
    '    timeout 1',
    '    fall 1',
    '    rise 2',
    '}',
    '',
    // Read when it changes (inotify), so the operator moves the node's priority without a reload.
    '# The operator\'s say in the election: a number added to this node\'s priority.',
    'track_file halb_priority_offset {',
    `    file "${guard.filePath('paths.priorityOffset', input.priorityOffsetFile)}"`,
    '    weight 1',
    '    init_file 0',
    '}',
    '',
    `vrrp_instance ${instance} {`,
    '    state BACKUP',
    `    interface ${input.vpcInterface}`,
    `    virtual_router_id ${vrrp.virtualRouterID}`,
    `    priority ${vrrp.priority}`,
    ...(vrrp.preempt ? [] : ['    nopreempt']),
    `    version ${vrrp.version}`,
    `    advert_int ${vrrp.advertInterval}`,
    `    unicast_src_ip ${input.privateIPv4}`,
    '    unicast_peer {',
    ...input.peerIPv4s.map((peer) => `        ${peer}`),
    '    }',
    // Adverts from anyone but the listed peers are dropped.
    '    check_unicast_src',
    // When a split brain heals, the lower-priority MASTER answers the higher one's advert with
    // its own before stepping down, so the higher one always hears it and runs
    // notify_master_rx_lower_pri: otherwise that depends on whose advert goes out first.
    '    higher_prio_send_advert',
  ];
  if (vrrp.authPass !== undefined) {
    lines.push('    authentication {', '        auth_type PASS', `        auth_pass ${vrrp.authPass}`, '    }');
  }
  if (features.noVirtualIPAddress) {
    // DigitalOcean routes the reserved IP to the anchor IP; nothing goes on an interface.
    lines.push('    no_virtual_ipaddress');
  } else {
    lines.push('    virtual_ipaddress {', `        ${PLACEHOLDER_VIP} dev lo`, '    }');
  }
  lines.push(
    '    track_script {',
    '        halb_haproxy_serving',
    '    }',
    '    track_file {',
    '        halb_priority_offset',
    '    }',
    `    notify_master ${notify('MASTER')}`,
    `    notify_backup ${notify('BACKUP')}`,
    `    notify_fault ${notify('FAULT')}`,
    `    notify_stop ${notify('STOP')}`,
    // After a split brain heals the surviving MASTER claims the IP again.
    `    notify_master_rx_lower_pri "${input.failoverScript}"`,
    '}',
  );
  return `${lines.join('\n')}\n`;
}

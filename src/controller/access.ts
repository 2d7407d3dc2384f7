// Who may reach the nodes, decided without I/O: the lock-out guard on spec.access and the
// SSHExposed condition.
import { ipv4InCIDR } from '../api/derived.ts';
import type { HALoadBalancerSpec } from '../api/types.ts';
import { conditionTypes as T, type ConditionInput } from './conditions.ts';
import type { ObservedHost } from './observed.ts';

/**
 * The operator's address when the rendered firewall would not let it back in: the address the
 * host sees the operator's SSH session come from (after any NAT) is outside every
 * spec.access.sshSourceCIDRs entry. Applying that firewall would cut the operator off for good,
 * so the change is refused. Undefined when SSH stays open to the operator, or when the address
 * is not known yet (nothing is applied to a host that was not read).
 */
export function lockedOutAddress(spec: HALoadBalancerSpec, host: ObservedHost | undefined): string | undefined {
  const address = host?.operatorAddress;
  const cidrs = spec.access.sshSourceCIDRs;
  if (!address || cidrs.length === 0) return undefined;
  return cidrs.some((c) => ipv4InCIDR(address, c)) ? undefined : address;
}

export function lockOutMessage(spec: HALoadBalancerSpec, nodes: { name: string; address: string }[]): string {
  const addresses = [...new Set(nodes.map((n) => n.address))];
  const nodeNames = nodes.map((n) => n.name).join(', ');
  return `spec.access.sshSourceCIDRs (${spec.access.sshSourceCIDRs.join(', ')}) leaves out ${addresses.join(', ')}, ` +
    `the address the operator connects from (as ${nodeNames} see${nodes.length === 1 ? 's' : ''} it): ` +
    'refused, the nodes keep their previous config. Add it to sshSourceCIDRs.';
}

/** What SSH on the nodes is open to, as the hosts report it: firewall loaded, sshd's settings. */
export function sshExposedCondition(
  spec: HALoadBalancerSpec, hosts: { name: string; host: ObservedHost | undefined; current: boolean }[],
): ConditionInput {
  const read = hosts.filter((h) => h.host?.reachable);
  const passwords = read
    .filter((h) => h.host!.sshd?.passwordauthentication === 'yes' || h.host!.sshd?.kbdinteractiveauthentication === 'yes')
    .map((h) => h.name);
  if (passwords.length) {
    return { type: T.sshExposed, status: 'True', reason: 'PasswordLogin', message: `sshd accepts passwords on ${passwords.join(', ')}` };
  }
  if (spec.access.sshSourceCIDRs.length === 0) {
    return {
      type: T.sshExposed, status: 'True', reason: 'OpenToAll',
      message: 'spec.access.sshSourceCIDRs is empty: SSH to the nodes is open to every address (keys only)',
    };
  }
  // Any /0 (0.0.0.0/0, or 1.2.3.4/0 written carelessly) admits every address, as empty does.
  const everyAddress = spec.access.sshSourceCIDRs.find((c) => c.endsWith('/0'));
  if (everyAddress !== undefined) {
    return {
      type: T.sshExposed, status: 'True', reason: 'OpenToAll',
      message: `spec.access.sshSourceCIDRs holds ${everyAddress}: SSH to the nodes is open to every address (keys only)`,
    };
  }
  const unfiltered = hosts.filter((h) => !h.host?.reachable || h.host.firewallLoaded !== true || !h.current).map((h) => h.name);
  if (unfiltered.length) {
    return {
      type: T.sshExposed, status: 'Unknown', reason: 'NotEnforcedYet',
      message: `the host firewall for this spec is not loaded (or not read) on ${unfiltered.join(', ')}`,
    };
  }
  return {
    type: T.sshExposed, status: 'False', reason: 'Restricted',
    message: `SSH only from ${spec.access.sshSourceCIDRs.join(', ')} (keys only)`,
  };
}

// The files that harden a load-balancer node: its nftables host firewall, the sshd drop-in, and
// root's authorized_keys. DigitalOcean Cloud Firewalls pass only tcp, udp and icmp; VRRP is IP
// protocol 112, so a Cloud Firewall on the nodes would cut VRRP and split the pair. The nodes
// filter themselves instead, default-deny inbound.
import * as guard from './guard.ts';

export interface FirewallInput {
  nodeName: string;
  /** The other nodes' VPC addresses: the only VRRP sources. */
  peerIPv4s: readonly string[];
  /** The address the frontends bind (the node's anchor IPv4): frontend ports open there only. */
  frontendAddress: string;
  /** Frontend ports (plain and TLS), open on frontendAddress. */
  frontendPorts: readonly number[];
  /** Who may reach the frontend ports; empty: everyone. */
  frontendSourceCIDRs: readonly string[];
  sshPort: number;
  /** Empty: SSH open to every address (flagged by the SSHExposed condition). */
  sshSourceCIDRs: readonly string[];
  metricsPort: number;
  /** Who may scrape metrics: spec.access.metricsSourceCIDRs, or the VPC when that is empty. */
  metricsSourceCIDRs: readonly string[];
}

/** VRRP's IP protocol number (RFC 5798). */
const VRRP_PROTOCOL = 112;

/** The nft table the operator owns; nothing else on the host is touched. */
export const FIREWALL_TABLE = 'inet halb';

function cidr(field: string, value: string): string {
  const [addr, bits, extra] = value.split('/');
  if (extra !== undefined || !guard.isIPv4(addr ?? '') || (bits !== undefined && !(/^\d{1,2}$/.test(bits) && Number(bits) <= 32))) {
    guard.refuse(field, `${JSON.stringify(value)} is not an IPv4 CIDR`);
  }
  return value;
}

const set = (items: readonly (string | number)[]) => (items.length === 1 ? String(items[0]) : `{ ${items.join(', ')} }`);

/**
 * One nft file that replaces the operator's table in a single transaction: `nft -f` applies a
 * file atomically, so a packet meets either the old rules or the new ones, never none. The
 * leading `table` + `delete table` pair makes the file load whether or not the table exists.
 */
export function renderFirewall(input: FirewallInput): string {
  const peers = input.peerIPv4s.map((ip) => guard.ipv4('observed.nodes[].privateIPv4', ip));
  const ssh = input.sshSourceCIDRs.map((c, i) => cidr(`spec.access.sshSourceCIDRs[${i}]`, c));
  const metrics = input.metricsSourceCIDRs.map((c, i) => cidr(`spec.access.metricsSourceCIDRs[${i}]`, c));
  const clients = input.frontendSourceCIDRs.map((c, i) => cidr(`spec.access.frontendSourceCIDRs[${i}]`, c));
  const sources = clients.length ? ` ip saddr ${set(clients)}` : '';
  const ports = [...new Set(input.frontendPorts.map((p) => guard.port('spec.frontends[].port', p)))].sort((a, b) => a - b);
  const frontendAddress = guard.ipv4('observed.nodes[].anchorIPv4', input.frontendAddress);
  const sshPort = guard.port('settings.sshPort', input.sshPort);
  const metricsPort = guard.port('settings.metricsPort', input.metricsPort);
  // SSH and metrics are decided first, and end in a drop: no frontend rule after them can ever
  // widen who reaches sshd or the metrics, whatever port a frontend names.
  const sshRules = ssh.length
    ? [`tcp dport ${sshPort} ip saddr ${set(ssh)} accept`, `tcp dport ${sshPort} drop`]
    : [`tcp dport ${sshPort} accept`];
  const metricsRules = [
    ...(metrics.length ? [`tcp dport ${metricsPort} ip saddr ${set(metrics)} accept`] : []), `tcp dport ${metricsPort} drop`,
  ];
  const rules = [
    'iif "lo" accept',
    'ct state established,related accept',
    'ct state invalid drop',
    // Path MTU discovery and error reporting need these; echo is rate limited.
    'icmp type { destination-unreachable, time-exceeded, parameter-problem } accept',
    'icmp type echo-request limit rate 10/second accept',
    // IPv6 neighbour discovery, or a droplet with IPv6 on loses its own address resolution.
    'icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem, ' +
      'nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert } accept',
    // VRRP by number: the name `vrrp` needs /etc/protocols (package netbase), which minimal
    // images lack, and then nft refuses the whole file.
    ...(peers.length ? [`ip protocol ${VRRP_PROTOCOL} ip saddr ${set(peers)} accept`] : []),
    ...sshRules,
    ...metricsRules,
    // Frontends bind the anchor address only; the ports are open there and nowhere else, to the
    // listed sources when there are some (the policy drops the rest).
    ...(ports.length ? [`ip daddr ${frontendAddress}${sources} tcp dport ${set(ports)} accept`] : []),
  ];
  return [
    `# halb host firewall for ${guard.dnsLabel('node name', input.nodeName)}, rendered by the operator: do not edit.`,
    '# Loaded with `nft -f`, which replaces the table in one transaction.',
    `table ${FIREWALL_TABLE}`,
    `delete table ${FIREWALL_TABLE}`,
    `table ${FIREWALL_TABLE} {`,
    '  chain input {',
    '    type filter hook input priority filter; policy drop;',
    ...rules.map((r) => `    ${r}`),
    '  }',
    '}',
    '',
  ].join('\n');
}

/**
 * Loads the firewall at boot on hosts with systemd (real droplets), before the network comes up,
 * so a rebooted node is never open while it waits for the operator.
 */
export function renderFirewallUnit(firewallPath: string): string {
  return [
    '[Unit]',
    'Description=halb host firewall',
    'DefaultDependencies=no',
    'Before=network-pre.target',
    'Wants=network-pre.target',
    '',
    '[Service]',
    'Type=oneshot',
    `ExecStart=/usr/sbin/nft -f ${guard.filePath('settings.paths.firewall', firewallPath)}`,
    'RemainAfterExit=yes',
    '',
    '[Install]',
    'WantedBy=sysinit.target',
    '',
  ].join('\n');
}

/**
 * sshd: keys only, root by key only. sshd takes the first value it reads for a keyword, and
 * Ubuntu's sshd_config includes sshd_config.d/*.conf first, so a `00-` drop-in wins over
 * cloud-init's `50-cloud-init.conf`.
 */
export function renderSshdDropIn(): string {
  return [
    '# halb: keys only, rendered by the operator: do not edit.',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PermitRootLogin prohibit-password',
    'PermitEmptyPasswords no',
    '',
  ].join('\n');
}

/** The key types an authorized_keys line may name (sshd's). */
const PUBLIC_KEY_TYPES = [
  'ssh-ed25519', 'ssh-rsa', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521',
  'sk-ssh-ed25519@openssh.com', 'sk-ecdsa-sha2-nistp256@openssh.com',
];
/** An OpenSSH public key line: a key type, the base64 key, an optional comment. */
const PUBLIC_KEY_LINE = new RegExp(`^(${PUBLIC_KEY_TYPES.map((t) => t.replaceAll('.', '\\.')).join('|')}) [A-Za-z0-9+/]+=* ?[^\\n\\r]*$`);

/** root's authorized_keys: exactly the keys given (the operator's, during a rotation two). */
export function renderAuthorizedKeys(keys: readonly string[]): string {
  if (keys.length === 0) guard.refuse('authorizedKeys', 'at least the operator\'s key is needed');
  const lines = keys.map((k, i) => {
    const line = k.trim();
    if (!PUBLIC_KEY_LINE.test(line)) {
      guard.refuse(`authorizedKeys[${i}]`, 'is not an OpenSSH public key line');
    }
    return line;
  });
  return `# halb: rendered by the operator, which also logs in with the first key: do not edit.\n${[...new Set(lines)].join('\n')}\n`;
}

// Pure renderers for the files and nft batches the fabric writes.
import { FLOATING_RANGE, METADATA_IPV4, OPERATOR_EGRESS_IPV4, parseIPv4, inRange, ANCHOR_RANGE } from './addresses.ts';

/** Quotes a string for bash single quotes. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The nft ruleset of the core namespace: the floating-IP DNAT map and its hook, and the source
 *  NAT that makes the machine's namespace (arriving on `hostLinkIf`) appear from
 *  OPERATOR_EGRESS_IPV4 to the droplets. */
export function renderCoreRuleset(table: string, hostLinkIf = 'up0'): string {
  return [
    `table ip ${table} {`,
    '  map fip {',
    '    type ipv4_addr : ipv4_addr',
    '  }',
    '  set ack {',
    '    type inet_service',
    '  }',
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    `    ip daddr ${FLOATING_RANGE} dnat to ip daddr map @fip`,
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    iifname "${hostLinkIf}" oifname "brpub" snat to ${OPERATOR_EGRESS_IPV4}`,
    '  }',
    '}',
    '',
  ].join('\n');
}

/**
 * One nft batch replacing the whole floating-IP map. nft applies a batch as one transaction, so
 * a packet sees either the old map or the new one, never a map without the IP being moved.
 */
export function renderFloatingMapCommands(table: string, map: Readonly<Record<string, string>>): string[] {
  const entries = Object.entries(map).sort(([a], [b]) => parseIPv4(a) - parseIPv4(b));
  const lines = [`flush map ip ${table} fip`];
  if (entries.length > 0) lines.push(`add element ip ${table} fip { ${entries.map(([ip, anchor]) => `${ip} : ${anchor}`).join(', ')} }`);
  return lines;
}

/** The same as a file for `nft -f -`. */
export function renderFloatingMapBatch(table: string, map: Readonly<Record<string, string>>): string {
  return `${renderFloatingMapCommands(table, map).join('\n')}\n`;
}

export function validateFloatingAssignment(ip: string, anchorIPv4: string | null): void {
  parseIPv4(ip, 'floating IP');
  if (!inRange(ip, FLOATING_RANGE)) throw new Error(`floating IP: ${ip} is outside ${FLOATING_RANGE}`);
  if (anchorIPv4 !== null) {
    parseIPv4(anchorIPv4, 'anchorIPv4');
    if (!inRange(anchorIPv4, ANCHOR_RANGE)) throw new Error(`anchorIPv4: ${anchorIPv4} is outside ${ANCHOR_RANGE}`);
  }
}

export function renderSshdConfig(name: string): string {
  return [
    // As an Ubuntu image ships it: drop-ins first (first value wins), sshd's defaults otherwise
    // (password logins allowed). The operator's drop-in is what turns passwords off.
    `# halb sandbox droplet ${name}: the stock Ubuntu layout.`,
    'Include /etc/ssh/sshd_config.d/*.conf',
    'Port 22',
    'AddressFamily inet',
    'HostKey /etc/ssh/ssh_host_ed25519_key',
    'AuthorizedKeysFile .ssh/authorized_keys',
    // No PAM: there is no systemd/logind in a sandbox droplet.
    'UsePAM no',
    'PidFile /run/sshd.pid',
    'PrintMotd no',
    'AcceptEnv LANG LC_*',
    'Subsystem sftp /usr/lib/openssh/sftp-server',
    '',
  ].join('\n');
}

/** Marker of a first boot done (user_data applied), in the droplet's own /var. */
const FIRST_BOOT_DONE = '/var/lib/halb-sandbox/first-boot.done';

/** Marker the droplet's init writes, inside its own /run, once sshd has started. */
export const BOOTED_MARKER = '/run/halb-droplet-booted';

/**
 * PID 1 of a droplet (bash, inside fresh PID, mount and UTS namespaces and the droplet's network
 * namespace). It gives the droplet its own /root, /etc, /var (overlays on the machine's, which
 * act as the droplet image), /run and /tmp, waits the boot delay, then starts sshd the way a
 * real boot does (daemonized, pid file in /run). It stays as the reaper; killing it ends every
 * process of the droplet.
 */
export function renderDropletInit(opts: { name: string; dir: string; bootDelayMs: number; webServer?: boolean }): string {
  // First boot (user_data): see cloud-config.ts. The scripts are copied into the droplet's /run
  // while $D is still reachable; the marker lives in its own /var, as cloud-init's does.
  const firstBoot = (script: string, when: string) => `if [ ! -e ${FIRST_BOOT_DONE} ] && [ -s /run/halb-first-boot/${script} ]; then
  echo "applying user_data (${when})"
  /bin/sh /run/halb-first-boot/${script} >> /var/log/cloud-init-output.log 2>&1 || echo "user_data (${when}) exited $?" >&2
fi`;
  const d = shellQuote(opts.dir);
  const delay = (Math.max(0, opts.bootDelayMs) / 1000).toFixed(3);
  return `#!/bin/bash
# PID 1 of sandbox droplet ${opts.name}
set -eu
D=${d}
# Order matters: every path under $D is resolved before /var and /tmp are covered.
# An overlay's upper dir stays busy until the previous boot's mounts are released: retry briefly.
overlay() {
  for _ in $(seq 100); do
    mount -t overlay overlay -o "lowerdir=$1,upperdir=$D/$2.upper,workdir=$D/$2.work" "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  mount -t overlay overlay -o "lowerdir=$1,upperdir=$D/$2.upper,workdir=$D/$2.work" "$1"
}
mount --bind "$D/root" /root
overlay /etc etc
overlay /var var
# The droplet's own sshd drop-ins, not this machine's.
mount --bind "$D/sshd_config.d" /etc/ssh/sshd_config.d
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
mkdir -m 0700 /run/halb-first-boot && cp "$D"/first-boot-*.sh /run/halb-first-boot/
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
# Settings outside the network namespace are the machine's: read-only here, as in a container.
mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys
mount --bind /proc/sys/net /proc/sys/net && mount -o remount,bind,rw /proc/sys/net
hostname ${shellQuote(opts.name)}
mkdir -p /run/sshd /var/log
chmod 0755 /run/sshd
echo "droplet ${opts.name} booting (delay ${delay}s)"
sleep ${delay}
${firstBoot('first-boot-before-ssh.sh', 'files, host keys, sshd settings')}
${opts.webServer ? `# A web backend: the image's nginx, with the site answering the droplet's name.
nginx || echo "nginx failed to start" >&2
` : ''}if /usr/sbin/sshd -E /var/log/sshd.log; then
  touch ${BOOTED_MARKER}
  echo "sshd started"
else
  echo "sshd failed to start, see /var/log/sshd.log" >&2
fi
${firstBoot('first-boot-after-ssh.sh', 'runcmd')}
mkdir -p ${FIRST_BOOT_DONE.slice(0, FIRST_BOOT_DONE.lastIndexOf('/'))} && touch ${FIRST_BOOT_DONE}
rm -rf /run/halb-first-boot
trap 'exit 0' TERM INT
# bash reaps every child, adopted orphans included, while it waits.
while :; do
  sleep 3600 &
  wait $! || true
done
`;
}

/** nginx in the core namespace, serving each droplet's metadata by the address asking. */
export function renderMetadataNginx(dir: string): string {
  return `# halb sandbox metadata service (169.254.169.254), one tree per droplet address.
worker_processes 1;
user root;
pid "${dir}/nginx.pid";
error_log "${dir}/error.log";
events { worker_connections 256; }
http {
  access_log off;
  server_tokens off;
  types { application/json json; }
  default_type text/plain;
  charset utf-8;
  server {
    listen ${METADATA_IPV4}:80;
    root "${dir}/by-address/$remote_addr";
    index _index;
    location / { }
  }
}
`;
}

/** nginx of a backend web server, answering every request with the backend's name. */
export function renderBackendNginx(opts: { name: string; dir: string }): string {
  return `# halb sandbox backend ${opts.name}
worker_processes 1;
pid "${opts.dir}/nginx.pid";
error_log "${opts.dir}/error.log";
events { worker_connections 256; }
http {
  access_log off;
  server_tokens off;
  default_type text/plain;
  server {
    listen 80 default_server;
    location / { return 200 "${opts.name}\\n"; }
  }
}
`;
}

/** The site of a web-backend droplet: every request answered with the droplet's name. */
export function renderWebSite(name: string): string {
  return `# halb sandbox web backend ${name}\nserver {\n  listen 80 default_server;\n  default_type text/plain;\n` +
    `  location / { return 200 "${name}\\n"; }\n}\n`;
}

/**
 * The boot of a droplet on a root-filesystem image: after its boot delay, an overlay of the
 * cached image (the droplet's writes go to its own upper folder) is booted by systemd-nspawn,
 * the image's systemd as PID 1 in the droplet's network namespace. This machine runs no systemd
 * or D-Bus, so nspawn neither registers the machine nor makes a unit (`--keep-unit
 * --register=no`). It runs in a private mount namespace, so the overlay goes when it ends.
 */
export function renderRootfsInit(opts: { name: string; dir: string; rootfs: string; netnsPath: string; bootDelayMs: number }): string {
  const delay = (Math.max(0, opts.bootDelayMs) / 1000).toFixed(3);
  return `#!/bin/bash
# Boot of sandbox droplet ${opts.name} (systemd in ${opts.rootfs})
set -eu
D=${shellQuote(opts.dir)}
echo "droplet ${opts.name} booting (delay ${delay}s)"
sleep ${delay}
# The upper folder stays busy until the previous boot's mounts are released: retry briefly.
for _ in $(seq 100); do
  mount -t overlay overlay -o "lowerdir=${opts.rootfs},upperdir=$D/rootfs.upper,workdir=$D/rootfs.work" "$D/rootfs" 2>/dev/null && break
  sleep 0.05
done
mountpoint -q "$D/rootfs" || \
mount -t overlay overlay -o "lowerdir=${opts.rootfs},upperdir=$D/rootfs.upper,workdir=$D/rootfs.work" "$D/rootfs"
export SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1
# The droplet's network settings are its own (net.ipv4.ip_nonlocal_bind, say), as on a VM.
export SYSTEMD_NSPAWN_API_VFS_WRITABLE=network
# CAP_NET_ADMIN, which nspawn keeps only with a network namespace of its own making: a droplet's
# root loads its firewall, sets links and runs keepalived.
exec systemd-nspawn --quiet --keep-unit --register=no --capability=CAP_NET_ADMIN --hostname=${shellQuote(opts.name)} -D "$D/rootfs" \\
  --network-namespace-path=${shellQuote(opts.netnsPath)} --boot
`;
}

/** NoCloud's meta-data for a droplet: what DigitalOcean's metadata gives cloud-init. */
export function renderNoCloudMetaData(d: { id: number; name: string; sshPublicKeys: readonly string[] }): string {
  return [
    `instance-id: ${d.id}`,
    `local-hostname: ${d.name}`,
    ...(d.sshPublicKeys.length ? ['public-keys:', ...d.sshPublicKeys.map((k) => `  - ${JSON.stringify(k)}`)] : []),
    '',
  ].join('\n');
}

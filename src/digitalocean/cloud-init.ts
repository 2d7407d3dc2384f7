// The user_data every LB droplet boots with: install haproxy, keepalived, curl and nftables,
// turn sshd's password logins off from the first boot (the operator's drop-in, the same bytes
// it keeps in place later), and prepare the host for a floating address (non-local binds). The operator writes the configuration
// over SSH afterwards, so nothing here depends on the HALoadBalancer's spec beyond its name.
import { stringify } from 'yaml';

export interface CloudInitInput {
  /** The HALoadBalancer's name, recorded on the host for people. */
  objectName: string;
  nodeName: string;
  /** The operator's sshd drop-in (keys only), written before sshd's first reload. */
  sshdDropIn?: { path: string; content: string };
}

export function cloudInit(input: CloudInitInput): string {
  const doc = {
    package_update: true,
    packages: ['haproxy', 'keepalived', 'curl', 'nftables'],
    ssh_pwauth: false,
    disable_root: false,
    write_files: [
      {
        path: '/etc/sysctl.d/60-halb.conf',
        content: '# halb: HAProxy binds the anchor and reserved addresses, which may not be local yet\nnet.ipv4.ip_nonlocal_bind = 1\n',
      },
      ...(input.sshdDropIn ? [{ path: input.sshdDropIn.path, content: input.sshdDropIn.content }] : []),
      {
        path: '/etc/halb/node',
        content: `object=${input.objectName}\nnode=${input.nodeName}\n`,
      },
    ],
    runcmd: [
      ['sysctl', '--system'],
      ['systemctl', 'reload', 'ssh'],
      ['mkdir', '-p', '/etc/halb', '/var/lib/halb'],
      // The operator starts both once their configuration is in place.
      ['systemctl', 'disable', '--now', 'keepalived'],
    ],
  };
  return `#cloud-config\n${stringify(doc, { lineWidth: 0 })}`;
}

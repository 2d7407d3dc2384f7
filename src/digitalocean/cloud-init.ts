// The user_data every LB droplet boots with: install haproxy, keepalived, curl and nftables,
// turn sshd's password logins off from the first boot (the operator's drop-in, the same bytes
// it keeps in place later), and prepare the host for a floating address (non-local binds). The operator writes the configuration
// over SSH afterwards, so nothing here depends on the HALoadBalancer's spec beyond its name.
//
// The droplet's SSH host key is the operator's too: it makes one per droplet, hands it over in
// cloud-init's `ssh_keys` (cloud-init then writes it and makes no other), and pins its
// fingerprint in a tag set in the same create request, so the first connection is verified.
import { createHash } from 'node:crypto';
import { generateEd25519KeyPair } from '../ssh-keys.ts';
import { stringify } from 'yaml';

/** A droplet's SSH host key, made by the operator before the droplet exists. */
export interface NodeHostKey {
  /** OpenSSH private key (PEM-armoured openssh-key-v1), for cloud-init's ssh_keys. */
  privateKey: string;
  /** `ssh-ed25519 AAAA... comment` */
  publicKey: string;
  /** OpenSSH's SHA256 fingerprint of the key (`SHA256:base64`), as the operator pins it. */
  fingerprint: string;
}

/** OpenSSH's SHA256 fingerprint of a public key line. */
export function publicKeyFingerprint(publicKey: string): string {
  const blob = Buffer.from(publicKey.trim().split(/\s+/)[1] ?? '', 'base64');
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

export function newHostKey(nodeName: string): NodeHostKey {
  const pair = generateEd25519KeyPair(`root@${nodeName}`);
  return { privateKey: pair.private, publicKey: pair.public.trim(), fingerprint: publicKeyFingerprint(pair.public) };
}

export interface CloudInitInput {
  /** The HALoadBalancer's name, recorded on the host for people. */
  objectName: string;
  nodeName: string;
  /** The operator's sshd drop-in (keys only), written before sshd's first reload. */
  sshdDropIn?: { path: string; content: string };
  /** The host key the droplet must present (ssh_keys): no other is made. */
  hostKey?: NodeHostKey;
}

export function cloudInit(input: CloudInitInput): string {
  const doc = {
    package_update: true,
    packages: ['haproxy', 'keepalived', 'curl', 'nftables'],
    ssh_pwauth: false,
    disable_root: false,
    ...(input.hostKey ? {
      ssh_deletekeys: true,
      ssh_keys: { ed25519_private: input.hostKey.privateKey, ed25519_public: input.hostKey.publicKey },
    } : {}),
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

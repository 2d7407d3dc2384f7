// The first-boot programs the host-binaries image runs for a droplet's user_data, run with sh in
// a private mount namespace whose /run and /etc/ssh are scratch tmpfs mounts (no network needed).
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { cloudInit } from '../../src/digitalocean/cloud-init.ts';
import { renderSshdDropIn } from '../../src/render/hardening.ts';
import { PWAUTH_DROP_IN, firstBootFromUserData } from '../../src/sandbox/fabric/cloud-config.ts';

/** Runs a first-boot script, then prints every file under the scratch folders as `path\tcontent-base64\tmode`. */
function applied(script: string): Map<string, { content: string; mode: string }> {
  const list = 'find /run/t /etc/ssh -type f -printf "%p\\t%m\\n" | while IFS="$(printf "\\t")" read -r p m; do ' +
    'printf "%s\\t%s\\t%s\\n" "$p" "$(base64 -w0 < "$p")" "$m"; done';
  const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c',
    `mount -t tmpfs tmpfs /run && mkdir -p /run/t && mount -t tmpfs tmpfs /etc/ssh && sh -s && ${list}`,
  ], { input: script, encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const out = new Map<string, { content: string; mode: string }>();
  for (const line of r.stdout.split('\n').filter(Boolean)) {
    const [path = '', content = '', mode = ''] = line.split('\t');
    out.set(path, { content: Buffer.from(content, 'base64').toString(), mode });
  }
  return out;
}

describe('user_data on the host-binaries image', () => {
  it('writes files with their modes and encodings, the host keys and the ssh_pwauth drop-in before sshd', () => {
    const boot = firstBootFromUserData([
      '#cloud-config',
      'ssh_pwauth: false',
      'ssh_keys:',
      '  ed25519_private: |',
      '    -----BEGIN OPENSSH PRIVATE KEY-----',
      '    not really a key',
      '    -----END OPENSSH PRIVATE KEY-----',
      '  ed25519_public: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEXAMPLE halb',
      'write_files:',
      '  - path: /run/t/plain',
      "    content: \"it's $(not run) `nor this`\\n\"",
      '  - path: /run/t/deep/secret',
      '    permissions: "0600"',
      '    encoding: b64',
      `    content: ${Buffer.from('decoded\n').toString('base64')}`,
      '  - path: /usr/local/bin/not-the-droplets',
      '    content: x',
      'runcmd:',
      '  - [touch, /run/t/ran]',
      '  - echo done',
      '',
    ].join('\n'));
    expect(boot.skipped).toEqual([expect.stringContaining('write_files[2]: "/usr/local/bin/not-the-droplets" is outside')]);
    expect(boot.hostKeyPublic).toBe('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEXAMPLE halb');
    expect(boot.afterSsh).toBe("'touch' '/run/t/ran'\necho done\n");
    const files = applied(boot.beforeSsh);
    expect(files.get('/run/t/plain')).toEqual({ content: "it's $(not run) `nor this`\n", mode: '644' });
    expect(files.get('/run/t/deep/secret')).toEqual({ content: 'decoded\n', mode: '600' });
    expect(files.get('/etc/ssh/ssh_host_ed25519_key')).toEqual({
      content: '-----BEGIN OPENSSH PRIVATE KEY-----\nnot really a key\n-----END OPENSSH PRIVATE KEY-----\n', mode: '600',
    });
    expect(files.get('/etc/ssh/ssh_host_ed25519_key.pub')?.content).toBe('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEXAMPLE halb\n');
    expect(files.get(PWAUTH_DROP_IN)?.content).toContain('PasswordAuthentication no\n');
  });

  it("puts the operator's sshd drop-in in place before sshd first starts", () => {
    const dropIn = { path: '/etc/ssh/sshd_config.d/00-halb.conf', content: renderSshdDropIn() };
    const boot = firstBootFromUserData(cloudInit({ objectName: 'web', nodeName: 'web-0', sshdDropIn: dropIn }));
    expect(boot.skipped).toEqual([]);
    expect(applied(boot.beforeSsh).get(dropIn.path)?.content).toBe(dropIn.content);
  });

  it.each([
    ['a script', '#!/bin/sh\necho hi\n', '', '#!/bin/sh\necho hi\n\n', []],
    ['nothing', '', '', '', []],
    ['something else', 'hello', '', '', ['user_data: neither #cloud-config nor a #! script']],
  ])('takes %s', (_name, userData, before, after, skipped) => {
    expect(firstBootFromUserData(userData)).toEqual({ beforeSsh: before, afterSsh: after, skipped });
  });
});

// `halb sandbox fabric` as a person would use it, on a fabric without the machine link (the
// fabric test owns the link; files run in parallel).
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { destroyFabric } from '../../src/sandbox/fabric/index.ts';
import { leftovers, makeKeyPair, testPrefix } from './helpers.ts';

const work = mkdtempSync(join(tmpdir(), 'hft-cli-'));
const stateDir = join(work, 'state');
const prefix = testPrefix('k');

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const node = join(process.cwd(), 'node_modules', '.bin', 'node');
  return new Promise((resolve) => {
    execFile(node, [join('test', 'fabric', 'cli-run.ts'), ...args, '--state-dir', stateDir], (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

afterAll(async () => {
  try {
    await destroyFabric({ stateDir, prefix, logger: pino({ level: 'warn' }) });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

describe('halb sandbox fabric', () => {
  it('prints help, and refuses unknown commands and options', async () => {
    expect((await cli('--help')).stdout).toMatch(/^Usage: halb sandbox fabric <command>/);
    expect(await cli('frobnicate')).toMatchObject({ code: 2, stderr: expect.stringMatching(/unknown command "frobnicate"/) });
    expect(await cli('up', '--frob')).toMatchObject({ code: 2, stderr: expect.stringMatching(/--frob/) });
    expect(await cli('droplet-add', 'x', '--ssh-key', '/nonexistent'))
      .toMatchObject({ code: 1, stderr: expect.stringMatching(/no fabric in/) });
  });

  it('brings the fabric up twice, adds a droplet, points a floating IP, and takes it all down twice', async () => {
    const key = makeKeyPair(join(work, 'id'), 'cli');
    for (let i = 0; i < 2; i++) {
      const up = await cli('up', '--prefix', prefix, '--no-host-link', '--backends', '1');
      expect(up.stderr).toBe('');
      expect(up.code).toBe(0);
      expect(up.stdout).toMatch(new RegExp(`^web-1 +backend +${prefix}-web-1 +- +- +10\\.10\\.0\\.21 +running$`, 'm'));
    }
    const added = await cli('droplet-add', 'lb-a', '--ssh-key', join(work, 'id.pub'));
    expect(added.stdout).toBe('droplet lb-a: ssh root@203.0.113.10 (anchor 10.17.0.10, VPC 10.10.1.10)\n');
    expect((await cli('fip', '198.51.100.7', 'lb-a')).code).toBe(0);
    expect((await cli('fip', '198.51.100.7', 'web-1')))
      .toMatchObject({ code: 1, stderr: expect.stringMatching(/no droplet named "web-1"/) });

    const status = JSON.parse((await cli('status', '--json')).stdout);
    expect(status.prefix).toBe(prefix);
    expect(status.floatingIPs).toEqual({ '198.51.100.7': '10.17.0.10' });
    expect(status.hosts.map((h: { name: string; role: string; namespace: string }) => [h.name, h.role, h.namespace])).toEqual([
      ['lb-a', 'loadbalancer', `${prefix}-lb-a`], ['web-1', 'backend', `${prefix}-web-1`], ['client', 'client', `${prefix}-client`],
    ]);
    // A person on the client side logs in with the OpenSSH client.
    const login = await new Promise<string>((resolve, reject) => {
      execFile('ip', [
        'netns', 'exec', status.hosts[2].namespace, 'ssh', '-i', join(work, 'id'), '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no',
        '-o', 'UserKnownHostsFile=/dev/null', '-o', 'ConnectTimeout=5', '-o', 'LogLevel=ERROR', 'root@203.0.113.10', 'hostname',
      ], (err, stdout, stderr) => (err ? reject(new Error(stderr)) : resolve(stdout)));
    });
    expect(login).toBe('lb-a\n');
    expect(key.publicKey).toMatch(/^ssh-ed25519 /);

    for (let i = 0; i < 2; i++) expect((await cli('down', '--prefix', prefix)).code).toBe(0);
    expect(leftovers(prefix, stateDir)).toEqual([]);
    expect((await cli('status')).stdout).toMatch(/^no fabric in /);
  });
});

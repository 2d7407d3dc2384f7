// The scale benchmark's SSH stand-in, driven by the real host agent over real SSH on loopback:
// it must answer the agent's programs as a host would, and refuse what a host would refuse.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeSSH } from 'node-ssh';
import { HostAgent, HostAuthenticationError, HostKeyChangedError } from '../../src/hosts/agent.ts';
import type { RemoteFile } from '../../src/hosts/remote.ts';
import { checkHAProxyConfig, checkKeepalivedConfig, startSshStandin, type SshStandin } from '../../bench/lib/ssh-standin.ts';
import { generateEd25519KeyPair } from '../../src/ssh-keys.ts';

const operatorKey = generateEd25519KeyPair('op');
const strangerKey = generateEd25519KeyPair('stranger');
const metadata: Record<string, string> = {
  '/metadata/v1/id': '41',
  '/metadata/v1/interfaces/public/0/anchor_ipv4/address': '10.20.0.5',
  '/metadata/v1/interfaces/private/0/ipv4/address': '10.10.0.12',
};
const haproxy = 'global\n    daemon\n\nfrontend www\n    bind :80\n    default_backend web\n\n' +
  'backend web\n    server web-1 10.10.0.21:80 check\n';
const keepalived = 'vrrp_instance halb-lb {\n    state BACKUP\n    priority 150\n}\n';
const files = (cfg = haproxy): RemoteFile[] => [
  { path: '/etc/haproxy/haproxy.cfg', mode: 0o644, content: cfg },
  { path: '/etc/keepalived/keepalived.conf', mode: 0o600, content: keepalived },
];

let standin: SshStandin;
const connect = (ip: string, extra: { pinnedHostKey?: string; privateKey?: string } = {}) =>
  HostAgent.connect({
    host: standin.loopbackFor(ip), port: standin.port, privateKey: extra.privateKey ?? operatorKey.private, timeoutMs: 5000,
    ...(extra.pinnedHostKey ? { pinnedHostKey: extra.pinnedHostKey } : {}),
  });

beforeAll(async () => {
  standin = await startSshStandin({ metadata: (id, path) => (id === 41 ? metadata[path] : undefined) });
  await standin.addHost({ publicIPv4: '10.250.0.5', dropletId: 41, name: 'lb-0', authorizedKeys: [operatorKey.public] });
  await standin.addHost({ publicIPv4: '10.250.0.6', dropletId: 42, name: 'lb-1', authorizedKeys: [operatorKey.public] });
});
afterAll(async () => { await standin?.close(); });

describe('the SSH stand-in, through the host agent', () => {
  it('reads state, applies, starts once, then reloads nothing when nothing changed', async () => {
    const agent = await connect('10.250.0.5');
    try {
      const before = await agent.readState();
      expect(before).toMatchObject({
        booted: true, haproxyRunning: false, keepalivedRunning: false, anchorIPv4: '10.20.0.5', privateIPv4: '10.10.0.12', dropletId: 41,
      });
      expect(before.configHash).toBeUndefined();
      const applied = await agent.apply(files(), 'sha256:aaaa', before);
      expect(applied).toEqual({ outcome: 'applied', steps: ['started haproxy', 'started keepalived'] });
      const after = await agent.readState();
      expect(after).toMatchObject({
        configHash: 'sha256:aaaa', haproxyRunning: true, keepalivedRunning: true, vrrpState: 'MASTER', servers: { 'web/web-1': 'UP' },
      });
      expect(await agent.apply(files(), 'sha256:aaaa', after)).toEqual({ outcome: 'unchanged' });
      expect(standin.inspect('10.250.0.5')?.files).toContain('/etc/keepalived/keepalived.conf');
    } finally {
      agent.close();
    }
  });

  it('answers the keepalived watch with the state now and keeps its channel open, as tail -F does', async () => {
    const agent = await connect('10.250.0.5');
    try {
      const states: string[] = [];
      let ended = false;
      const before = standin.counters.execs.watchVrrp;
      agent.watchVrrp((state) => states.push(state), () => { ended = true; });
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(states).toEqual([standin.inspect('10.250.0.5')?.vrrpState]);
      expect(ended).toBe(false);
      expect(standin.counters.execs.watchVrrp - before).toBe(1);
    } finally {
      agent.close();
    }
  });

  it('makes a node other than index 0 BACKUP, and reloads once running', async () => {
    const agent = await connect('10.250.0.6');
    try {
      await agent.apply(files(), 'sha256:bbbb', await agent.readState());
      expect((await agent.readState()).vrrpState).toBe('BACKUP');
      const again = await agent.apply(files(`${haproxy}# changed\n`), 'sha256:cccc', await agent.readState());
      expect(again).toEqual({
        outcome: 'applied', steps: ['reloaded haproxy', 'reloaded keepalived'], reloadReason: 'haproxy.cfg changed more than its servers',
      });
      await agent.stopKeepalived();
      expect(await agent.readState()).toMatchObject({ keepalivedRunning: false, vrrpState: 'STOP' });
    } finally {
      agent.close();
    }
  });

  it('refuses a config with a keyword out of any section, keeping the running one', async () => {
    const agent = await connect('10.250.0.5');
    try {
      await expect(agent.apply(files(`bogus line\n${haproxy}`), 'sha256:dddd', await agent.readState()))
        .rejects.toMatchObject({ name: 'ConfigRefusedError', daemon: 'haproxy' });
      expect((await agent.readState()).configHash).toBe('sha256:aaaa');
    } finally {
      agent.close();
    }
  });

  it('runs nothing but the agent programs: another command or script exits non-zero', async () => {
    const ssh = new NodeSSH();
    await ssh.connect({ host: standin.loopbackFor('10.250.0.5'), port: standin.port, username: 'root', privateKey: operatorKey.private });
    try {
      expect((await ssh.execCommand('rm -rf /')).code).toBe(127);
      expect((await ssh.execCommand('sh -s', { stdin: 'echo halb:swapped\n' })).code).toBe(2);
    } finally {
      ssh.dispose();
    }
  });

  it('refuses a key the droplet was not created with, a changed host key, and a missing host', async () => {
    await expect(connect('10.250.0.5', { privateKey: strangerKey.private })).rejects.toBeInstanceOf(HostAuthenticationError);
    const first = await connect('10.250.0.5');
    const pinned = first.hostKey;
    first.close();
    const other = await connect('10.250.0.6');
    expect(other.hostKey).not.toBe(pinned); // one host key per host
    other.close();
    await expect(connect('10.250.0.6', { pinnedHostKey: pinned })).rejects.toBeInstanceOf(HostKeyChangedError);
    await standin.removeHost('10.250.0.6');
    await expect(connect('10.250.0.6')).rejects.toThrow(/ECONNREFUSED/);
  });

  it.each([
    { text: haproxy, ok: true },
    { text: 'frontend www\n    bind :80\n', ok: false }, // no global
    { text: `global\n    daemon\nlisten x\n    bind :1\n`, ok: true },
    { text: '    daemon\nglobal\nfrontend a\n', ok: false }, // keyword before any section
  ])('checks HAProxy structure: $ok', ({ text, ok }) => {
    expect(checkHAProxyConfig(text) === undefined).toBe(ok);
  });

  it.each([
    { text: keepalived, ok: true },
    { text: 'vrrp_instance x {\n', ok: false },
    { text: 'global_defs {\n}\n', ok: false },
    { text: '}\nvrrp_instance x {\n{\n', ok: false },
  ])('checks keepalived structure: $ok', ({ text, ok }) => {
    expect(checkKeepalivedConfig(text) === undefined).toBe(ok);
  });
});

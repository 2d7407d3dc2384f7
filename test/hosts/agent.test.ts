// The host agent against a real droplet of the fabric (sshd, HAProxy and keepalived in their own
// namespaces): host-key pinning refuses an impersonator, files are validated by the daemons on
// the host before they replace the running ones, daemons start and reload, state reads back.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.ts';
import { createFabric, destroyFabric, type Fabric } from '../../src/sandbox/fabric/index.ts';
import { HostAgent, HostKeyChangedError, hostKeyFingerprint, type ApplyResult } from '../../src/hosts/agent.ts';
import { ConfigRefusedError } from '../../src/hosts/errors.ts';
import { validateHALoadBalancer } from '../../src/api/validate.ts';
import type { SecretData } from '../../src/api/types.ts';
import { defaultSettings, renderNodes } from '../../src/render/index.ts';
import { makeKeyPair } from '../fabric/helpers.ts';
import { runtimeServers, workerPid } from '../../bench/lib/haproxy-cli.ts';
import { haproxyAdminCommand } from '../../src/hosts/remote.ts';
import { waitFor } from '../wait.ts';

const stepsOf = (result: ApplyResult) => (result.outcome === 'applied' ? result.steps : []);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const dir = mkdtempSync(join(tmpdir(), 'halb-agent-'));
const log = createLogger({ level: 'silent' });
let fabric: Fabric;
const key = makeKeyPair(join(dir, 'operator'), 'operator');
const droplet = { name: 'agent-0', id: 7001, publicIPv4: '203.0.113.40', anchorIPv4: '10.17.0.40', privateIPv4: '10.10.3.40' };

beforeAll(async () => {
  fabric = await createFabric({ stateDir: join(dir, 'state'), logger: log });
  await fabric.addDroplet({ ...droplet, sshPublicKeys: [key.publicKey], role: 'loadbalancer', metadata: { region: 'nyc3' } });
  await fabric.waitForDroplet(droplet.name);
}, 120_000);
afterAll(async () => {
  await destroyFabric({ stateDir: join(dir, 'state'), logger: log });
  rmSync(dir, { recursive: true, force: true });
}, 120_000);

const lb = validateHALoadBalancer({
  apiVersion: 'halb.dev/v1alpha1', kind: 'HALoadBalancer', metadata: { name: 'agent', uid: 'u-1' },
  spec: {
    region: 'nyc3',
    credentials: { tokenSecretRef: { name: 'do-api', key: 'token' }, sshKeySecretRef: { name: 'halb-ssh', key: 'k' } },
    frontends: [{ name: 'www', port: 80, defaultBackend: 'web' }],
    backends: [{ name: 'web', servers: [{ name: 's1', address: '10.10.0.21' }] }],
  },
}).object!;

function render(version: { keepalived: string; haproxy: string }, object = lb, secrets: SecretData[] = []) {
  return renderNodes({
    lb: object, secrets: [{ name: 'do-api', data: { token: 'dop_v1_test' } }, ...secrets],
    observed: { floatingIP: '198.51.100.40', nodes: [
      { name: 'agent-0', privateIPv4: droplet.privateIPv4, anchorIPv4: droplet.anchorIPv4 },
      { name: 'agent-1', privateIPv4: '10.10.3.41', anchorIPv4: '10.17.0.41' },
    ] },
    settings: defaultSettings({ defaultVersions: version }),
  })[0]!;
}

describe('the host agent on a real droplet', () => {
  let pinned = '';

  it('pins the host key on first contact and refuses a different one later', async () => {
    const first = await HostAgent.connect({ host: droplet.publicIPv4, privateKey: key.privateKey });
    pinned = first.hostKey;
    first.close();
    expect(pinned).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    const again = await HostAgent.connect({ host: droplet.publicIPv4, privateKey: key.privateKey, pinnedHostKey: pinned });
    expect(again.hostKey).toBe(pinned);
    again.close();
    const impostor = hostKeyFingerprint(Buffer.from('another host'));
    await expect(HostAgent.connect({ host: droplet.publicIPv4, privateKey: key.privateKey, pinnedHostKey: impostor }))
      .rejects.toBeInstanceOf(HostKeyChangedError);
  });

  it('reads versions, metadata and daemon state in one round trip', async () => {
    const agent = await HostAgent.connect({ host: droplet.publicIPv4, privateKey: key.privateKey, pinnedHostKey: pinned });
    try {
      const state = await agent.readState();
      expect(state).toMatchObject({
        anchorIPv4: droplet.anchorIPv4, privateIPv4: droplet.privateIPv4, dropletId: droplet.id, haproxyRunning: false,
        keepalivedRunning: false, booted: true,
      });
      expect(state.keepalivedVersion).toMatch(/^\d+\.\d+\.\d+$/);
      expect(state.haproxyVersion).toMatch(/^\d+\.\d+/);
    } finally {
      agent.close();
    }
  });

  // Before keepalived first wrote its state (a node being created), /run/halb does not exist.
  // GNU tail then cannot watch the directory with inotify and polls, and took up to 6 s to see a
  // renamed file: status lagged failovers by as much.
  it.each([
    ['the state file was there when the watch started', true],
    ['the watch started before the state file\'s directory existed', false],
  ])('follows keepalived\'s state over the session, each change within 1 s of the notify script renaming it into place (%s)',
    async (_name, existedBefore) => {
      const agent = await HostAgent.connect({ host: droplet.publicIPv4, privateKey: key.privateKey, pinnedHostKey: pinned });
      const seen: string[] = [];
      let ended = false;
      const record = (state: string) => fabric.execInDroplet(droplet.name, ['sh', '-c',
        `mkdir -p /run/halb && printf '${state}\\n' > /run/halb/vrrp-state.tmp && mv -f /run/halb/vrrp-state.tmp /run/halb/vrrp-state`]);
      try {
        await fabric.execInDroplet(droplet.name, ['rm', '-rf', '/run/halb']);
        if (existedBefore) await record('BACKUP');
        agent.watchVrrp((state) => seen.push(state), () => { ended = true; });
        if (!existedBefore) {
          await sleep(300);
          await record('BACKUP');
        }
        await waitFor('the state now', () => seen.length === 1 || undefined, 5000);
        for (const state of ['MASTER', 'FAULT', 'BACKUP']) {
          const started = performance.now();
          await record(state);
          await waitFor(`${state} followed`, () => seen.at(-1) === state || undefined, 10_000, 10);
          expect(performance.now() - started).toBeLessThan(1000);
        }
        expect(seen).toEqual(['BACKUP', 'MASTER', 'FAULT', 'BACKUP']);
      } finally {
        agent.close();
        await fabric.execInDroplet(droplet.name, ['rm', '-f', '/run/halb/vrrp-state']);
      }
      await waitFor('the watch to end with the session', () => ended || undefined, 5000);
    });

  it('applies, starts, reloads only on change, and keeps the running config when the daemon refuses a new one', async () => {
    const agent = await HostAgent.connect({ host: droplet.publicIPv4, privateKey: key.privateKey, pinnedHostKey: pinned });
    try {
      const versions = await agent.readState();
      const node = render({ keepalived: versions.keepalivedVersion!, haproxy: versions.haproxyVersion! });
      const applied = await agent.apply(node.files, node.configHash, versions);
      expect(applied).toMatchObject({ outcome: 'applied' });
      const running = await agent.readState();
      expect(running).toMatchObject({ configHash: node.configHash, haproxyRunning: true, keepalivedRunning: true });
      // HAProxy's own view of the backend servers, from its stats on the VPC address.
      expect(Object.keys(running.servers ?? {})).toEqual(['web/s1']);
      expect(await agent.apply(node.files, node.configHash, running)).toEqual({ outcome: 'unchanged' });

      // A config HAProxy refuses (bypassing the renderer's own guards) never replaces the running one.
      const broken = node.files.map((f) =>
        (f.path.endsWith('haproxy.cfg') ? { ...f, content: f.content.replace('default_backend web', 'default_backend nowhere') } : f));
      const refused = await agent.apply(broken, 'sha256:broken', running).then(() => undefined, (err: unknown) => err);
      expect(refused).toBeInstanceOf(ConfigRefusedError);
      expect(refused).toMatchObject({ daemon: 'haproxy', detail: expect.stringMatching(/nowhere/) });
      const after = await agent.readState();
      expect(after.configHash).toBe(node.configHash);
      expect(after.haproxyRunning).toBe(true);
      const served = await fabric.execInDroplet(droplet.name, ['cat', '/etc/haproxy/haproxy.cfg']);
      expect(served.stdout).toBe(node.files.find((f) => f.path.endsWith('haproxy.cfg'))!.content);

      // The failover token is root-only on the host.
      const mode = await fabric.execInDroplet(droplet.name, ['stat', '-c', '%a', '/etc/keepalived/halb-failover.token']);
      expect(mode.stdout.trim()).toBe('600');
    } finally {
      agent.close();
    }
  }, 60_000);

  it('takes servers added, re-weighted, drained, moved and removed, and a rotated certificate, at runtime: no new worker', async () => {
    const agent = await HostAgent.connect({ host: droplet.publicIPv4, privateKey: key.privateKey, pinnedHostKey: pinned });
    // HAProxy's own answer on its admin socket, and its worker (a reload forks a new one).
    const cli = async (command: string) => (await fabric.execInDroplet(droplet.name, haproxyAdminCommand(command))).stdout;
    const worker = async () => workerPid(await cli('show info'));
    const servers = async () => runtimeServers(await cli('show servers state web'), 'web')
      .map((s) => `${s.name} ${s.address}:${s.port} weight ${s.weight}`);
    const certificate = async () => (await fabric.execInDroplet(droplet.name, ['sh', '-c',
      `echo | openssl s_client -connect ${droplet.anchorIPv4}:443 2>/dev/null | openssl x509 -noout -subject`])).stdout.trim();
    const pair = (cn: string) => {
      const out = join(dir, cn);
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${cn}`,
        '-days', '2', '-keyout', `${out}.key`, '-out', `${out}.crt`], { stdio: 'ignore' });
      return [{ name: 'www-tls', type: 'kubernetes.io/tls', data: { 'tls.crt': readFileSync(`${out}.crt`, 'utf8'),
        'tls.key': readFileSync(`${out}.key`, 'utf8') } }];
    };
    const withServers = (servers: Record<string, unknown>[]) => validateHALoadBalancer({
      ...lb, spec: {
        ...lb.spec, backends: [{ name: 'web', servers }],
        frontends: [{ name: 'www', port: 80, defaultBackend: 'web', tls: { port: 443, secretRef: { name: 'www-tls' } } }],
      },
    }).object!;
    const s1 = { name: 's1', address: '10.10.0.21' };
    try {
      const state = await agent.readState();
      const versions = { keepalived: state.keepalivedVersion!, haproxy: state.haproxyVersion! };
      const first = pair('first.test');
      const base = render(versions, withServers([s1]), first);
      // TLS on: a new file, a reload.
      expect(stepsOf(await agent.apply(base.files, base.configHash, state))).toContain('reloaded haproxy');
      const pid = await worker();
      expect(pid).toMatch(/^\d+$/);
      expect(await certificate()).toBe('subject=CN = first.test');
      const steps: [string, Record<string, unknown>[], SecretData[], string[]][] = [
        ['added', [s1, { name: 's2', address: '10.10.0.22', weight: 5 }], first,
          ['s1 10.10.0.21:80 weight 1', 's2 10.10.0.22:80 weight 5']],
        ['re-weighted and drained', [{ ...s1, weight: 3 }, { name: 's2', address: '10.10.0.22', drain: true }], first,
          ['s1 10.10.0.21:80 weight 3', 's2 10.10.0.22:80 weight 0']],
        ['moved', [{ ...s1, weight: 3 }, { name: 's2', address: '10.10.0.23', port: 8080, drain: true }], first,
          ['s1 10.10.0.21:80 weight 3', 's2 10.10.0.23:8080 weight 0']],
        ['removed, and the certificate rotated', [{ ...s1, weight: 3 }], pair('second.test'), ['s1 10.10.0.21:80 weight 3']],
      ];
      for (const [what, list, secrets, expected] of steps) {
        const node = render(versions, withServers(list), secrets);
        const result = await agent.apply(node.files, node.configHash, await agent.readState());
        expect(result, what).toMatchObject({ outcome: 'applied', steps: [expect.stringMatching(/^runtime haproxy \d+ commands$/)] });
        expect(await servers(), what).toEqual(expected);
        // The files on disk say the same (only the changed ones were sent), so a later reload starts in this state.
        for (const file of node.files.filter((f) => f.path.startsWith('/etc/haproxy/'))) {
          expect((await fabric.execInDroplet(droplet.name, ['cat', file.path])).stdout, `${what}: ${file.path}`).toBe(file.content);
        }
      }
      expect(await certificate()).toBe('subject=CN = second.test');
      expect(await worker()).toBe(pid);
      // Back to the plain config the next tests expect (a reload: TLS off), which says why it reloaded.
      const plain = render(versions);
      const back = await agent.apply(plain.files, plain.configHash, await agent.readState());
      expect(stepsOf(back)).toContain('reloaded haproxy');
      expect(back).toMatchObject({ reloadReason: 'files were added or removed' });
    } finally {
      agent.close();
    }
  }, 60_000);

  it('moves keepalived through the priority-offset file without a reload, and reads the maintenance notice and the logs', async () => {
    const agent = await HostAgent.connect({ host: droplet.publicIPv4, privateKey: key.privateKey, pinnedHostKey: pinned });
    const vrrp = async () => (await fabric.execInDroplet(droplet.name, ['cat', '/run/halb/vrrp-state'])).stdout.trim();
    const until = async (want: string) => {
      for (let i = 0; i < 100 && (await vrrp()) !== want; i++) await new Promise((r) => setTimeout(r, 100));
      return vrrp();
    };
    try {
      // Alone, the node is MASTER; the lowest priority keeps it MASTER, the hand-over value makes it leave.
      expect(await until('MASTER')).toBe('MASTER');
      const pid = (await fabric.execInDroplet(droplet.name, ['cat', '/run/keepalived.pid'])).stdout.trim();
      await agent.setPriorityOffset(-253);
      expect((await agent.readState()).priorityOffset).toBe(-253);
      await new Promise((r) => setTimeout(r, 500));
      expect(await vrrp()).toBe('MASTER');
      await agent.setPriorityOffset(-254);
      expect(await until('FAULT')).toBe('FAULT');
      await agent.setPriorityOffset(0);
      expect(await until('MASTER')).toBe('MASTER');
      // keepalived read the file by itself: the same process, no reload.
      expect((await fabric.execInDroplet(droplet.name, ['cat', '/run/keepalived.pid'])).stdout.trim()).toBe(pid);
      await expect(agent.setPriorityOffset(300)).rejects.toThrow(/-254 to 254/);

      expect((await agent.readState()).maintenanceEvent).toBeUndefined();
      await fabric.updateDropletMetadata(droplet.name, { maintenanceEvent: 'live_migrate' });
      expect((await agent.readState()).maintenanceEvent).toBe('live_migrate');
      await fabric.updateDropletMetadata(droplet.name, { maintenanceEvent: '' });

      const logs = await agent.readLogs(50);
      expect(logs.map((l) => l.name)).toEqual(['failover', 'haproxy']);
      expect(logs[0]!.lines.join('\n')).toMatch(/halb-failover\[\d+\]: started: moving 198\.51\.100\.40 here/);
    } finally {
      agent.close();
    }
  }, 60_000);

  it('survives the host vanishing mid-session: the call fails, nothing else does', async () => {
    const agent = await HostAgent.connect({ host: droplet.publicIPv4, privateKey: key.privateKey, pinnedHostKey: pinned });
    try {
      // The droplet crashes: every process in it, sshd included, is killed.
      await fabric.stopDroplet(droplet.name);
      await expect(agent.readState()).rejects.toThrow();
      // A reset socket emits 'error' on the ssh2 client; unhandled, it would fail this run.
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      agent.close();
      await fabric.startDroplet(droplet.name);
    }
  }, 60_000);
});

// `halb sandbox up | status | down` as a person runs them: up (detached) twice is safe, status
// has the contract's fields, down twice is safe, and down leaves no namespace, process, nft
// table or file behind.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { prefixForStateDir } from '../../src/sandbox/fabric/index.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const stateDir = join(mkdtempSync(join(tmpdir(), 'halb-updown-')), 'state');
const prefix = prefixForStateDir(stateDir);

function halb(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(ROOT, 'bin/halb.mjs'), ...args, '--state-dir', stateDir], {
      timeout: 180_000,
    }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}
function sh(cmd: string): Promise<string> {
  return new Promise((resolve) => execFile('sh', ['-c', cmd], (_e, stdout) => resolve(stdout)));
}

afterAll(async () => { await halb('sandbox', 'down'); }, 120_000);

describe('halb sandbox up, status, down', () => {
  it('comes up detached, and a second up says so and changes nothing', async () => {
    const first = await halb('sandbox', 'up', '--detach', '--no-operator');
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`export KUBECONFIG=${join(stateDir, 'kubeconfig')}`);
    const second = await halb('sandbox', 'up', '--detach', '--no-operator');
    expect(second.code).toBe(0);
    expect(second.stderr).toContain('already up');
  }, 180_000);

  it('status --json has the endpoints and every host with namespace, addresses and role', async () => {
    const r = await halb('sandbox', 'status', '--json');
    expect(r.code).toBe(0);
    const status = JSON.parse(r.stdout) as {
      kubeconfig: string; digitalocean: { endpoint: string; token: string }; kubernetes: { server: string };
      hosts: { name: string; namespace: string; role: string; privateIPv4?: string; publicIPv4?: string }[];
    };
    expect(status.kubeconfig).toBe(join(stateDir, 'kubeconfig'));
    expect(status.digitalocean.endpoint).toMatch(/^http:\/\/[0-9.]+:\d+\/v2$/);
    expect(status.kubernetes.server).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(status.hosts.map((h) => [h.name, h.namespace, h.role]).sort()).toEqual([
      ['client', `${prefix}-client`, 'client'], ['node-1', `${prefix}-node-1`, 'backend'], ['node-2', `${prefix}-node-2`, 'backend'],
      ['node-3', `${prefix}-node-3`, 'backend'], ['web-1', `${prefix}-web-1`, 'backend'], ['web-2', `${prefix}-web-2`, 'backend'],
    ]);
    expect(status.hosts.find((h) => h.name === 'web-1')?.privateIPv4).toBe('10.10.0.21');
    // The Kubernetes emulator answers, with the CRD and the two Secrets the examples need.
    const crd = await fetch(`${status.kubernetes.server}/apis/apiextensions.k8s.io/v1/customresourcedefinitions/haloadbalancers.halb.dev`);
    expect(crd.status).toBe(200);
    for (const secret of ['do-api', 'halb-ssh']) {
      expect((await fetch(`${status.kubernetes.server}/api/v1/namespaces/default/secrets/${secret}`)).status).toBe(200);
    }
  });

  it('down removes everything up made, and a second down is fine', async () => {
    expect((await halb('sandbox', 'down')).code).toBe(0);
    expect((await halb('sandbox', 'down')).code).toBe(0);
    expect(await sh(`ip netns list | grep '^${prefix}-' || true`)).toBe('');
    expect(await sh(`nft list tables | grep '${prefix}' || true`)).toBe('');
    expect(await sh(`ip link show | grep '${prefix}-' || true`)).toBe('');
    expect(await sh(`ps -eo args | grep -F '${stateDir}' | grep -v grep || true`)).toBe('');
    expect(existsSync(stateDir)).toBe(false);
    expect(await sh('ip route | grep -E "203\\.0\\.113|198\\.51\\.100" || true')).toBe('');
  }, 120_000);
});

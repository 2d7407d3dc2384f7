// kubectl-halb as kubectl runs it: the real kubectl finds the plugin on PATH (a link to
// bin/kubectl-halb.mjs, started by whatever `node` PATH has first, as an installed package's
// bin is) and runs it against the Kubernetes emulator. The commands read status, write the
// day-two annotations, refuse what the operator would refuse (writing nothing), and follow
// kubectl's conventions: the context's namespace, --namespace, --context, -o json. The
// operator's side of each request is tested in test/controller/day-two.test.ts and, with these
// same commands, in the sandbox (test/e2e/day-two.test.ts).
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CRD_FILE, KUBECTL, startHarness, waitFor, type Harness } from '../kube/helpers.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
let h: Harness;
let env: NodeJS.ProcessEnv;
let pathDir: string;

/** `kubectl ARGS` with the plugin on PATH; no kubectl flag before the plugin's name (kubectl
 *  finds plugins only from the first word), so the kubeconfig comes from $KUBECONFIG. */
function kubectl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(KUBECTL, args, { env, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

const object = {
  apiVersion: 'halb.dev/v1alpha1', kind: 'HALoadBalancer', metadata: { name: 'web', namespace: 'team' },
  spec: {
    region: 'nyc3',
    credentials: { tokenSecretRef: { name: 'do-api', key: 'token' }, sshKeySecretRef: { name: 'halb-ssh', key: 'ssh-privatekey' } },
    frontends: [{ name: 'www', port: 80, defaultBackend: 'web' }],
    backends: [{ name: 'web', servers: [{ name: 's1', address: '10.10.0.21' }] }],
  },
};
const at = '2026-12-01T10:00:00Z';
const status = {
  floatingIP: '198.51.100.10', activeNode: 'web-0', nodesReady: '2/3',
  lastFailover: { time: at, from: 'web-1', to: 'web-0', reason: 'PreferredNode' },
  nodes: [
    { name: 'web-0', vrrpState: 'MASTER', configHash: 'sha256:0123456789abcdef', serversUp: '2/2' },
    { name: 'web-1', vrrpState: 'BACKUP', configHash: 'sha256:0123456789abcdef', serversUp: '2/2' },
    { name: 'web-2', vrrpState: 'FAULT', configHash: 'sha256:0123456789abcdef', serversUp: '0/2' },
  ],
  conditions: [
    { type: 'Ready', status: 'True', reason: 'Ready', message: 'the load balancer is serving', lastTransitionTime: at },
    { type: 'Degraded', status: 'True', reason: 'NodeFault', message: 'not able to take over: web-2 (FAULT)', lastTransitionTime: at },
  ],
};

async function annotations(): Promise<Record<string, string>> {
  const r = await kubectl(['get', 'halb', 'web', '-n', 'team', '-o', 'jsonpath={.metadata.annotations}']);
  return r.stdout ? JSON.parse(r.stdout) as Record<string, string> : {};
}

beforeAll(async () => {
  h = await startHarness();
  pathDir = mkdtempSync(join(tmpdir(), 'halb-plugin-path-'));
  symlinkSync(join(ROOT, 'bin/kubectl-halb.mjs'), join(pathDir, 'kubectl-halb'));
  // The kubeconfig's context puts kubectl (and the plugin) in namespace team; a second context
  // names another namespace.
  const kc = JSON.parse(JSON.stringify((await import('yaml')).parse(readFileSync(h.kubeconfig, 'utf8')))) as
    { contexts: { name: string; context: Record<string, string> }[]; 'current-context': string };
  const first = kc.contexts[0]!;
  first.context.namespace = 'team';
  kc.contexts.push({ name: 'elsewhere', context: { ...first.context, namespace: 'other' } });
  writeFileSync(h.kubeconfig, stringify(kc));
  env = { ...process.env, HOME: h.dir, KUBECONFIG: h.kubeconfig, PATH: `${pathDir}:${process.env.PATH}` };
  expect((await h.kubectl(['apply', '-f', CRD_FILE])).code).toBe(0);
  await waitFor('the CRD', async () => (await h.kubectl(['get', 'halb', '-A'])).code === 0);
  for (const ns of ['team', 'other']) expect((await h.kubectl(['create', 'namespace', ns])).code).toBe(0);
  expect((await h.kubectl(['apply', '-f', '-'], JSON.stringify(object))).code).toBe(0);
  const patched = await h.kubectl([
    'patch', 'halb', 'web', '-n', 'team', '--subresource=status', '--type=merge', '-p', JSON.stringify({ status }),
  ]);
  expect(patched.stderr).toBe('');
}, 60_000);

afterAll(async () => {
  await h?.close();
  rmSync(pathDir, { recursive: true, force: true });
});

describe('kubectl halb', () => {
  it('is found by kubectl on PATH and runs on Node 22 whatever node PATH has first', async () => {
    const list = await kubectl(['plugin', 'list']);
    expect(list.stdout).toContain(join(pathDir, 'kubectl-halb'));
    const version = await kubectl(['halb', 'version']);
    expect(version.stdout).toMatch(/^kubectl-halb \d+\.\d+\.\d+ \(API halb\.dev\/v1alpha1, node 22\.\d+\.\d+\)\n$/);
  });

  it('status shows a row per node, in the context\'s namespace, and the conditions that need a look', async () => {
    const r = await kubectl(['halb', 'status', 'web']);
    expect(r.stderr).toBe('');
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('team/web  floating IP 198.51.100.10  Ready=True Ready: the load balancer is serving');
    expect(lines).toContainEqual(expect.stringMatching(/^NODE\s+ROLE\s+VRRP\s+IP HOLDER\s+CONFIG\s+SERVERS UP\s+LAST FAILOVER\s+NOTE$/));
    expect(lines).toContainEqual(expect.stringMatching(
      /^web-0\s+active\s+MASTER\s+yes\s+0123456789ab\s+2\/2\s+became active \d+[smhd] ago \(PreferredNode\)$/));
    expect(lines).toContainEqual(expect.stringMatching(
      /^web-1\s+standby\s+BACKUP\s+0123456789ab\s+2\/2\s+handed over \d+[smhd] ago \(PreferredNode\)$/));
    expect(lines).toContain('Degraded=True NodeFault: not able to take over: web-2 (FAULT)');
  });

  it('status -o json is the same view, machine-readable; --namespace and --context pick elsewhere', async () => {
    const r = await kubectl(['halb', 'status', 'web', '-o', 'json']);
    const view = JSON.parse(r.stdout) as { nodes: { name: string; role: string; ipHolder: boolean }[]; activeNode: string };
    expect(view.activeNode).toBe('web-0');
    expect(view.nodes.map((n) => [n.name, n.role, n.ipHolder]))
      .toEqual([['web-0', 'active', true], ['web-1', 'standby', false], ['web-2', 'standby', false]]);
    expect(await kubectl(['halb', 'status', 'web', '--context', 'elsewhere'])).toMatchObject({
      code: 1, stderr: 'error: haloadbalancers.halb.dev "web" not found in namespace other\n',
    });
    expect((await kubectl(['halb', 'status', 'web', '--context', 'elsewhere', '-n', 'team'])).code).toBe(0);
    expect((await kubectl(['halb', '--context', 'elsewhere', '-n', 'team', 'status', 'web'])).code).toBe(0);
    expect(await kubectl(['halb', 'status', 'web', '--context', 'nowhere'])).toMatchObject({
      code: 1, stderr: 'error: context "nowhere" does not exist in the kubeconfig\n',
    });
    expect((await kubectl(['halb', 'status', 'web', '-o', 'yaml'])).stderr).toMatch(/--output must be json/);
  });

  it('failover refuses a node that does not exist, one in maintenance, one not a healthy BACKUP: nothing is written', async () => {
    const before = await annotations();
    expect(await kubectl(['halb', 'failover', 'web', '--to', 'web-7'])).toMatchObject({
      code: 1, stderr: 'error: refused (NodeNotFound): web-7 is not a node of web (web-0, web-1, web-2); nothing moves\n',
    });
    expect(await kubectl(['halb', 'failover', 'web', '--to', 'web-2'])).toMatchObject({
      code: 1, stderr: 'error: refused (NotHealthyBackup): web-2 is FAULT, not a healthy BACKUP; nothing moves\n',
    });
    await h.kubectl([
      'patch', 'halb', 'web', '-n', 'team', '--subresource=status', '--type=json',
      '-p', '[{"op":"add","path":"/status/nodes/1/maintenance","value":"in maintenance (disk)"}]',
    ]);
    expect(await kubectl(['halb', 'failover', 'web', '--to', 'web-1'])).toMatchObject({
      code: 1, stderr: 'error: refused (NodeInMaintenance): web-1 is in maintenance (disk); nothing moves\n',
    });
    expect(await kubectl(['halb', 'failover', 'web'])).toMatchObject({
      code: 1, stderr: 'error: no node of web can take over now (no healthy BACKUP); nothing moves\n',
    });
    await h.kubectl([
      'patch', 'halb', 'web', '-n', 'team', '--subresource=status', '--type=json',
      '-p', '[{"op":"remove","path":"/status/nodes/1/maintenance"}]',
    ]);
    expect(await annotations()).toEqual(before);
  });

  it('failover writes the preferred node (a healthy BACKUP when none is named); --clear removes it', async () => {
    const r = await kubectl(['halb', 'failover', 'web', '--wait=false']);
    expect(r).toMatchObject({
      code: 0, stdout: 'haloadbalancer.halb.dev/web failover to web-1 requested (halb.dev/preferred-node=web-1)\n',
    });
    expect((await annotations())['halb.dev/preferred-node']).toBe('web-1');
    expect(await kubectl(['halb', 'failover', 'web', '--clear'])).toMatchObject({ code: 0 });
    expect(await annotations()).not.toHaveProperty('halb.dev/preferred-node');
  });

  it('maintenance on and off write and remove the node\'s annotation; a node that does not exist is refused', async () => {
    expect(await kubectl(['halb', 'maintenance', 'web', 'web-2', 'on', '--note', 'disk swap', '--wait=false'])).toMatchObject({
      code: 0, stdout: 'haloadbalancer.halb.dev/web web-2 maintenance on (disk swap)\n',
    });
    expect((await annotations())['maintenance.halb.dev/web-2']).toBe('disk swap');
    expect((await kubectl(['halb', 'maintenance', 'web', 'web-2', 'off', '--wait=false'])).code).toBe(0);
    expect(await annotations()).not.toHaveProperty('maintenance.halb.dev/web-2');
    expect(await kubectl(['halb', 'maintenance', 'web', 'web-9', 'on'])).toMatchObject({
      code: 1, stderr: 'error: web-9 is not a node of web (web-0, web-1, web-2)\n',
    });
    expect((await kubectl(['halb', 'maintenance', 'web', 'web-2', 'sideways'])).code).toBe(2);
  });

  it('validate -f and render -f are halb\'s offline commands', async () => {
    expect(await kubectl(['halb', 'validate', '-f', join(ROOT, 'examples/basic.yaml')])).toMatchObject({
      code: 0, stdout: expect.stringContaining('HALoadBalancer/basic: valid'),
    });
    const out = join(h.dir, 'rendered');
    mkdirSync(out);
    expect((await kubectl(['halb', 'render', '-f', join(ROOT, 'examples/basic.yaml'), '--out', out])).code).toBe(0);
    expect(readFileSync(join(out, 'basic-0/etc/keepalived/keepalived.conf'), 'utf8')).toContain('track_file halb_priority_offset');
    expect((await kubectl(['halb', 'frobnicate'])).code).toBe(2);
  });
});

// Spec changes that move droplets: count up and down (BACKUPs come and go, the MASTER stays),
// and a size change that replaces the nodes one at a time, the MASTER last after a hand-over.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, startE2E, waitFor, withImage, type E2E } from './helpers.ts';

interface Status {
  floatingIP?: string;
  activeNode?: string;
  nodesReady?: string;
  nodes?: { name: string; dropletID?: number; vrrpState: string }[];
  conditions?: { type: string; status: string; reason: string }[];
}

let e2e: E2E;
beforeAll(async () => { e2e = await startE2E(); }, 120_000);
afterAll(async () => { await e2e?.close(); }, 120_000);
afterEach((ctx) => e2e?.printLogIfFailed(ctx));

async function status(): Promise<Status> {
  const r = await e2e.kubectl(['get', 'halb', 'basic', '-o', 'jsonpath={.status}']);
  return r.code === 0 && r.stdout ? JSON.parse(r.stdout) as Status : {};
}
// Ready, and settled: the IP on the node keepalived made MASTER. Right after creation Ready can
// be True while the IP is still moving from node 0 (its first assignment) to the elected MASTER.
const readyWith = (nodes: string) => waitFor(`Ready with ${nodes}, the IP on the MASTER`, async () => {
  const s = await status();
  const master = s.nodes?.find((n) => n.vrrpState === 'MASTER')?.name;
  return s.nodesReady === nodes && s.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') &&
    master && s.activeNode === master ? s : undefined;
}, 150_000, 500);
const droplets = () => e2e.sandbox.digitalocean.state.dropletViews().filter((d) => d.name.startsWith('basic-'));

describe('spec changes that move droplets', () => {
  it('count 2 → 3 → 2 adds and removes a BACKUP, keeping the MASTER and the IP', async () => {
    expect((await e2e.kubectl(['apply', '-f', '-'], withImage(`${ROOT}examples/basic.yaml`))).code).toBe(0);
    const first = await readyWith('2/2');
    const master = first.activeNode;
    expect((await e2e.kubectl(['patch', 'halb', 'basic', '--type=merge', '-p', '{"spec":{"droplets":{"count":3}}}'])).code).toBe(0);
    const three = await readyWith('3/3');
    expect(three.nodes!.map((n) => n.vrrpState).sort()).toEqual(['BACKUP', 'BACKUP', 'MASTER']);
    expect(three.activeNode).toBe(master);
    // The new node is a peer of the others: its keepalived config names both.
    const conf = await e2e.inHost('basic-2', ['cat', '/etc/keepalived/keepalived.conf']);
    for (const peer of first.nodes!) {
      const peerConf = (await e2e.inHost(peer.name, ['cat', '/etc/keepalived/keepalived.conf'])).stdout;
      expect(conf.stdout).toContain(peerConf.match(/unicast_src_ip (\S+)/)![1]);
    }
    expect((await e2e.kubectl(['patch', 'halb', 'basic', '--type=merge', '-p', '{"spec":{"droplets":{"count":2}}}'])).code).toBe(0);
    const two = await readyWith('2/2');
    expect(two.activeNode).toBe(master);
    await waitFor('basic-2 gone', () => droplets().every((d) => d.name !== 'basic-2') || undefined, 30_000);
    expect(droplets().map((d) => d.name).sort()).toEqual(['basic-0', 'basic-1']);
  }, 300_000);

  it('a size change replaces every node one at a time, and traffic keeps flowing', async () => {
    const before = await status();
    const oldIds = new Set(before.nodes!.map((n) => n.dropletID));
    const client = e2e.clientLoop(before.floatingIP!, { timeoutSeconds: 1, pauseMs: 100 });
    expect((await e2e.kubectl(['patch', 'halb', 'basic', '--type=merge', '-p', '{"spec":{"droplets":{"size":"s-2vcpu-2gb"}}}'])).code)
      .toBe(0);
    const after = await waitFor('every node replaced and Ready', async () => {
      const s = await status();
      const ids = s.nodes?.map((n) => n.dropletID) ?? [];
      const fresh = ids.length === 2 && ids.every((id) => !oldIds.has(id));
      return fresh && s.nodesReady === '2/2' && s.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? s : undefined;
    }, 240_000, 500);
    const { sent, failed } = await client.stop();
    console.log(`size change: ${sent} requests during the replacement, ${failed} failed`);
    expect(droplets().map((d) => d.name).sort()).toEqual(['basic-0', 'basic-1']);
    expect(after.nodes!.map((n) => n.vrrpState).sort()).toEqual(['BACKUP', 'MASTER']);
    // One hand-over of the MASTER costs at most a few failed requests; never a long outage.
    expect(failed).toBeLessThan(sent / 4);
  }, 300_000);
});

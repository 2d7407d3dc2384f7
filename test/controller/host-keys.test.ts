// No trust on first use: the operator makes each droplet's SSH host key, hands it over in
// user_data (cloud-init ssh_keys) and pins it with a tag in the create request, so its first
// connection is already verified. A droplet made before that keeps the key pinned at first contact.
import { afterEach, describe, expect, it } from 'vitest';
import type { HALoadBalancer } from '../../src/api/types.ts';
import { publicKeyFingerprint } from '../../src/digitalocean/cloud-init.ts';
import { parseHostKeyTag } from '../../src/digitalocean/naming.ts';
import { firstBootFromUserData } from '../../src/sandbox/fabric/cloud-config.ts';
import { basicObject, startHarness, type Harness } from './harness.ts';

let h: Harness;
afterEach(async () => { await h?.close(); });

const ready = (object: HALoadBalancer | undefined) =>
  object?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

describe('host keys', () => {
  it('are made by the operator, delivered in user_data and pinned by a tag from creation on', async () => {
    h = await startHarness();
    await h.create(basicObject());
    await h.passUntil('web', ready);
    const object = (await h.get('web'))!;
    for (const droplet of h.sim.state.dropletViews().filter((d) => d.name.startsWith('web-'))) {
      const given = firstBootFromUserData(droplet.userData).hostKeyPublic;
      expect(given).toMatch(/^ssh-ed25519 /);
      const pin = parseHostKeyTag(droplet.tags);
      expect(pin).toBe(publicKeyFingerprint(given!));
      expect(object.status!.nodes!.find((n) => n.name === droplet.name)).toMatchObject({ hostKey: pin, hostKeyPinned: 'AtCreation' });
    }
  });

  it('refuses a host that presents another key at the very first contact', async () => {
    h = await startHarness();
    // Every host comes up with a key of its own, not the one its user_data gave (an impostor
    // answering at the droplet's address before it booted, say).
    const add = h.hosts.add.bind(h.hosts);
    h.hosts.add = (droplet) => add({ ...droplet, userData: '' });
    await h.create(basicObject());
    const records = await h.passUntil('web', (o) => o?.status?.conditions?.some((c) => c.reason === 'HostKeyChanged') ?? false);
    expect(records.flatMap((r) => r.events)).not.toContain('ConfigApplied');
    expect([...h.hosts.hosts.values()].every((host) => host.files.size === 0)).toBe(true);
  });

  it('an existing droplet made before keeps the key pinned at first contact', async () => {
    h = await startHarness();
    await h.create(basicObject());
    await h.passUntil('web', ready);
    // The same object as an older operator left it: droplets without the pin tag, keys pinned
    // at first contact in status.
    for (const droplet of h.sim.state.dropletViews().filter((d) => d.name.startsWith('web-'))) {
      const tag = droplet.tags.find((t) => t.startsWith('halb-hostkey-'))!;
      const r = await fetch(`${h.sim.url}/v2/tags/${tag}/resources`, {
        method: 'DELETE', headers: { authorization: 'Bearer dop_v1_harness', 'content-type': 'application/json' },
        body: JSON.stringify({ resources: [{ resource_id: String(droplet.id), resource_type: 'droplet' }] }),
      });
      expect(r.status).toBe(204);
    }
    await h.passUntil('web', (o) => ready(o) && (o?.status?.nodes ?? []).every((n) => n.hostKeyPinned === 'OnFirstContact'));
    const before = (await h.get('web'))!.status!.nodes!.map((n) => n.hostKey);
    // The pin holds: a host presenting another key now is refused.
    h.hosts.byName('web-1')!.hostKey = 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
    await h.passUntil('web', (o) => o?.status?.conditions?.some((c) => c.reason === 'HostKeyChanged') ?? false);
    expect((await h.get('web'))!.status!.nodes!.map((n) => n.hostKey)).toEqual(before);
  });
});

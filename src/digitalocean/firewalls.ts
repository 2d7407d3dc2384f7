// DigitalOcean Cloud Firewalls for `restrictToLoadBalancers`: the backend droplets (by their
// tag) admit the backend port only from the LB droplets (by the owner tag).
//
// A Cloud Firewall is an allow-list: once any firewall applies to a droplet, inbound traffic it
// does not allow is dropped, and so is outbound traffic. So the firewall also allows all
// outbound traffic; other inbound ports (SSH, say) need the user's own firewall, which
// DigitalOcean merges with this one. Firewalls cannot carry tags: the name
// halb-<uid>-<backend> records the owner.
import type { DigitalOceanClient } from './client.ts';
import { DigitalOceanError } from './errors.ts';
import { PER_PAGE, nextPage } from './droplets.ts';
import { backendFirewallName, uidTag } from './naming.ts';

interface Targets {
  addresses?: string[];
  droplet_ids?: number[];
  tags?: string[];
}

export interface ApiFirewall {
  id: string;
  name: string;
  droplet_ids: number[] | null;
  tags: string[] | null;
  inbound_rules: { protocol: string; ports: string; sources: Targets }[];
  outbound_rules: { protocol: string; ports: string; destinations: Targets }[];
}

export interface BackendFirewallSpec {
  uid: string;
  backend: string;
  /** spec.backends[].dropletTag */
  backendTag: string;
  port: number;
}

const EVERYWHERE: Targets = { addresses: ['0.0.0.0/0', '::/0'] };

export function desiredFirewall(spec: BackendFirewallSpec): Omit<ApiFirewall, 'id'> {
  return {
    name: backendFirewallName(spec.uid, spec.backend),
    droplet_ids: [],
    tags: [spec.backendTag],
    inbound_rules: [{ protocol: 'tcp', ports: String(spec.port), sources: { tags: [uidTag(spec.uid)] } }],
    outbound_rules: [
      { protocol: 'tcp', ports: '0', destinations: EVERYWHERE },
      { protocol: 'udp', ports: '0', destinations: EVERYWHERE },
      { protocol: 'icmp', ports: '0', destinations: EVERYWHERE },
    ],
  };
}

/** Compares what matters, ignoring order and DigitalOcean's null-for-empty lists. */
export function firewallMatches(actual: Omit<ApiFirewall, 'id'>, desired: Omit<ApiFirewall, 'id'>): boolean {
  const norm = (f: Omit<ApiFirewall, 'id'>) =>
    JSON.stringify({
      name: f.name,
      droplet_ids: [...(f.droplet_ids ?? [])].sort(),
      tags: [...(f.tags ?? [])].sort(),
      inbound: f.inbound_rules.map((r) => JSON.stringify([
        r.protocol, r.ports === 'all' ? '0' : r.ports, [...(r.sources.tags ?? [])].sort(), [...(r.sources.addresses ?? [])].sort(),
      ])).sort(),
      outbound: f.outbound_rules.map((r) => JSON.stringify([
        r.protocol, r.ports === 'all' ? '0' : r.ports,
        [...(r.destinations.tags ?? [])].sort(), [...(r.destinations.addresses ?? [])].sort(),
      ])).sort(),
    });
  return norm(actual) === norm(desired);
}

export async function listFirewalls(client: DigitalOceanClient): Promise<ApiFirewall[]> {
  const all: ApiFirewall[] = [];
  let page: number | undefined = 1;
  while (page !== undefined) {
    const res = await client.dots.firewall.listFirewalls({ page, per_page: PER_PAGE });
    all.push(...((res.data.firewalls ?? []) as unknown as ApiFirewall[]));
    const next = nextPage(res.data.links);
    page = next !== undefined && next > page ? next : undefined;
  }
  return all;
}

/** Creates or corrects the backend firewall. Returns its id. */
export async function ensureBackendFirewall(
  client: DigitalOceanClient, spec: BackendFirewallSpec, existing?: ApiFirewall[],
): Promise<{ id: string; changed: boolean }> {
  const desired = desiredFirewall(spec);
  const found = (existing ?? (await listFirewalls(client))).find((f) => f.name === desired.name);
  const body = {
    name: desired.name,
    droplet_ids: desired.droplet_ids ?? [],
    tags: desired.tags ?? [],
    inbound_rules: desired.inbound_rules,
    outbound_rules: desired.outbound_rules,
  };
  if (found && firewallMatches(found, desired)) return { id: found.id, changed: false };
  // A firewall may only name tags that exist; creating them first lets the firewall apply to
  // backends tagged later.
  await ensureTags(client, [spec.backendTag, uidTag(spec.uid)]);
  if (!found) {
    const res = await client.dots.firewall.createFirewall(body as never);
    const id = (res.data.firewall as unknown as ApiFirewall).id;
    client.logger.info({ name: desired.name, id }, 'firewall created');
    return { id, changed: true };
  }
  // PUT replaces the whole firewall, so send every field.
  await client.dots.firewall.updateFirewall({ id: found.id, ...body } as never);
  client.logger.info({ name: desired.name, id: found.id }, 'firewall updated');
  return { id: found.id, changed: true };
}

async function ensureTags(client: DigitalOceanClient, names: readonly string[]): Promise<void> {
  for (const name of names) {
    try {
      await client.dots.tag.createTag({ name });
    } catch (err) {
      // Already there is what we want.
      if (!(err instanceof DigitalOceanError && (err.status === 409 || err.status === 422))) {
        if (err instanceof DigitalOceanError && err.status === 400) {
          throw new DigitalOceanError('terminal', `spec.backends[].dropletTag: ${err.message}`, err.details);
        }
        throw err;
      }
    }
  }
}

/** Deletes the object's backend firewalls except those for `keepBackends`. */
export async function pruneBackendFirewalls(
  client: DigitalOceanClient, uid: string, keepBackends: readonly string[], existing?: ApiFirewall[],
): Promise<string[]> {
  const prefix = backendFirewallName(uid, '');
  const keep = new Set(keepBackends.map((b) => backendFirewallName(uid, b)));
  const deleted: string[] = [];
  for (const f of existing ?? (await listFirewalls(client))) {
    if (!f.name.startsWith(prefix) || keep.has(f.name)) continue;
    try {
      await client.dots.firewall.deleteFirewall({ firewall_id: f.id });
    } catch (err) {
      if (!(err instanceof DigitalOceanError && err.status === 404)) throw err;
    }
    client.logger.info({ name: f.name, id: f.id }, 'firewall deleted');
    deleted.push(f.name);
  }
  return deleted;
}

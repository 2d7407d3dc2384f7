// LB droplets: list by tag (every page), create idempotently, wait for `active`, delete.
import type { DigitalOceanClient } from './client.ts';
import { DigitalOceanError } from './errors.ts';
import { newHostKey, type NodeHostKey } from './cloud-init.ts';
import { dropletTags, nodeName, parseHostKeyTag, parseNodeTags, uidTag } from './naming.ts';
import { DEFAULT_WAIT, poll, type WaitSettings } from './poll.ts';

export const PER_PAGE = 200;

/** A droplet as DigitalOcean returns it; only the fields halb reads. */
export interface ApiDroplet {
  id: number;
  name: string;
  status: string;
  tags: string[];
  created_at: string;
  region: { slug: string } | string;
  vpc_uuid?: string;
  size_slug?: string;
  image?: { id?: number; slug?: string | null };
  networks: { v4: { ip_address: string; type: string; netmask?: string }[] };
}

/** What halb knows about one node's droplet. */
export interface NodeDroplet {
  id: number;
  name: string;
  uid: string;
  index: number;
  status: string;
  region: string;
  tags: string[];
  createdAt: string;
  publicIPv4?: string;
  privateIPv4?: string;
  /** The private address's netmask, which gives the VPC's range. */
  privateNetmask?: string;
  /** Size slug, so a spec change of size can be seen and rolled out. */
  size?: string;
  /** Image slug, and id: a spec may name the image either way. */
  image?: string;
  imageId?: string;
  /** The host key fingerprint pinned at creation (its tag), when the operator made the key. */
  hostKeyPin?: string;
}

/** Reads a droplet. `reservedIPs` are excluded from its own public address (DigitalOcean lists
 * an assigned reserved IP as another public entry). */
export function toNodeDroplet(d: ApiDroplet, reservedIPs: ReadonlySet<string> = new Set()): NodeDroplet | undefined {
  const owner = parseNodeTags(d.tags ?? []);
  if (!owner) return undefined;
  const v4 = d.networks?.v4 ?? [];
  const publicIPv4 = v4.find((n) => n.type === 'public' && !reservedIPs.has(n.ip_address))?.ip_address;
  const privateNet = v4.find((n) => n.type === 'private');
  const privateIPv4 = privateNet?.ip_address;
  const node: NodeDroplet = {
    id: d.id,
    name: d.name,
    uid: owner.uid,
    index: owner.index,
    status: d.status,
    region: typeof d.region === 'string' ? d.region : d.region.slug,
    tags: [...d.tags],
    createdAt: d.created_at,
  };
  if (d.size_slug) node.size = d.size_slug;
  if (d.image?.slug) node.image = d.image.slug;
  if (d.image?.id !== undefined) node.imageId = String(d.image.id);
  if (publicIPv4 !== undefined) node.publicIPv4 = publicIPv4;
  if (privateIPv4 !== undefined) node.privateIPv4 = privateIPv4;
  if (privateNet?.netmask) node.privateNetmask = privateNet.netmask;
  const pin = parseHostKeyTag(node.tags);
  if (pin) node.hostKeyPin = pin;
  return node;
}

/** The page number a `links.pages.next` URL points at. */
export function nextPage(links: unknown): number | undefined {
  const next = (links as { pages?: { next?: unknown } } | undefined)?.pages?.next;
  if (typeof next !== 'string') return undefined;
  const page = Number(new URL(next, 'http://x').searchParams.get('page'));
  return Number.isInteger(page) && page > 1 ? page : undefined;
}

/** Every droplet with `tag`, following `links.pages.next` at 200 per page. */
export async function listDropletsByTag(client: DigitalOceanClient, tag: string): Promise<ApiDroplet[]> {
  const all: ApiDroplet[] = [];
  let page: number | undefined = 1;
  const seen = new Set<number>();
  while (page !== undefined) {
    if (seen.has(page)) throw new Error(`DigitalOcean pagination looped at page ${page} of tag ${tag}`);
    seen.add(page);
    const res = await client.dots.droplet.listDroplets({ tag_name: tag, page, per_page: PER_PAGE });
    all.push(...((res.data.droplets ?? []) as unknown as ApiDroplet[]));
    page = nextPage(res.data.links);
  }
  return all;
}

export interface NodeSpec {
  uid: string;
  objectName: string;
  count: number;
  region: string;
  size: string;
  image: string;
  vpcUUID?: string;
  /** DigitalOcean SSH key ids or fingerprints. */
  sshKeys: (string | number)[];
  extraTags?: string[];
  /** The droplet's user_data; given a host key (see hostKeys), it must deliver it (cloudInit's hostKey). */
  userData: (nodeName: string, index: number, hostKey?: NodeHostKey) => string;
  /** Make each new droplet's SSH host key here, deliver it through userData and pin it with a tag. */
  hostKeys?: boolean;
}

export interface EnsureDropletsResult {
  /** One droplet per index 0..count-1, in index order. */
  nodes: NodeDroplet[];
  /** Ids created by this call. */
  created: number[];
  /** Droplets beyond `count`, or second droplets for one index: the caller deletes them. */
  surplus: NodeDroplet[];
}

function groupByIndex(droplets: ApiDroplet[], uid: string): { byIndex: Map<number, NodeDroplet>; extra: NodeDroplet[] } {
  const byIndex = new Map<number, NodeDroplet>();
  const extra: NodeDroplet[] = [];
  const nodes = droplets.map((d) => toNodeDroplet(d)).filter((n): n is NodeDroplet => n !== undefined && n.uid === uid);
  nodes.sort((a, b) => a.id - b.id);
  for (const n of nodes) {
    if (byIndex.has(n.index)) extra.push(n);
    else byIndex.set(n.index, n);
  }
  return { byIndex, extra };
}

/**
 * Makes sure node droplets 0..count-1 exist. Safe to repeat after a crash at any point: it
 * lists by the owner tag before creating, creates one droplet per missing index, and when a
 * create's answer is lost it lists again instead of creating blindly.
 */
export async function ensureNodeDroplets(client: DigitalOceanClient, spec: NodeSpec): Promise<EnsureDropletsResult> {
  const ownerTag = uidTag(spec.uid);
  const created: number[] = [];
  let listing = groupByIndex(await listDropletsByTag(client, ownerTag), spec.uid);
  for (let index = 0; index < spec.count; index++) {
    for (let attempt = 0; !listing.byIndex.has(index); attempt++) {
      const name = nodeName(spec.objectName, index);
      // A new key for every attempt: a lost create's droplet keeps the key its own tag pins.
      const hostKey = spec.hostKeys ? newHostKey(name) : undefined;
      try {
        const res = await client.dots.droplet.createDroplet({
          name,
          region: spec.region,
          size: spec.size,
          image: spec.image,
          ssh_keys: spec.sshKeys,
          tags: dropletTags(spec.uid, index, spec.extraTags, hostKey?.fingerprint),
          user_data: spec.userData(name, index, hostKey),
          ...(spec.vpcUUID ? { vpc_uuid: spec.vpcUUID } : {}),
          monitoring: true,
        });
        const droplet = res.data.droplet as unknown as ApiDroplet;
        created.push(droplet.id);
        client.logger.info({ uid: spec.uid, index, id: droplet.id, name }, 'droplet created');
        const node = toNodeDroplet(droplet);
        if (node) listing.byIndex.set(index, node);
      } catch (err) {
        if (!(err instanceof DigitalOceanError) || !err.transient || attempt >= 4) throw err;
        // The create may have happened even though its answer was lost: look before trying again.
        client.logger.warn({ uid: spec.uid, index, err: err.message }, 'droplet create failed; listing before retrying');
        await client.sleep(Math.max(50, Math.round(client.random() * client.backoff.baseMs * 2 ** attempt)));
        listing = groupByIndex(await listDropletsByTag(client, ownerTag), spec.uid);
      }
    }
  }
  const nodes: NodeDroplet[] = [];
  const surplus = [...listing.extra];
  for (const [index, node] of listing.byIndex) {
    if (index < spec.count) nodes[index] = node;
    else surplus.push(node);
  }
  return { nodes, created, surplus };
}

/** Waits until every listed droplet of `uid` is `active`, with one list request per poll and a
 * growing interval (no busy polling). Returns the nodes, re-read. */
export function waitForActive(
  client: DigitalOceanClient, uid: string, ids: readonly number[], wait: WaitSettings = DEFAULT_WAIT,
): Promise<NodeDroplet[]> {
  return poll(`droplets ${ids.join(', ')} of ${uid} to become active`, async () => {
    const { byIndex } = groupByIndex(await listDropletsByTag(client, uidTag(uid)), uid);
    const nodes = [...byIndex.values()].filter((n) => ids.includes(n.id));
    const missing = ids.filter((id) => !nodes.some((n) => n.id === id));
    if (missing.length > 0) {
      throw new DigitalOceanError('terminal',
        `droplets ${missing.join(', ')} of ${uid} disappeared while waiting for them to become active`, {
        method: 'GET', path: '/droplets',
      });
    }
    return nodes.every((n) => n.status === 'active') ? nodes.sort((a, b) => a.index - b.index) : undefined;
  }, wait, client.sleep, { method: 'GET', path: '/droplets' });
}

/** Deletes a droplet; one that is already gone counts as deleted. */
export async function deleteDroplet(client: DigitalOceanClient, id: number): Promise<void> {
  try {
    await client.dots.droplet.deleteDroplet({ droplet_id: id });
    client.logger.info({ id }, 'droplet deleted');
  } catch (err) {
    if (err instanceof DigitalOceanError && err.status === 404) return;
    throw err;
  }
}

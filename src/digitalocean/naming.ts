// How halb names and tags what it creates on DigitalOcean. Droplets carry three tags:
//   halb               common to every halb droplet: one paginated list finds all of them
//   halb-uid-<uid>     the owning HALoadBalancer's metadata.uid: which object a droplet belongs to
//   halb-node-<i>      the node index (0-based): which node of that object it is
// Tags may hold letters, digits, ':', '-' and '_' (a Kubernetes UID is hex and dashes), so the
// UID goes in whole. Droplet names are <metadata.name>-<index>; names are for people, tags are
// what halb matches on. A backend firewall (restrictToLoadBalancers) is named
// halb-<uid>-<backend name>; firewalls cannot be tagged, so the name is the ownership record.

//   halb-hostkey-<hex>  the SHA256 of the SSH host key the operator made for the droplet and
//                      delivered in its user_data: set in the create request, so the pin
//                      exists exactly when the droplet does (no crash window before a status write)
export const COMMON_TAG = 'halb';
const HOST_KEY_PREFIX = 'halb-hostkey-';
const UID_PREFIX = 'halb-uid-';
const NODE_PREFIX = 'halb-node-';
const TAG_PATTERN = /^[a-zA-Z0-9_\-:]+$/;

export function uidTag(uid: string): string {
  const tag = `${UID_PREFIX}${uid}`;
  if (uid === '' || !TAG_PATTERN.test(tag) || tag.length > 255) {
    throw new Error(`metadata.uid "${uid}" cannot be put in a DigitalOcean tag`);
  }
  return tag;
}

export function nodeTag(index: number): string {
  if (!Number.isInteger(index) || index < 0) throw new Error(`node index must be a non-negative integer, got ${index}`);
  return `${NODE_PREFIX}${index}`;
}

// Node names are the API's rule; one definition serves the operator, the renderer and this.
export { nodeName } from '../api/derived.ts';

/** The owning UID and node index a droplet's tags record; undefined if it is not a halb node. */
export function parseNodeTags(tags: readonly string[]): { uid: string; index: number } | undefined {
  if (!tags.includes(COMMON_TAG)) return undefined;
  const uids = tags.filter((t) => t.startsWith(UID_PREFIX));
  const indexes = tags.filter((t) => t.startsWith(NODE_PREFIX)).map((t) => t.slice(NODE_PREFIX.length));
  if (uids.length !== 1 || indexes.length !== 1 || !/^\d+$/.test(indexes[0]!)) return undefined;
  return { uid: uids[0]!.slice(UID_PREFIX.length), index: Number(indexes[0]) };
}

export function dropletTags(uid: string, index: number, extra: readonly string[] = [], hostKeyFingerprint?: string): string[] {
  for (const t of extra) {
    if (!TAG_PATTERN.test(t) || t.length > 255) {
      throw new Error(`spec.droplets.tags: "${t}" is not a valid DigitalOcean tag (letters, digits, ':', '-', '_')`);
    }
    if (t === COMMON_TAG || t.startsWith(UID_PREFIX) || t.startsWith(NODE_PREFIX) || t.startsWith(HOST_KEY_PREFIX)) {
      throw new Error(`spec.droplets.tags: "${t}" is reserved for halb's own tags`);
    }
  }
  return [...new Set([COMMON_TAG, uidTag(uid), nodeTag(index), ...(hostKeyFingerprint ? [hostKeyTag(hostKeyFingerprint)] : []), ...extra])];
}

/** `SHA256:base64` → `halb-hostkey-<hex>`: tags take no '+', '/' or '='. */
export function hostKeyTag(fingerprint: string): string {
  const digest = Buffer.from(fingerprint.replace(/^SHA256:/, ''), 'base64');
  if (!fingerprint.startsWith('SHA256:') || digest.length !== 32) {
    throw new Error(`host key fingerprint "${fingerprint}" is not an OpenSSH SHA256 fingerprint`);
  }
  return `${HOST_KEY_PREFIX}${digest.toString('hex')}`;
}

/** The host key fingerprint (`SHA256:base64`) a droplet's tags pin, if exactly one does. */
export function parseHostKeyTag(tags: readonly string[]): string | undefined {
  const pins = tags.filter((t) => t.startsWith(HOST_KEY_PREFIX)).map((t) => t.slice(HOST_KEY_PREFIX.length));
  if (pins.length !== 1 || !/^[0-9a-f]{64}$/.test(pins[0]!)) return undefined;
  return `SHA256:${Buffer.from(pins[0]!, 'hex').toString('base64').replace(/=+$/, '')}`;
}

export function backendFirewallName(uid: string, backend: string): string {
  return `halb-${uid}-${backend}`;
}

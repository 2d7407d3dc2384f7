// Droplet metadata documents, as 169.254.169.254 serves them inside a droplet: plain text per
// path, index paths listing their children, `/metadata/v1.json` as one document. An index path
// without its trailing slash gets 301, an unknown path 404 (metadata API v0.1.9).
import type { DropletView } from './state.ts';

export interface MetadataInput {
  droplet: DropletView;
  reservedIPv4?: string;
  /** DigitalOcean's announced maintenance (live_migrate), '' when none. */
  maintenanceEvent?: string;
  /** Netmask and gateway of the public, anchor and private networks. */
  publicNet: { netmask: string; gateway: string };
  anchorNet: { netmask: string; gateway: string };
  privateNet: { netmask: string; gateway: string };
}

export interface MetadataResponse {
  status: number;
  contentType: string;
  body: string;
  location?: string;
}

type Tree = { [name: string]: Tree | string };

function mac(id: number, iface: number): string {
  const hex = (id * 4 + iface).toString(16).padStart(8, '0').slice(-8);
  return `aa:${hex.match(/../g)!.join(':')}:0${iface}`;
}

export function metadataJson(input: MetadataInput): Record<string, unknown> {
  const d = input.droplet;
  const reserved = input.reservedIPv4 === undefined ? { active: false } : { active: true, ip_address: input.reservedIPv4 };
  return {
    droplet_id: d.id,
    hostname: d.name,
    user_data: d.userData,
    vendor_data: '',
    public_keys: d.sshPublicKeys,
    auth_key: '',
    region: d.region,
    interfaces: {
      public: [
        {
          ipv4: { ip_address: d.publicIPv4, netmask: input.publicNet.netmask, gateway: input.publicNet.gateway },
          anchor_ipv4: { ip_address: d.anchorIPv4, netmask: input.anchorNet.netmask, gateway: input.anchorNet.gateway },
          mac: mac(d.id, 0),
          type: 'public',
        },
      ],
      private: [
        {
          ipv4: { ip_address: d.privateIPv4, netmask: input.privateNet.netmask, gateway: input.privateNet.gateway },
          mac: mac(d.id, 1),
          type: 'private',
        },
      ],
    },
    floating_ip: { ipv4: reserved },
    reserved_ip: { ipv4: reserved, ipv6: { active: false } },
    dns: { nameservers: ['67.207.67.2', '67.207.67.3'] },
    tags: d.tags,
    features: { dhcp_enabled: false, vpc_peering_enabled: false },
  };
}

function tree(input: MetadataInput): Tree {
  const d = input.droplet;
  const reserved: Tree = { active: String(input.reservedIPv4 !== undefined) };
  if (input.reservedIPv4 !== undefined) reserved.ip_address = input.reservedIPv4;
  const ipv4 = (address: string, net: { netmask: string; gateway: string }): Tree =>
    ({ address, netmask: net.netmask, gateway: net.gateway });
  const tags: Tree = {};
  d.tags.forEach((t, i) => (tags[String(i)] = t));
  return {
    id: String(d.id),
    hostname: d.name,
    'user-data': d.userData,
    'vendor-data': '',
    'public-keys': d.sshPublicKeys.join('\n'),
    region: d.region,
    tags,
    interfaces: {
      public: {
        '0': {
          ipv4: ipv4(d.publicIPv4, input.publicNet), anchor_ipv4: ipv4(d.anchorIPv4, input.anchorNet), mac: mac(d.id, 0), type: 'public',
        },
      },
      private: { '0': { ipv4: ipv4(d.privateIPv4, input.privateNet), mac: mac(d.id, 1), type: 'private' } },
    },
    reserved_ip: { ipv4: reserved, ipv6: { active: 'false' } },
    floating_ip: { ipv4: reserved },
    dns: { nameservers: '67.207.67.2\n67.207.67.3' },
    features: { dhcp_enabled: 'false' },
    maintenance_event: input.maintenanceEvent ?? '',
  };
}

/** Where DigitalOcean's metadata reference puts the maintenance notice ("Get Scheduled
 *  Migrations"): `live_migrate` at least 10 minutes before a migration, else an empty answer.
 *  The sandbox also serves it as /metadata/v1/maintenance_event, beside the other keys. */
export const MAINTENANCE_EVENT_PATH = '/v1/maintenance_event';

/** Answers one metadata request path, e.g. `/metadata/v1/interfaces/public/0/anchor_ipv4/address`. */
export function metadataResponse(input: MetadataInput, path: string): MetadataResponse {
  const text = (status: number, body: string): MetadataResponse => ({ status, contentType: 'text/plain; charset=utf-8', body });
  // DigitalOcean documents the maintenance notice at /v1/maintenance_event, outside /metadata/.
  if (path === MAINTENANCE_EVENT_PATH) return text(200, input.maintenanceEvent ?? '');
  if (path === '/metadata/v1.json') {
    return { status: 200, contentType: 'application/json', body: JSON.stringify(metadataJson(input)) };
  }
  if (!path.startsWith('/metadata/v1')) return text(404, 'not found\n');
  const rest = path.slice('/metadata/v1'.length);
  const isIndex = rest === '' || rest.endsWith('/');
  const parts = rest.split('/').filter((p) => p !== '');
  let node: Tree | string = tree(input);
  for (const part of parts) {
    if (typeof node === 'string' || !(part in node)) return text(404, 'not found\n');
    node = node[part]!;
  }
  if (typeof node === 'string') return isIndex && rest !== '' ? text(404, 'not found\n') : text(200, node);
  if (!isIndex) return { status: 301, contentType: 'text/plain; charset=utf-8', body: '', location: `${path}/` };
  const lines = Object.entries(node).map(([k, v]) => (typeof v === 'string' ? k : `${k}/`));
  return text(200, lines.join('\n'));
}

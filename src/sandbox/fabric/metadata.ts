// The documents of DigitalOcean's droplet metadata service (169.254.169.254/metadata/v1/...),
// rendered as a file tree that the core namespace's nginx serves per droplet. Same paths and
// plain-text answers as DigitalOcean; each directory gets an index listing its keys.
import { ANCHOR_GATEWAY, ANCHOR_RANGE, PUBLIC_GATEWAY, PUBLIC_RANGE, VPC_RANGE, netmaskOf } from './addresses.ts';

/** What a droplet's metadata says, beyond its addresses. */
export interface DropletMetadata {
  hostname?: string;
  region?: string;
  userData?: string;
  vendorData?: string;
  publicKeys?: string[];
  tags?: string[];
  nameservers?: string[];
  /** DigitalOcean's announced maintenance (live_migrate); empty or unset when none. */
  maintenanceEvent?: string;
}

export interface MetadataInput {
  id: number;
  name: string;
  publicIPv4: string;
  anchorIPv4: string;
  privateIPv4: string;
  /** The floating IP this droplet holds now, if any. */
  floatingIPv4?: string | null;
  metadata?: DropletMetadata;
}

/** Deterministic locally administered MAC for an address (the value only needs to look real). */
export function macFor(ip: string, iface: 0 | 1): string {
  const octets = ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0'));
  return [iface === 0 ? '02' : '06', '00', ...octets].join(':');
}

/**
 * path (relative, no leading slash, e.g. `metadata/v1/id`) -> file content.
 * Directory indexes are under the key `<dir>/` (e.g. `metadata/v1/`).
 */
export function renderMetadataTree(input: MetadataInput): Map<string, string> {
  const md = input.metadata ?? {};
  const fip = input.floatingIPv4 ?? null;
  const publicNetmask = netmaskOf(PUBLIC_RANGE);
  const leaves: Record<string, string> = {
    id: String(input.id),
    hostname: md.hostname ?? input.name,
    region: md.region ?? 'nyc1',
    'user-data': md.userData ?? '',
    'vendor-data': md.vendorData ?? '',
    'public-keys': (md.publicKeys ?? []).join('\n'),
    'dns/nameservers': (md.nameservers ?? []).join('\n'),
    'features/dhcp_enabled': 'false',
    maintenance_event: md.maintenanceEvent ?? '',
    'interfaces/public/0/mac': macFor(input.publicIPv4, 0),
    'interfaces/public/0/type': 'public',
    'interfaces/public/0/ipv4/address': input.publicIPv4,
    'interfaces/public/0/ipv4/netmask': publicNetmask,
    'interfaces/public/0/ipv4/gateway': PUBLIC_GATEWAY,
    'interfaces/public/0/anchor_ipv4/address': input.anchorIPv4,
    'interfaces/public/0/anchor_ipv4/netmask': netmaskOf(ANCHOR_RANGE),
    'interfaces/public/0/anchor_ipv4/gateway': ANCHOR_GATEWAY,
    'interfaces/private/0/mac': macFor(input.privateIPv4, 1),
    'interfaces/private/0/type': 'private',
    'interfaces/private/0/ipv4/address': input.privateIPv4,
    'interfaces/private/0/ipv4/netmask': netmaskOf(VPC_RANGE),
    'interfaces/private/0/ipv4/gateway': '',
    'reserved_ip/ipv4/active': String(fip !== null),
    'floating_ip/ipv4/active': String(fip !== null),
  };
  if (fip !== null) {
    leaves['reserved_ip/ipv4/ip_address'] = fip;
    leaves['floating_ip/ipv4/ip_address'] = fip;
  }
  const tags = md.tags ?? [];
  const files = new Map<string, string>();
  for (const [key, value] of Object.entries(leaves)) files.set(`metadata/v1/${key}`, value);

  const json = {
    droplet_id: input.id,
    hostname: leaves.hostname,
    user_data: leaves['user-data'],
    vendor_data: leaves['vendor-data'],
    public_keys: md.publicKeys ?? [],
    auth_key: '',
    region: leaves.region,
    interfaces: {
      public: [
        {
          ipv4: { ip_address: input.publicIPv4, netmask: publicNetmask, gateway: PUBLIC_GATEWAY },
          anchor_ipv4: { ip_address: input.anchorIPv4, netmask: netmaskOf(ANCHOR_RANGE), gateway: ANCHOR_GATEWAY },
          mac: leaves['interfaces/public/0/mac'],
          type: 'public',
        },
      ],
      private: [
        {
          ipv4: { ip_address: input.privateIPv4, netmask: netmaskOf(VPC_RANGE), gateway: '' },
          mac: leaves['interfaces/private/0/mac'],
          type: 'private',
        },
      ],
    },
    floating_ip: { ipv4: fip === null ? { active: false } : { active: true, ip_address: fip } },
    reserved_ip: { ipv4: fip === null ? { active: false } : { active: true, ip_address: fip } },
    dns: { nameservers: md.nameservers ?? [] },
    tags,
    features: { dhcp_enabled: false },
  };
  files.set('metadata/v1.json', `${JSON.stringify(json)}\n`);

  // Directory indexes: each lists its direct children, directories with a trailing slash;
  // `tags/` lists the tag names, as DigitalOcean does.
  const dirs = new Map<string, Set<string>>();
  const addChild = (dir: string, child: string) => {
    if (!dirs.has(dir)) dirs.set(dir, new Set());
    dirs.get(dir)!.add(child);
  };
  for (const key of [...Object.keys(leaves), ...tags.map((t) => `tags/${t}`)]) {
    const parts = key.split('/');
    for (let i = 0; i < parts.length; i++) {
      const dir = ['metadata', 'v1', ...parts.slice(0, i)].join('/');
      addChild(dir, i === parts.length - 1 ? parts[i]! : `${parts[i]}/`);
    }
  }
  if (tags.length === 0) addChild('metadata/v1', 'tags/');
  dirs.set('metadata/v1/tags', dirs.get('metadata/v1/tags') ?? new Set());
  for (const [dir, children] of [...dirs].sort(([a], [b]) => a.localeCompare(b))) {
    files.set(`${dir}/`, [...children].join('\n'));
  }
  files.set('metadata/', 'v1.json\nv1/');
  // DigitalOcean documents the maintenance notice at /v1/maintenance_event (outside /metadata/).
  files.set('v1/maintenance_event', leaves.maintenance_event!);
  return files;
}

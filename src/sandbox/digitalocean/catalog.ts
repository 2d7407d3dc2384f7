// The regions, sizes and images the simulator knows. Slugs and figures follow DigitalOcean's
// catalogue; only what droplet objects need.

export interface SimRegion {
  slug: string;
  name: string;
}

export interface SimSize {
  slug: string;
  memory: number;
  vcpus: number;
  disk: number;
  transfer: number;
  price_monthly: number;
  description: string;
}

export interface SimImage {
  id: number;
  slug: string;
  name: string;
  distribution: string;
}

export const REGIONS: readonly SimRegion[] = [
  { slug: 'nyc1', name: 'New York 1' },
  { slug: 'nyc3', name: 'New York 3' },
  { slug: 'sfo3', name: 'San Francisco 3' },
  { slug: 'ams3', name: 'Amsterdam 3' },
  { slug: 'fra1', name: 'Frankfurt 1' },
  { slug: 'lon1', name: 'London 1' },
  { slug: 'sgp1', name: 'Singapore 1' },
  { slug: 'tor1', name: 'Toronto 1' },
  { slug: 'blr1', name: 'Bangalore 1' },
  { slug: 'syd1', name: 'Sydney 1' },
];

export const SIZES: readonly SimSize[] = [
  { slug: 's-1vcpu-512mb-10gb', memory: 512, vcpus: 1, disk: 10, transfer: 0.5, price_monthly: 4, description: 'Basic' },
  { slug: 's-1vcpu-1gb', memory: 1024, vcpus: 1, disk: 25, transfer: 1, price_monthly: 6, description: 'Basic' },
  { slug: 's-1vcpu-2gb', memory: 2048, vcpus: 1, disk: 50, transfer: 2, price_monthly: 12, description: 'Basic' },
  { slug: 's-2vcpu-2gb', memory: 2048, vcpus: 2, disk: 60, transfer: 3, price_monthly: 18, description: 'Basic' },
  { slug: 's-2vcpu-4gb', memory: 4096, vcpus: 2, disk: 80, transfer: 4, price_monthly: 24, description: 'Basic' },
  { slug: 's-4vcpu-8gb', memory: 8192, vcpus: 4, disk: 160, transfer: 5, price_monthly: 48, description: 'Basic' },
  { slug: 'c-2', memory: 4096, vcpus: 2, disk: 25, transfer: 4, price_monthly: 42, description: 'CPU-Optimized' },
];

export const IMAGES: readonly SimImage[] = [
  { id: 170000101, slug: 'ubuntu-24-04-x64', name: '24.04 (LTS) x64', distribution: 'Ubuntu' },
  { id: 170000102, slug: 'ubuntu-22-04-x64', name: '22.04 (LTS) x64', distribution: 'Ubuntu' },
  { id: 170000103, slug: 'debian-12-x64', name: '12 x64', distribution: 'Debian' },
  // In the sandbox this one boots a real Debian 13 tree with its own systemd and cloud-init; the
  // others run this machine's binaries (see src/sandbox/fabric/images.ts).
  { id: 170000104, slug: 'debian-13-x64', name: '13 x64', distribution: 'Debian' },
];

export function regionObject(slug: string): Record<string, unknown> {
  const region = REGIONS.find((r) => r.slug === slug);
  return {
    name: region?.name ?? slug,
    slug,
    features: ['private_networking', 'backups', 'ipv6', 'metadata', 'install_agent', 'storage', 'image_transfer'],
    available: true,
    sizes: SIZES.map((s) => s.slug),
  };
}

export function sizeObject(size: SimSize): Record<string, unknown> {
  return {
    slug: size.slug,
    memory: size.memory,
    vcpus: size.vcpus,
    disk: size.disk,
    transfer: size.transfer,
    price_monthly: size.price_monthly,
    price_hourly: Math.round((size.price_monthly / 672) * 1e6) / 1e6,
    regions: REGIONS.map((r) => r.slug),
    available: true,
    description: size.description,
  };
}

export function imageObject(image: SimImage): Record<string, unknown> {
  return {
    id: image.id,
    name: image.name,
    distribution: image.distribution,
    slug: image.slug,
    public: true,
    regions: REGIONS.map((r) => r.slug),
    created_at: '2026-04-25T00:00:00Z',
    type: 'base',
    min_disk_size: 7,
    size_gigabytes: 2.5,
    description: `${image.distribution} ${image.name}`,
    tags: [],
    status: 'available',
    error_message: '',
  };
}

// The droplet images of the sandbox. `ubuntu-24-04-x64` (and every other slug) runs this machine's
// own binaries under per-droplet overlays of /etc and /var; `debian-13-x64` is a Debian 13 root
// filesystem built with debootstrap from Debian's mirror, booted with its own systemd as PID 1
// (systemd-nspawn) and its own cloud-init. The root filesystem is built once and cached outside
// the repository; each droplet boots an overlay of it, so droplets share nothing they write.
//
// The build downloads, so it must run before a sandbox routes 203.0.113.0/24 (this machine's
// package mirror may resolve there): `halb sandbox image` builds it ahead, and `halb sandbox up`
// builds it before it adds its routes.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { HOST_ROUTED_RANGES, routesOverlapping } from './addresses.ts';
import { run } from './system.ts';

export type ImageKind = 'host' | 'rootfs';

/** The image a droplet made with this slug boots. */
export function imageKind(slug: string | undefined): ImageKind {
  return slug === DEBIAN_13.slug ? 'rootfs' : 'host';
}

export interface RootfsImage {
  slug: string;
  suite: string;
  mirror: string;
  /** Bumped whenever the recipe below changes, so a cached image of an older recipe is rebuilt. */
  recipe: number;
  packages: readonly string[];
}

export const DEBIAN_13: RootfsImage = {
  slug: 'debian-13-x64',
  suite: 'trixie',
  mirror: 'http://deb.debian.org/debian',
  recipe: 1,
  // What a DigitalOcean Debian 13 droplet runs halb with, plus what booting it needs.
  packages: [
    'systemd', 'systemd-sysv', 'dbus', 'cloud-init', 'haproxy', 'keepalived', 'openssh-server', 'openssh-client',
    'nftables', 'curl', 'netbase', 'iproute2', 'procps', 'psmisc', 'ca-certificates',
    // debootstrap does not resolve virtual packages: python3-cryptography (for cloud-init) needs
    // python3-cffi-backend-api-min/max, which this one provides.
    'python3-cffi-backend',
  ],
};

/** `HALB_IMAGE_CACHE`, else ~/.cache/halb-images. */
export function imageCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.HALB_IMAGE_CACHE || join(homedir(), '.cache', 'halb-images');
}

function imageDir(image: RootfsImage, cache: string): string {
  return join(cache, `${image.slug}-r${image.recipe}`);
}

/** The cached root filesystem of an image, or undefined when it is not built yet. */
export function cachedRootfs(image: RootfsImage = DEBIAN_13, cache = imageCacheDir()): string | undefined {
  const rootfs = join(imageDir(image, cache), 'rootfs');
  return existsSync(join(rootfs, READY_MARKER)) ? rootfs : undefined;
}

const READY_MARKER = 'etc/halb-sandbox-image';

/** Marker the image's boot writes, inside the droplet's /run, once ssh.service runs. */
export const ROOTFS_BOOTED_MARKER = '/run/halb-droplet-booted';

/**
 * Files laid over the debootstrapped tree. They make the image what a cloud image is (cloud-init
 * with a datasource, host keys made per droplet) and what the sandbox needs (no mirror at boot).
 */
export function imageFiles(): Record<string, string> {
  return {
    // Packages come from the image: a boot-time `apt-get update` fetches nothing, and installing
    // a package the image has is a no-op.
    'etc/apt/sources.list': '# halb sandbox image: packages come from the image, nothing is fetched at boot.\n',
    // DigitalOcean's datasource identifies droplets by DMI, which a container lacks; the sandbox
    // seeds NoCloud with the droplet's own user_data and meta-data instead.
    'etc/cloud/cloud.cfg.d/90-halb-sandbox.cfg': [
      '# halb sandbox: the NoCloud seed in /var/lib/cloud/seed/nocloud holds the droplet\'s user_data.',
      'datasource_list: [ NoCloud, None ]',
      // The fabric wires the droplet's interfaces before boot, as DigitalOcean's network does.
      'network: {config: disabled}',
      // As on DigitalOcean's images: the account's SSH keys log in as root.
      'disable_root: false',
      'apt:',
      '  preserve_sources_list: true',
      '',
    ].join('\n'),
    // Tells the fabric that sshd runs (what its other image marks after starting sshd).
    'etc/systemd/system/halb-sandbox-booted.service': [
      '[Unit]',
      'Description=halb sandbox: mark the droplet booted once sshd runs',
      'After=ssh.service',
      'Wants=ssh.service',
      '',
      '[Service]',
      'Type=oneshot',
      `ExecStart=/usr/bin/touch ${ROOTFS_BOOTED_MARKER}`,
      'RemainAfterExit=yes',
      '',
      '[Install]',
      'WantedBy=multi-user.target',
      '',
    ].join('\n'),
    'etc/systemd/system/multi-user.target.wants/halb-sandbox-booted.service': '',
  };
}

/** Refuses to download while a sandbox routes its ranges through this machine. */
async function checkNoSandboxRoutes(): Promise<void> {
  const { readHostRoutes } = await import('./fabric.ts');
  const routes = await readHostRoutes();
  for (const range of HOST_ROUTED_RANGES) {
    if (routesOverlapping(routes, range).length > 0) {
      throw new Error(`cannot build the ${DEBIAN_13.slug} image while ${range} is routed into a sandbox ` +
        '(the package mirror may resolve there): ' +
        'run `halb sandbox image` before `halb sandbox up`, or take the sandbox down first');
    }
  }
}

/**
 * Builds the image's root filesystem unless it is cached, and returns its path. Downloading is
 * one step (`debootstrap --make-tarball`, kept in the cache), unpacking and configuring another,
 * so a failed configuration never downloads again.
 */
export async function ensureRootfs(opts: { image?: RootfsImage; cache?: string; log: Logger }): Promise<string> {
  const image = opts.image ?? DEBIAN_13;
  const cache = opts.cache ?? imageCacheDir();
  const cached = cachedRootfs(image, cache);
  if (cached) return cached;
  const dir = imageDir(image, cache);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const tarball = join(dir, 'debs.tgz');
  const common = ['--variant=minbase', '--arch=amd64', `--include=${image.packages.join(',')}`];
  if (!existsSync(tarball)) {
    await checkNoSandboxRoutes();
    opts.log.info({ image: image.slug, mirror: image.mirror }, 'downloading the image packages (debootstrap, a few minutes)');
    const started = Date.now();
    const partial = join(dir, 'download');
    rmSync(partial, { recursive: true, force: true });
    await run('debootstrap', [...common, `--make-tarball=${tarball}.tmp`, image.suite, partial, image.mirror], { timeoutMs: 30 * 60_000 });
    renameSync(`${tarball}.tmp`, tarball);
    rmSync(partial, { recursive: true, force: true });
    opts.log.info({ image: image.slug, seconds: Math.round((Date.now() - started) / 1000) }, 'downloaded the image packages');
  }
  const started = Date.now();
  const building = join(dir, 'rootfs.new');
  rmSync(building, { recursive: true, force: true });
  await run('debootstrap', [...common, `--unpack-tarball=${tarball}`, image.suite, building, image.mirror], { timeoutMs: 30 * 60_000 });
  // Host keys are made per droplet at its first boot (cloud-init), never shared through the image.
  for (const entry of readdirSync(join(building, 'etc/ssh'))) {
    if (/^ssh_host_.*key(\.pub)?$/.test(entry)) rmSync(join(building, 'etc/ssh', entry));
  }
  // Each droplet gets its own machine id at first boot.
  writeFileSync(join(building, 'etc/machine-id'), '');
  for (const [path, content] of Object.entries(imageFiles())) {
    const target = join(building, path);
    mkdirSync(join(target, '..'), { recursive: true });
    if (path.includes('.wants/')) {
      rmSync(target, { force: true });
      await run('ln', ['-s', `/${path.replace(/multi-user\.target\.wants\//, '')}`, target]);
    } else {
      writeFileSync(target, content);
    }
  }
  writeFileSync(join(building, READY_MARKER), `${image.slug} recipe ${image.recipe}, built ${new Date().toISOString()}\n`);
  const rootfs = join(dir, 'rootfs');
  rmSync(rootfs, { recursive: true, force: true });
  renameSync(building, rootfs);
  opts.log.info({ image: image.slug, rootfs, seconds: Math.round((Date.now() - started) / 1000) }, 'built the image');
  return rootfs;
}

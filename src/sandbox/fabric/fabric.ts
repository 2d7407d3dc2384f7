// The sandbox data plane: a core namespace (public and VPC bridges, floating-IP DNAT, metadata
// service), droplets as network+PID+mount+UTS namespaces running the real sshd, nginx backends,
// the client namespace, and one veth from the machine's namespace. See
// docs/design/sandbox.md for the contract this implements.
import { spawn } from 'node:child_process';
import {
  existsSync, mkdirSync, openSync, closeSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync, chmodSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { pino, type Logger } from 'pino';
import {
  ANCHOR_GATEWAY, ANCHOR_RANGE, CLIENT_IPV4, HOST_LINK_CANDIDATES, HOST_ROUTED_RANGES, METADATA_IPV4, OPERATOR_EGRESS_IPV4, PUBLIC_GATEWAY,
  PUBLIC_RANGE, VPC_RANGE, chooseFreeSubnet, hostLinkAddresses, inRange, namespaceName, nftTableName, parseCidr,
  parseIPv4, prefixForStateDir, routesOverlapping, validateHostName, validatePrefix, type RouteEntry,
} from './addresses.ts';
import { macFor, renderMetadataTree, type DropletMetadata } from './metadata.ts';
import {
  BOOTED_MARKER, renderBackendNginx, renderCoreRuleset, renderDropletInit, renderFloatingMapBatch,
  renderFloatingMapCommands, renderMetadataNginx, renderNoCloudMetaData, renderRootfsInit, renderSshdConfig, renderWebSite,
  validateFloatingAssignment,
} from './render.ts';
import { NftSession, NftSessionError } from './nft-session.ts';
import { firstBootFromUserData } from './cloud-config.ts';
import { cachedRootfs, imageKind } from './images.ts';
import { emptyState, fabricDir, readState, writeState, type BackendRecord, type DropletRecord, type FabricState } from './state.ts';
import { run, runStatus, type RunResult } from './system.ts';

export interface CreateFabricOptions {
  /** Where all state lives; the fabric uses its `fabric/` subfolder. */
  stateDir: string;
  /** Namespace prefix; defaults to the one derived from stateDir (`halb` for the default folder). */
  prefix?: string;
  /** Link the machine's namespace to the core (routes for the public and floating ranges). Default true. */
  hostLink?: boolean;
  /** Default boot delay of droplets, in milliseconds (0 unless given). */
  bootDelayMs?: number;
  logger?: Logger;
}

export interface AddDropletOptions {
  name: string;
  id: number;
  publicIPv4: string;
  anchorIPv4: string;
  privateIPv4: string;
  /** OpenSSH public key lines, written to root's authorized_keys. */
  sshPublicKeys: string[];
  metadata?: DropletMetadata;
  role?: 'loadbalancer' | 'backend';
  bootDelayMs?: number;
  /** Also run nginx answering the droplet's name on port 80, as the sandbox's web backends do. */
  webServer?: boolean;
  /** DigitalOcean image slug: `debian-13-x64` boots the Debian 13 image (see images.ts). */
  image?: string;
}

export interface AddBackendOptions {
  /** Also the answer of the backend's nginx, and part of its namespace name (`<prefix>-<name>`). */
  name: string;
  privateIPv4: string;
}

export interface HostStatus {
  name: string;
  namespace: string;
  role: 'loadbalancer' | 'backend' | 'client';
  publicIPv4: string | null;
  privateIPv4: string | null;
  anchorIPv4: string | null;
  /** DigitalOcean droplet id, for droplets. */
  id?: number;
  /** Whether the host's processes are alive (a droplet that was stopped is not). */
  running: boolean;
  /** Whether a droplet's sshd has started (boot delay over). */
  booted?: boolean;
  hostKey?: string;
  /** The DigitalOcean image slug a droplet was made with. */
  image?: string;
}

export interface FabricStatus {
  prefix: string;
  stateDir: string;
  coreNamespace: string;
  hostLink: { interface: string; subnet: string; hostIPv4: string; coreIPv4: string; routes: string[] } | null;
  floatingIPs: Record<string, string>;
  hosts: HostStatus[];
}

const SWEEP_WAIT_MS = 10_000;
/** Only seeds the VPC bridge's MAC; no host has this address. */
const VPC_BRIDGE_MAC_SEED = '10.10.0.1';

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function pidAlive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    // A zombie still answers kill(0); its /proc stat says Z.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Children of `ppid`, found by scanning /proc (this kernel has no /proc/<pid>/task/<tid>/children). */
function childrenOf(ppid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === ppid) out.push(Number(entry));
    } catch {
      // exited while we looked
    }
  }
  return out;
}

export async function listNamespaces(): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list']);
  return stdout.split('\n').map((l) => l.trim().split(' ')[0] ?? '').filter(Boolean);
}

export async function namespacePids(ns: string): Promise<number[]> {
  const r = await runStatus('ip', ['netns', 'pids', ns]);
  if (r.code !== 0) return [];
  return r.stdout.split('\n').map((l) => Number(l.trim())).filter((n) => Number.isInteger(n) && n > 0);
}

/** Whether a pid is gone for good: no /proc entry, or a zombie (its namespaces already released). */
function pidGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return true;
  }
}

/**
 * SIGKILLs every process in a network namespace and waits until each has finished exiting. An
 * exiting process leaves the namespace's pid list before it is done (its mounts, such as a
 * droplet's overlays, are released later), so the pids seen are waited for one by one.
 */
async function killNamespaceProcesses(ns: string, extraPids: readonly number[] = []): Promise<void> {
  const deadline = Date.now() + SWEEP_WAIT_MS;
  const seen = new Set<number>(extraPids);
  for (;;) {
    const pids = await namespacePids(ns);
    for (const pid of pids) seen.add(pid);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    const left = [...seen].filter((pid) => !pidGone(pid));
    if (pids.length === 0 && left.length === 0) return;
    for (const pid of left) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (Date.now() > deadline) {
      throw new Error(`namespace ${ns}: processes ${[...new Set([...pids, ...left])].join(', ')} survived SIGKILL`);
    }
    await sleep(25);
  }
}

async function deleteNamespace(ns: string): Promise<void> {
  await killNamespaceProcesses(ns);
  const r = await runStatus('ip', ['netns', 'del', ns]);
  if (r.code !== 0 && !/No such file|not found/i.test(r.stderr)) throw new Error(`ip netns del ${ns} failed: ${r.stderr.trim()}`);
}

async function linkExists(ifname: string, ns?: string): Promise<boolean> {
  const args = ns ? ['-n', ns, 'link', 'show', ifname] : ['link', 'show', ifname];
  return (await runStatus('ip', args)).code === 0;
}

/** Routes of every table of the machine's namespace, plus its addresses' subnets. */
export async function readHostRoutes(): Promise<RouteEntry[]> {
  const routes = JSON.parse((await run('ip', ['-4', '-j', 'route', 'show', 'table', 'all'])).stdout) as RouteEntry[];
  const addrs = JSON.parse((await run('ip', ['-4', '-j', 'addr', 'show'])).stdout) as
    Array<{ ifname: string; addr_info?: Array<{ local: string; prefixlen: number }> }>;
  for (const link of addrs) {
    for (const a of link.addr_info ?? []) routes.push({ dst: `${a.local}/${a.prefixlen}`, dev: link.ifname, table: 'address' });
  }
  // The local table lists the machine's own addresses and broadcasts; loopback's 127/8 is there too.
  return routes.filter((r) => r.dst !== undefined);
}

/** Decides the machine-side link: refuses if a sandbox range is routed already, picks a free /30. */
export function planHostLink(
  routes: readonly RouteEntry[], prefix: string,
): { ifname: string; subnet: string; hostIPv4: string; coreIPv4: string } {
  for (const range of HOST_ROUTED_RANGES) {
    const clash = routesOverlapping(routes, range);
    if (clash.length > 0) {
      const what = clash
        .map((r) => `${r.dst}${r.dev ? ` dev ${r.dev}` : ''}${r.table && r.table !== 'main' ? ` (${r.table})` : ''}`)
        .join('; ');
      throw new Error(`cannot route ${range} into the sandbox: the machine's namespace already routes it (${what}). ` +
        'Is another sandbox up? Run its down first.');
    }
  }
  const subnet = chooseFreeSubnet(routes, HOST_LINK_CANDIDATES);
  if (subnet === undefined) {
    const [first, last] = [HOST_LINK_CANDIDATES[0], HOST_LINK_CANDIDATES.at(-1)];
    throw new Error(`no free /30 for the host link among ${first}..${last}: all are routed already`);
  }
  const { host, core } = hostLinkAddresses(subnet);
  return { ifname: `${prefix}-up`, subnet, hostIPv4: host, coreIPv4: core };
}

function checkStateDirLocation(stateDir: string): void {
  const abs = resolve(stateDir);
  if (/["'\\\n$;{}]/.test(abs)) {
    throw new Error(`stateDir: ${JSON.stringify(abs)} contains quotes, backslashes, newlines, $, ; or braces, ` +
      'which the generated configs cannot carry');
  }
  for (const masked of ['/etc', '/var', '/run', '/proc', '/sys', '/dev']) {
    if (abs === masked || abs.startsWith(`${masked}/`)) {
      throw new Error(`stateDir: ${abs} is under ${masked}, which every droplet replaces with its own; choose another folder`);
    }
  }
}

/** Removes everything a fabric recorded in stateDir, plus any `<prefix>-*` namespace; safe to repeat. */
export async function destroyFabric(opts: { stateDir: string; prefix?: string; logger?: Logger }): Promise<void> {
  const log = opts.logger ?? pino({ name: 'fabric' });
  let state: FabricState | undefined;
  try {
    state = readState(opts.stateDir);
  } catch (e) {
    log.warn({ err: (e as Error).message }, 'ignored an unreadable fabric state file');
  }
  const prefix = validatePrefix(state?.prefix ?? opts.prefix ?? prefixForStateDir(opts.stateDir));
  const core = namespaceName(prefix, 'core');
  const hostIf = state?.hostLink?.ifname ?? `${prefix}-up`;
  const removed = new Set<string>();
  // A second pass catches what a crashed builder's last command (still running) made meanwhile.
  for (let pass = 0; pass < 3; pass++) {
    const existing = await listNamespaces();
    const names = new Set([...(state?.namespaces ?? []), ...existing.filter((n) => n.startsWith(`${prefix}-`))]);
    // Droplets first so their processes die before the core that links them goes.
    const ordered = [...names].filter((n) => n !== core && existing.includes(n));
    if (existing.includes(core)) ordered.push(core);
    const linked = await linkExists(hostIf);
    if (ordered.length === 0 && !linked) break;
    if (linked) await runStatus('ip', ['link', 'del', hostIf]);
    for (const ns of ordered) {
      await deleteNamespace(ns);
      removed.add(ns);
    }
    await sleep(100);
  }
  rmSync(fabricDir(opts.stateDir), { recursive: true, force: true });
  log.info({ prefix, namespaces: [...removed] }, 'destroyed the fabric');
}

/** The fabric recorded in stateDir, or undefined when there is none. */
export function openFabric(opts: { stateDir: string; logger?: Logger }): Fabric | undefined {
  const state = readState(opts.stateDir);
  if (!state) return undefined;
  return new Fabric(resolve(opts.stateDir), state, opts.logger ?? pino({ name: 'fabric' }), 0);
}

/**
 * Creates the core, the client namespace and (by default) the machine's link. Running it again on
 * a fabric that is up returns that fabric; a half-made one is removed and made again.
 */
export async function createFabric(opts: CreateFabricOptions): Promise<Fabric> {
  const log = opts.logger ?? pino({ name: 'fabric' });
  const stateDir = resolve(opts.stateDir);
  checkStateDirLocation(stateDir);
  const prefix = validatePrefix(opts.prefix ?? prefixForStateDir(stateDir));
  const previous = readState(stateDir);
  if (previous) {
    if (previous.prefix !== prefix) {
      throw new Error(`stateDir: ${stateDir} holds a fabric with prefix "${previous.prefix}", not "${prefix}"`);
    }
    const namespaces = await listNamespaces();
    if (previous.coreReady && namespaces.includes(namespaceName(prefix, 'core'))) {
      log.info({ prefix }, 'found the fabric already up');
      return new Fabric(stateDir, previous, log, opts.bootDelayMs ?? 0);
    }
    log.warn({ prefix }, 'removing a half-made fabric before making it again');
    await destroyFabric({ stateDir, prefix, logger: log });
  }
  // Another sandbox with the same prefix (say, the default folder of another directory) must not
  // be touched: refuse before making anything, so the cleanup below never sweeps its namespaces.
  const foreign = (await listNamespaces()).filter((n) => n.startsWith(`${prefix}-`));
  if (foreign.length > 0) {
    throw new Error(`prefix: namespaces ${foreign.join(', ')} exist but ${stateDir} does not record them; ` +
      `another sandbox uses the prefix "${prefix}" (run its down, or use another state folder)`);
  }
  const link = opts.hostLink === false ? null : planHostLink(await readHostRoutes(), prefix);
  if (readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim() !== '0') {
    log.warn('the machine forwards IPv4 (net.ipv4.ip_forward=1); ' +
      'the fabric does not need it, and the core still routes nothing out of the sandbox');
  }
  const fabric = new Fabric(stateDir, emptyState(prefix), log, opts.bootDelayMs ?? 0);
  try {
    await fabric.buildCore(link);
  } catch (e) {
    log.error({ err: (e as Error).message }, 'failed to build the fabric; removing what was made');
    await destroyFabric({ stateDir, prefix, logger: log }).catch(() => undefined);
    throw e;
  }
  return fabric;
}

export class Fabric {
  readonly stateDir: string;
  readonly prefix: string;
  private state: FabricState;
  private readonly log: Logger;
  private readonly defaultBootDelayMs: number;
  private queue: Promise<unknown> = Promise.resolve();
  /** Mutations running now (exclusive); the state is not reloaded from disk under them. */
  private mutating = 0;
  private nft: NftSession | undefined;

  constructor(stateDir: string, state: FabricState, log: Logger, defaultBootDelayMs: number) {
    this.stateDir = stateDir;
    this.state = state;
    this.prefix = state.prefix;
    this.log = log;
    this.defaultBootDelayMs = defaultBootDelayMs;
  }

  get coreNamespace(): string {
    return namespaceName(this.prefix, 'core');
  }

  get clientNamespace(): string {
    return namespaceName(this.prefix, 'client');
  }

  /** The machine-side address of the host link (where simulators can listen for droplets), if linked. */
  get hostIPv4(): string | null {
    return this.state.hostLink?.hostIPv4 ?? null;
  }

  private get dir(): string {
    return fabricDir(this.stateDir);
  }

  private save(): void {
    writeState(this.stateDir, this.state);
  }

  /**
   * Picks up changes another process (say, a CLI next to the simulator) recorded. Each mutation
   * starts from the file, so several processes may share a fabric if they do not race.
   */
  private reload(): void {
    // Never under a mutation in flight: it holds records of the current state and saves them
    // (a status() between a droplet's spawn and its init pid being recorded lost the pid).
    if (this.mutating > 0) return;
    try {
      const onDisk = readState(this.stateDir);
      if (onDisk && onDisk.prefix === this.prefix) this.state = onDisk;
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'kept the state in memory: the state file was unreadable');
    }
  }

  /** Serializes mutations, so concurrent hooks never interleave their state writes. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = async () => {
      this.reload();
      this.mutating++;
      try {
        return await fn();
      } finally {
        this.mutating--;
      }
    };
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async newNamespace(ns: string): Promise<void> {
    if ((await listNamespaces()).includes(ns)) {
      throw new Error(`namespace ${ns} exists already and this fabric did not make it; remove it or choose another name`);
    }
    if (!this.state.namespaces.includes(ns)) this.state.namespaces.push(ns);
    this.save();
    await run('ip', ['netns', 'add', ns]);
    await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }

  private async ipBatch(ns: string, lines: string[]): Promise<void> {
    await run('ip', ['-n', ns, '-batch', '-'], { input: `${lines.join('\n')}\n` });
  }

  private async sysctl(ns: string, settings: Record<string, string>): Promise<void> {
    await run('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', ...Object.entries(settings).map(([k, v]) => `${k}=${v}`)]);
  }

  /** @internal used by createFabric */
  async buildCore(link: { ifname: string; subnet: string; hostIPv4: string; coreIPv4: string } | null): Promise<void> {
    const core = this.coreNamespace;
    mkdirSync(join(this.dir, 'metadata', 'by-address'), { recursive: true, mode: 0o700 });
    mkdirSync(join(this.dir, 'metadata', 'trees'), { recursive: true });
    await this.newNamespace(core);
    // The core routes between its bridges and the host link, and nowhere else: no default route.
    await this.sysctl(core, {
      'net.ipv4.ip_forward': '1',
      'net.ipv4.conf.all.send_redirects': '0',
      'net.ipv4.conf.default.send_redirects': '0',
    });
    const pubBits = parseCidr(PUBLIC_RANGE).bits;
    const anchorBits = parseCidr(ANCHOR_RANGE).bits;
    // Fixed bridge MACs: a bridge otherwise takes its lowest port's MAC, which changes as
    // droplets come and go and leaves every droplet's ARP entry for its gateway stale.
    await this.ipBatch(core, [
      `link add brpub address ${macFor(PUBLIC_GATEWAY, 0)} type bridge`,
      `link add brvpc address ${macFor(VPC_BRIDGE_MAC_SEED, 1)} type bridge`,
      `addr add ${PUBLIC_GATEWAY}/${pubBits} dev brpub`,
      `addr add ${ANCHOR_GATEWAY}/${anchorBits} dev brpub`,
      // Owned by the core, so droplets' replies to it (on-link for them) are answered by ARP.
      `addr add ${OPERATOR_EGRESS_IPV4}/32 dev brpub`,
      `addr add ${METADATA_IPV4}/32 dev lo`,
      'link set brpub up',
      'link set brvpc up',
    ]);
    await run('ip', ['netns', 'exec', core, 'nft', '-f', '-'], { input: renderCoreRuleset(nftTableName(this.prefix)) });

    // Metadata service: one nginx serving each droplet's tree by the address asking.
    const mdDir = join(this.dir, 'metadata');
    writeFileSync(join(mdDir, 'nginx.conf'), renderMetadataNginx(mdDir));
    await run('ip', ['netns', 'exec', core, 'nginx', '-e', join(mdDir, 'error.log'), '-p', mdDir, '-c', join(mdDir, 'nginx.conf')]);

    // The client: a public host like the droplets, /32 behind the core's gateway.
    const client = this.clientNamespace;
    await this.newNamespace(client);
    await this.ipBatch(core, [
      `link add pubcl type veth peer name eth0 address ${macFor(CLIENT_IPV4, 0)} netns ${client}`,
      'link set pubcl master brpub',
      'link set pubcl up',
    ]);
    await this.ipBatch(client, [
      `addr add ${CLIENT_IPV4}/32 dev eth0`,
      'link set eth0 up',
      `route add default via ${PUBLIC_GATEWAY} dev eth0 onlink src ${CLIENT_IPV4}`,
    ]);

    if (link) {
      this.state.hostLink = link;
      this.save();
      const { bits } = hostLinkAddresses(link.subnet);
      await run('ip', ['link', 'add', link.ifname, 'type', 'veth', 'peer', 'name', 'up0', 'netns', core]);
      await run('ip', ['addr', 'add', `${link.hostIPv4}/${bits}`, 'dev', link.ifname]);
      await run('ip', ['link', 'set', link.ifname, 'up']);
      await this.ipBatch(core, [`addr add ${link.coreIPv4}/${bits} dev up0`, 'link set up0 up']);
      for (const range of HOST_ROUTED_RANGES) {
        await run('ip', ['route', 'add', range, 'via', link.coreIPv4, 'dev', link.ifname]);
      }
    }
    this.state.coreReady = true;
    this.save();
    this.log.info({ prefix: this.prefix, hostLink: link }, 'built the fabric core');
  }

  private usedAddresses(except?: string): Map<string, string> {
    const used = new Map<string, string>([
      [PUBLIC_GATEWAY, 'the public gateway'], [CLIENT_IPV4, 'the client'],
      [OPERATOR_EGRESS_IPV4, "the machine's egress address"], [ANCHOR_GATEWAY, 'the anchor gateway'],
    ]);
    for (const d of Object.values(this.state.droplets)) {
      if (d.name === except) continue;
      for (const ip of [d.publicIPv4, d.anchorIPv4, d.privateIPv4]) used.set(ip, `droplet ${d.name}`);
    }
    for (const b of Object.values(this.state.backends)) used.set(b.privateIPv4, `backend ${b.name}`);
    return used;
  }

  private checkNewHost(name: string, field: string): string {
    validateHostName(name, field);
    const ns = namespaceName(this.prefix, name);
    if (ns === this.clientNamespace || ns === this.coreNamespace) throw new Error(`${field}: "${name}" is reserved`);
    if (this.state.droplets[name] || this.state.backends[name]) throw new Error(`${field}: a host named "${name}" exists already`);
    return ns;
  }

  private checkAddress(ip: string, field: string, range: string, used: Map<string, string>): void {
    parseIPv4(ip, field);
    if (!inRange(ip, range)) throw new Error(`${field}: ${ip} is outside ${range}`);
    const last = ip.split('.').at(-1);
    if (last === '0' || last === '255') throw new Error(`${field}: ${ip} is a network or broadcast address`);
    const owner = used.get(ip);
    if (owner) throw new Error(`${field}: ${ip} is already used by ${owner}`);
  }

  private freeSlot(): number {
    const taken = new Set([...Object.values(this.state.droplets), ...Object.values(this.state.backends)].map((h) => h.slot));
    let slot = 0;
    while (taken.has(slot)) slot++;
    return slot;
  }

  private dropletDir(name: string): string {
    return join(this.dir, 'droplets', name);
  }

  /** The droplet's name for a DigitalOcean droplet id, if the fabric has it. */
  dropletNameById(id: number): string | undefined {
    return Object.values(this.state.droplets).find((d) => d.id === id)?.name;
  }

  /** Every address the fabric's hosts use (for allocateDropletAddresses). */
  usedIPv4s(): string[] {
    return [...this.usedAddresses().keys()];
  }

  private droplet(name: string): DropletRecord {
    const d = this.state.droplets[name];
    if (!d) throw new Error(`droplet: no droplet named "${name}" in this fabric`);
    return d;
  }

  /** Creates a droplet host and starts its boot; sshd answers once the boot delay is over. */
  addDroplet(opts: AddDropletOptions): Promise<HostStatus> {
    return this.exclusive(() => this.addDropletLocked(opts));
  }

  private async addDropletLocked(opts: AddDropletOptions): Promise<HostStatus> {
    const ns = this.checkNewHost(opts.name, 'name');
    if (!Number.isInteger(opts.id) || opts.id <= 0) throw new Error(`id: ${opts.id} must be a positive integer`);
    const used = this.usedAddresses();
    this.checkAddress(opts.publicIPv4, 'publicIPv4', PUBLIC_RANGE, used);
    this.checkAddress(opts.anchorIPv4, 'anchorIPv4', ANCHOR_RANGE, used);
    this.checkAddress(opts.privateIPv4, 'privateIPv4', VPC_RANGE, used);
    if (!Array.isArray(opts.sshPublicKeys) ||
      opts.sshPublicKeys.some((k) => typeof k !== 'string' || !/^(ssh|ecdsa)-[a-z0-9-]+ [A-Za-z0-9+/=]+/.test(k.trim()))) {
      throw new Error('sshPublicKeys: each entry must be an OpenSSH public key line such as "ssh-ed25519 AAAA... comment"');
    }
    const bootDelayMs = opts.bootDelayMs ?? this.defaultBootDelayMs;
    if (!Number.isFinite(bootDelayMs) || bootDelayMs < 0) throw new Error(`bootDelayMs: ${bootDelayMs} must be a number >= 0`);
    const rootfs = imageKind(opts.image) === 'rootfs' ? this.rootfsFor(opts) : undefined;
    const record: DropletRecord = {
      name: opts.name, id: opts.id, namespace: ns, role: opts.role ?? 'loadbalancer', slot: this.freeSlot(),
      publicIPv4: opts.publicIPv4, anchorIPv4: opts.anchorIPv4, privateIPv4: opts.privateIPv4,
      sshPublicKeys: opts.sshPublicKeys.map((k) => k.trim()), metadata: opts.metadata ?? {}, bootDelayMs,
      webServer: opts.webServer === true, ...(opts.image ? { image: opts.image } : {}), ...(rootfs ? { rootfs } : {}),
    };
    await this.newNamespace(ns);
    this.state.droplets[opts.name] = record;
    this.save();
    try {
      if (record.rootfs) this.prepareRootfsDropletFiles(record);
      else await this.prepareDropletFiles(record);
      await this.wireDroplet(record);
      this.syncMetadata(record, null);
      await this.bootDroplet(record);
    } catch (e) {
      this.log.error({ droplet: record.name, err: (e as Error).message }, 'failed to create a droplet; removed what was made');
      await this.teardownDroplet(record).catch(() => undefined);
      throw e;
    }
    this.log.info({ droplet: record.name, namespace: ns, publicIPv4: record.publicIPv4 }, 'created a droplet');
    return this.hostStatus(record);
  }

  private async prepareDropletFiles(d: DropletRecord): Promise<void> {
    const dir = this.dropletDir(d.name);
    rmSync(dir, { recursive: true, force: true });
    for (const sub of ['etc.upper/ssh', 'etc.work', 'var.upper', 'var.work', 'root/.ssh', 'sshd_config.d']) {
      mkdirSync(join(dir, sub), { recursive: true, mode: 0o700 });
    }
    chmodSync(join(dir, 'sshd_config.d'), 0o755);
    chmodSync(join(dir, 'etc.upper'), 0o755);
    chmodSync(join(dir, 'etc.upper/ssh'), 0o755);
    chmodSync(join(dir, 'var.upper'), 0o755);
    writeFileSync(join(dir, 'root/.ssh/authorized_keys'), d.sshPublicKeys.map((k) => `${k}\n`).join(''), { mode: 0o600 });
    const ssh = join(dir, 'etc.upper/ssh');
    writeFileSync(join(ssh, 'sshd_config'), renderSshdConfig(d.name), { mode: 0o644 });
    // Hide the machine's own host keys from the droplet (overlay whiteouts); its sshd_config.d
    // is the droplet's own folder, bound over it at boot.
    for (const entry of readdirSync('/etc/ssh')) {
      if (/^ssh_host_.*key(\.pub)?$/.test(entry)) await run('mknod', [join(ssh, entry), 'c', '0', '0']);
    }
    rmSync(join(ssh, 'ssh_host_ed25519_key'), { force: true });
    rmSync(join(ssh, 'ssh_host_ed25519_key.pub'), { force: true });
    // The image's own key, as ssh_genkeytypes makes one; user_data's ssh_keys replace it at first boot.
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `root@${d.name}`, '-f', join(ssh, 'ssh_host_ed25519_key')]);
    const firstBoot = firstBootFromUserData(d.metadata.userData);
    writeFileSync(join(dir, 'first-boot-before-ssh.sh'), firstBoot.beforeSsh, { mode: 0o700 });
    writeFileSync(join(dir, 'first-boot-after-ssh.sh'), firstBoot.afterSsh, { mode: 0o700 });
    for (const reason of firstBoot.skipped) this.log.warn({ droplet: d.name, reason }, 'left a part of user_data unapplied');
    d.hostKeyPublic = firstBoot.hostKeyPublic ?? readFileSync(join(ssh, 'ssh_host_ed25519_key.pub'), 'utf8').trim();
    const etc = join(dir, 'etc.upper');
    writeFileSync(join(etc, 'hostname'), `${d.name}\n`);
    writeFileSync(join(etc, 'hosts'), `127.0.0.1\tlocalhost\n127.0.1.1\t${d.name}\n${d.privateIPv4}\t${d.name}\n`);
    // sshd without PAM refuses a locked account ("!" password); the droplet's root has none.
    const shadow = readFileSync('/etc/shadow', 'utf8');
    const unlocked = shadow.replace(/^root:!+[^:]*:/m, 'root:*:');
    if (unlocked !== shadow) {
      writeFileSync(join(etc, 'shadow'), unlocked, { mode: 0o640 });
      await run('chown', ['--reference=/etc/shadow', join(etc, 'shadow')]);
    }
    if (d.webServer) {
      mkdirSync(join(etc, 'nginx/sites-enabled'), { recursive: true, mode: 0o755 });
      writeFileSync(join(etc, 'nginx/sites-enabled/default'), renderWebSite(d.name));
    }
    writeFileSync(join(dir, 'init.sh'), renderDropletInit({ name: d.name, dir, bootDelayMs: d.bootDelayMs, webServer: d.webServer }), {
      mode: 0o755,
    });
    this.save();
  }

  /** The cached root filesystem a droplet of this image boots; it must be built beforehand. */
  private rootfsFor(opts: AddDropletOptions): string {
    if (opts.webServer) throw new Error(`image: ${opts.image} cannot run a web backend; backends run this machine's binaries`);
    const rootfs = cachedRootfs();
    if (rootfs === undefined) {
      throw new Error(`image: ${opts.image} is not built on this machine ` +
        '(it downloads, so it is built before a sandbox routes its ranges): run `halb sandbox image`');
    }
    // The path goes into overlay mount options, which cannot carry commas, colons or spaces.
    if (!/^\/[A-Za-z0-9._/-]+$/.test(rootfs)) {
      throw new Error(`image: the image cache ${JSON.stringify(rootfs)} must be a plain path (letters, digits, . _ - /)`);
    }
    return rootfs;
  }

  /**
   * A droplet of a root-filesystem image: its own upper folder over the image, seeded with what
   * its first boot reads (NoCloud: the droplet's user_data, id, name and SSH keys), as
   * DigitalOcean's metadata would give them.
   */
  private prepareRootfsDropletFiles(d: DropletRecord): void {
    const dir = this.dropletDir(d.name);
    rmSync(dir, { recursive: true, force: true });
    for (const sub of ['rootfs', 'rootfs.work', 'rootfs.upper/etc', 'rootfs.upper/var/lib/cloud/seed/nocloud']) {
      mkdirSync(join(dir, sub), { recursive: true, mode: 0o755 });
    }
    const upper = join(dir, 'rootfs.upper');
    writeFileSync(join(upper, 'etc/hostname'), `${d.name}\n`);
    writeFileSync(join(upper, 'etc/hosts'), `127.0.0.1\tlocalhost\n127.0.1.1\t${d.name}\n${d.privateIPv4}\t${d.name}\n`);
    const seed = join(upper, 'var/lib/cloud/seed/nocloud');
    writeFileSync(join(seed, 'user-data'), d.metadata.userData || '#cloud-config\n', { mode: 0o600 });
    writeFileSync(join(seed, 'meta-data'), renderNoCloudMetaData(d), { mode: 0o600 });
    const hostKey = firstBootFromUserData(d.metadata.userData).hostKeyPublic;
    if (hostKey) d.hostKeyPublic = hostKey;
    const init = renderRootfsInit({
      name: d.name, dir, rootfs: d.rootfs!, netnsPath: `/run/netns/${d.namespace}`, bootDelayMs: d.bootDelayMs,
    });
    writeFileSync(join(dir, 'init.sh'), init, { mode: 0o755 });
    this.save();
  }

  private async wireDroplet(d: DropletRecord): Promise<void> {
    const pub = `pub${d.slot}`;
    const vpc = `vpc${d.slot}`;
    await this.ipBatch(this.coreNamespace, [
      // The MACs follow the addresses (and match the metadata), so a droplet made again with the
      // same addresses is not hidden behind stale neighbour entries.
      `link add ${pub} type veth peer name eth0 address ${macFor(d.publicIPv4, 0)} netns ${d.namespace}`,
      `link add ${vpc} type veth peer name eth1 address ${macFor(d.privateIPv4, 1)} netns ${d.namespace}`,
      `link set ${pub} master brpub`,
      `link set ${vpc} master brvpc`,
      `link set ${pub} up`,
      `link set ${vpc} up`,
    ]);
    // The public IPv4 is a /32 behind the gateway so that even droplet-to-droplet traffic on the
    // public network passes the core (where the floating-IP NAT is), as on DigitalOcean.
    await this.ipBatch(d.namespace, [
      `addr add ${d.publicIPv4}/32 dev eth0`,
      `addr add ${d.anchorIPv4}/${parseCidr(ANCHOR_RANGE).bits} dev eth0`,
      `addr add ${d.privateIPv4}/${parseCidr(VPC_RANGE).bits} dev eth1`,
      'link set eth0 up',
      'link set eth1 up',
      `route add default via ${PUBLIC_GATEWAY} dev eth0 onlink src ${d.publicIPv4}`,
    ]);
  }

  private floatingIPOf(d: DropletRecord): string | null {
    return Object.entries(this.state.floatingIPs).find(([, anchor]) => anchor === d.anchorIPv4)?.[0] ?? null;
  }

  private renderMetadata(d: DropletRecord): Map<string, string> {
    return renderMetadataTree({ ...d, floatingIPv4: this.floatingIPOf(d) });
  }

  /**
   * Brings the droplet's metadata tree to what its record says. Given the previous rendering,
   * only the changed files are written (each replaced atomically) and the vanished ones removed;
   * without it the tree is written whole and the droplet's addresses are pointed at it.
   */
  private syncMetadata(d: DropletRecord, before: Map<string, string> | null): void {
    const tree = join(this.dir, 'metadata', 'trees', d.name);
    const fileOf = (path: string) => (path.endsWith('/') ? join(tree, path, '_index') : join(tree, path));
    const after = this.renderMetadata(d);
    for (const [path, content] of after) {
      if (before?.get(path) === content) continue;
      const file = fileOf(path);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(`${file}.tmp`, content);
      renameSync(`${file}.tmp`, file);
    }
    for (const path of before?.keys() ?? []) if (!after.has(path)) rmSync(fileOf(path), { force: true });
    if (before) return;
    const byAddress = join(this.dir, 'metadata', 'by-address');
    for (const ip of [d.publicIPv4, d.anchorIPv4, d.privateIPv4]) {
      rmSync(join(byAddress, ip), { force: true });
      symlinkSync(join('..', 'trees', d.name), join(byAddress, ip));
    }
  }

  private removeMetadata(d: DropletRecord): void {
    const byAddress = join(this.dir, 'metadata', 'by-address');
    for (const ip of [d.publicIPv4, d.anchorIPv4, d.privateIPv4]) rmSync(join(byAddress, ip), { force: true });
    rmSync(join(this.dir, 'metadata', 'trees', d.name), { recursive: true, force: true });
  }

  private async bootDroplet(d: DropletRecord): Promise<void> {
    const dir = this.dropletDir(d.name);
    const console = openSync(join(dir, 'console.log'), 'a');
    let child;
    try {
      // A root-filesystem droplet's nspawn makes its own namespaces and joins the network one.
      const argv = d.rootfs
        ? ['unshare', '--mount', '--propagation', 'private', '/bin/bash', join(dir, 'init.sh')]
        : ['ip', 'netns', 'exec', d.namespace,
          'unshare', '--pid', '--fork', '--kill-child', '--mount', '--uts', '--mount-proc', '--propagation', 'private',
          '/bin/bash', join(dir, 'init.sh')];
      child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ['ignore', console, console] });
    } finally {
      closeSync(console);
    }
    child.unref();
    const unsharePid = child.pid;
    if (unsharePid === undefined) throw new Error(`droplet ${d.name}: could not start its init`);
    d.unsharePid = unsharePid;
    this.save();
    const deadline = Date.now() + 5_000 + (d.rootfs ? d.bootDelayMs : 0);
    while (Date.now() < deadline) {
      const initPid = d.rootfs ? await this.containerInit(d.namespace) : childrenOf(unsharePid)[0];
      if (initPid !== undefined) {
        d.initPid = initPid;
        this.save();
        return;
      }
      if (!pidAlive(unsharePid)) break;
      await sleep(10);
    }
    const log = existsSync(join(dir, 'console.log')) ? readFileSync(join(dir, 'console.log'), 'utf8').slice(-2000) : '';
    throw new Error(`droplet ${d.name}: its init did not start${log ? `: ${log.trim()}` : ''}`);
  }

  /** PID 1 of the droplet's container: the process in its network namespace that is 1 in its own PID namespace. */
  private async containerInit(ns: string): Promise<number | undefined> {
    for (const pid of await namespacePids(ns)) {
      try {
        const nspid = /^NSpid:\s+(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]?.trim().split(/\s+/) ?? [];
        if (nspid.length > 1 && nspid.at(-1) === '1') return pid;
      } catch {
        // exited while we looked
      }
    }
    return undefined;
  }

  private isBooted(d: DropletRecord): boolean {
    return pidAlive(d.initPid) && existsSync(`/proc/${d.initPid}/root${BOOTED_MARKER}`);
  }

  /** Resolves once the droplet's sshd has started (after its boot delay). */
  async waitForDroplet(name: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const d = this.droplet(name);
      if (this.isBooted(d)) return;
      if (!pidAlive(d.initPid)) {
        throw new Error(`droplet ${name}: not running (its init exited; see ${join(this.dropletDir(name), 'console.log')})`);
      }
      if (Date.now() > deadline) throw new Error(`droplet ${name}: sshd not started after ${timeoutMs} ms`);
      await sleep(25);
    }
  }

  /** Every process of the droplet (root-namespace pids), its init included. */
  async dropletPids(name: string): Promise<number[]> {
    return namespacePids(this.droplet(name).namespace);
  }

  /** Runs a command inside the droplet's namespaces (as its root), like a console would. */
  async execInDroplet(name: string, argv: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
    const d = this.droplet(name);
    if (!pidAlive(d.initPid)) throw new Error(`droplet ${name}: not running`);
    // --root: a root-filesystem droplet's / is its image, not this machine's.
    return run('nsenter', ['-t', String(d.initPid), '-m', '-u', '-n', '-p', '--root', '--wd', '--', ...argv], opts);
  }

  /** Powers a droplet off: kills every process in it; its namespace, addresses and files stay. */
  stopDroplet(name: string): Promise<void> {
    return this.exclusive(async () => {
      const d = this.droplet(name);
      await killNamespaceProcesses(d.namespace, [d.initPid, d.unsharePid].filter((p) => p !== undefined));
      delete d.initPid;
      delete d.unsharePid;
      this.save();
      this.log.info({ droplet: name }, 'stopped a droplet');
    });
  }

  /** Powers a stopped droplet on again: same host keys and files, new boot. */
  startDroplet(name: string): Promise<void> {
    return this.exclusive(async () => {
      const d = this.droplet(name);
      if (pidAlive(d.initPid)) return;
      await killNamespaceProcesses(d.namespace);
      await this.bootDroplet(d);
      this.log.info({ droplet: name }, 'started a droplet');
    });
  }

  /** Reboots a droplet: every process ends, then it boots again (with its boot delay). */
  async rebootDroplet(name: string): Promise<void> {
    await this.stopDroplet(name);
    await this.startDroplet(name);
  }

  /** Deletes a droplet: its processes, namespace, links, files, metadata and any floating IP on it. */
  removeDroplet(name: string): Promise<void> {
    return this.exclusive(async () => {
      const d = this.droplet(name);
      const held = Object.entries(this.state.floatingIPs).filter(([, a]) => a === d.anchorIPv4).map(([ip]) => ip);
      if (held.length > 0) {
        for (const ip of held) delete this.state.floatingIPs[ip];
        await this.applyFloatingMap();
      }
      await this.teardownDroplet(d);
      this.log.info({ droplet: name, floatingIPsReleased: held }, 'removed a droplet');
    });
  }

  private async teardownDroplet(d: DropletRecord): Promise<void> {
    await deleteNamespace(d.namespace);
    await runStatus('ip', ['-n', this.coreNamespace, 'link', 'del', `pub${d.slot}`]);
    await runStatus('ip', ['-n', this.coreNamespace, 'link', 'del', `vpc${d.slot}`]);
    this.removeMetadata(d);
    rmSync(this.dropletDir(d.name), { recursive: true, force: true });
    delete this.state.droplets[d.name];
    this.state.namespaces = this.state.namespaces.filter((n) => n !== d.namespace);
    this.save();
  }

  /** Updates what a droplet's metadata service says (tags, user data, ...). */
  updateDropletMetadata(name: string, metadata: DropletMetadata): Promise<void> {
    return this.exclusive(async () => {
      const d = this.droplet(name);
      const before = this.renderMetadata(d);
      d.metadata = { ...d.metadata, ...metadata };
      this.save();
      this.syncMetadata(d, before);
    });
  }

  private async applyFloatingMap(): Promise<void> {
    const table = nftTableName(this.prefix);
    if (!this.nft?.alive) this.nft = new NftSession(this.coreNamespace, table);
    try {
      await this.nft.apply(renderFloatingMapCommands(table, this.state.floatingIPs));
      return;
    } catch (e) {
      if (!(e instanceof NftSessionError)) throw e;
      this.log.warn({ err: e.message }, 'fell back to a one-shot nft after the nft session broke');
    }
    const batch = renderFloatingMapBatch(table, this.state.floatingIPs);
    await run('ip', ['netns', 'exec', this.coreNamespace, 'nft', '-f', '-'], { input: batch });
  }

  /** Ends this process's helper processes (the nft session); the fabric itself stays up. */
  close(): void {
    this.nft?.close();
    this.nft = undefined;
  }

  /**
   * Points a floating IP at an anchor IPv4 (or nowhere, with null). The DNAT map changes in one
   * nft transaction before this resolves; the droplets' metadata follows. Resolves with the
   * moment (epoch ms, sub-ms precision) the kernel confirmed the new map.
   */
  setFloatingIP(ip: string, anchorIPv4: string | null): Promise<{ dnatChangedAt: number }> {
    return this.exclusive(async () => {
      validateFloatingAssignment(ip, anchorIPv4);
      const before = this.state.floatingIPs[ip] ?? null;
      const affected = Object.values(this.state.droplets).filter((d) => d.anchorIPv4 === before || d.anchorIPv4 === anchorIPv4);
      const rendered = affected.map((d) => [d, this.renderMetadata(d)] as const);
      if (anchorIPv4 === null) delete this.state.floatingIPs[ip];
      else this.state.floatingIPs[ip] = anchorIPv4;
      try {
        await this.applyFloatingMap();
      } catch (e) {
        if (before === null) delete this.state.floatingIPs[ip];
        else this.state.floatingIPs[ip] = before;
        throw e;
      }
      const dnatChangedAt = performance.timeOrigin + performance.now();
      this.save();
      for (const [d, old] of rendered) this.syncMetadata(d, old);
      this.log.info({ floatingIP: ip, from: before, to: anchorIPv4 }, 'pointed a floating IP');
      return { dnatChangedAt };
    });
  }

  floatingIPs(): Record<string, string> {
    this.reload();
    return { ...this.state.floatingIPs };
  }

  /** The floating-IP map as the kernel has it (read back from nft). */
  async floatingMapInKernel(): Promise<Record<string, string>> {
    const { stdout } = await run('ip', [
      'netns', 'exec', this.coreNamespace, 'nft', '-j', 'list', 'map', 'ip', nftTableName(this.prefix), 'fip',
    ]);
    const parsed = JSON.parse(stdout) as { nftables: Array<{ map?: { elem?: Array<[string, string]> } }> };
    const out: Record<string, string> = {};
    for (const item of parsed.nftables) for (const [k, v] of item.map?.elem ?? []) out[k] = v;
    return out;
  }

  /** A backend web server: nginx on the VPC answering every request with its name. */
  addBackend(opts: AddBackendOptions): Promise<HostStatus> {
    return this.exclusive(async () => {
      const ns = this.checkNewHost(opts.name, 'name');
      this.checkAddress(opts.privateIPv4, 'privateIPv4', VPC_RANGE, this.usedAddresses());
      const b: BackendRecord = { name: opts.name, namespace: ns, slot: this.freeSlot(), privateIPv4: opts.privateIPv4 };
      await this.newNamespace(ns);
      this.state.backends[opts.name] = b;
      this.save();
      try {
        const link = `vpc${b.slot}`;
        await this.ipBatch(this.coreNamespace, [
          `link add ${link} type veth peer name eth0 address ${macFor(b.privateIPv4, 1)} netns ${ns}`,
          `link set ${link} master brvpc`,
          `link set ${link} up`,
        ]);
        await this.ipBatch(ns, [`addr add ${b.privateIPv4}/${parseCidr(VPC_RANGE).bits} dev eth0`, 'link set eth0 up']);
        const dir = join(this.dir, 'backends', b.name);
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, 'nginx.conf'), renderBackendNginx({ name: b.name, dir }));
        await run('ip', ['netns', 'exec', ns, 'nginx', '-e', join(dir, 'error.log'), '-p', dir, '-c', join(dir, 'nginx.conf')]);
      } catch (e) {
        this.log.error({ backend: b.name, err: (e as Error).message }, 'failed to create a backend; removed what was made');
        await this.teardownBackend(b).catch(() => undefined);
        throw e;
      }
      this.log.info({ backend: b.name, namespace: ns, privateIPv4: b.privateIPv4 }, 'created a backend');
      return this.backendStatus(b);
    });
  }

  private async teardownBackend(b: BackendRecord): Promise<void> {
    await deleteNamespace(b.namespace);
    await runStatus('ip', ['-n', this.coreNamespace, 'link', 'del', `vpc${b.slot}`]);
    rmSync(join(this.dir, 'backends', b.name), { recursive: true, force: true });
    delete this.state.backends[b.name];
    this.state.namespaces = this.state.namespaces.filter((n) => n !== b.namespace);
    this.save();
  }

  /**
   * Gives a backend's nginx another config (written by `render`, which gets the backend's folder
   * for its pid and log paths), checked with `nginx -t` first, then reloaded with SIGHUP: the
   * sandbox's cluster nodes answer on the NodePorts of the Services that exist.
   */
  reconfigureBackend(name: string, render: (dir: string) => string): Promise<void> {
    return this.exclusive(async () => {
      const b = this.state.backends[name];
      if (!b) throw new Error(`backend: no backend named "${name}" in this fabric`);
      const dir = join(this.dir, 'backends', b.name);
      const next = join(dir, 'nginx.conf.next');
      writeFileSync(next, render(dir));
      await run('ip', ['netns', 'exec', b.namespace, 'nginx', '-t', '-q', '-e', join(dir, 'error.log'), '-p', dir, '-c', next]);
      renameSync(next, join(dir, 'nginx.conf'));
      const pid = Number(readFileSync(join(dir, 'nginx.pid'), 'utf8').trim());
      process.kill(pid, 'SIGHUP');
    });
  }

  removeBackend(name: string): Promise<void> {
    return this.exclusive(async () => {
      const b = this.state.backends[name];
      if (!b) throw new Error(`backend: no backend named "${name}" in this fabric`);
      await this.teardownBackend(b);
      this.log.info({ backend: name }, 'removed a backend');
    });
  }

  private hostStatus(d: DropletRecord): HostStatus {
    return {
      name: d.name, namespace: d.namespace, role: d.role, publicIPv4: d.publicIPv4, privateIPv4: d.privateIPv4,
      anchorIPv4: d.anchorIPv4, id: d.id, running: pidAlive(d.initPid), booted: this.isBooted(d),
      hostKey: d.hostKeyPublic ?? this.madeHostKey(d),
      ...(d.image ? { image: d.image } : {}),
    };
  }

  /** The ed25519 host key a root-filesystem droplet made at its first boot, once it has. */
  private madeHostKey(d: DropletRecord): string | undefined {
    if (!this.isBooted(d)) return undefined;
    try {
      return readFileSync(`/proc/${d.initPid}/root/etc/ssh/ssh_host_ed25519_key.pub`, 'utf8').trim();
    } catch {
      return undefined;
    }
  }

  private backendStatus(b: BackendRecord): HostStatus {
    const pidFile = join(this.dir, 'backends', b.name, 'nginx.pid');
    const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : undefined;
    return {
      name: b.name, namespace: b.namespace, role: 'backend', publicIPv4: null, privateIPv4: b.privateIPv4, anchorIPv4: null,
      running: pidAlive(pid),
    };
  }

  status(): FabricStatus {
    this.reload();
    const link = this.state.hostLink;
    const hosts: HostStatus[] = [
      ...Object.values(this.state.droplets).map((d) => this.hostStatus(d)),
      ...Object.values(this.state.backends).map((b) => this.backendStatus(b)),
      {
        name: 'client', namespace: this.clientNamespace, role: 'client', publicIPv4: CLIENT_IPV4, privateIPv4: null, anchorIPv4: null,
        running: true,
      },
    ];
    return {
      prefix: this.prefix,
      stateDir: this.stateDir,
      coreNamespace: this.coreNamespace,
      hostLink: link
        ? { interface: link.ifname, subnet: link.subnet, hostIPv4: link.hostIPv4, coreIPv4: link.coreIPv4, routes: [...HOST_ROUTED_RANGES] }
        : null,
      floatingIPs: { ...this.state.floatingIPs },
      hosts,
    };
  }

  /** Removes every namespace, process, link and file of this fabric. */
  destroy(): Promise<void> {
    return this.exclusive(async () => {
      this.close();
      await destroyFabric({ stateDir: this.stateDir, prefix: this.prefix, logger: this.log });
    });
  }
}

// The simulator's in-memory DigitalOcean account: droplets, reserved IPs, actions, tags,
// firewalls, SSH keys. Methods take parsed request bodies and either return DigitalOcean-shaped
// objects or throw ApiError with DigitalOcean's status, id and message. Asynchronous work
// (droplet boot, reserved-IP actions) completes on timers after configurable delays.
import { createHash, randomUUID } from 'node:crypto';
import { AddressPool } from './addresses.ts';
import { IMAGES, REGIONS, SIZES, imageObject, regionObject, sizeObject } from './catalog.ts';

export class ApiError extends Error {
  readonly status: number;
  readonly id: string;
  constructor(status: number, id: string, message: string) {
    super(message);
    this.status = status;
    this.id = id;
  }
}

export const NOT_FOUND_MESSAGE = 'The resource you were accessing could not be found.';

export function notFound(): ApiError {
  return new ApiError(404, 'not_found', NOT_FOUND_MESSAGE);
}

export function unprocessable(message: string): ApiError {
  return new ApiError(422, 'unprocessable_entity', message);
}

function badRequest(message: string): ApiError {
  return new ApiError(400, 'bad_request', message);
}

/** What the sandbox needs to know about a droplet to build (or remove) its host. */
export interface DropletView {
  id: number;
  name: string;
  region: string;
  tags: string[];
  status: 'new' | 'active' | 'off' | 'archive';
  userData: string;
  vpcUuid: string;
  publicIPv4: string;
  privateIPv4: string;
  anchorIPv4: string;
  /** Public halves of the SSH keys named at creation (ids and fingerprints resolved). */
  sshPublicKeys: string[];
  /** The image's slug. */
  image: string;
}

export interface ReservedIpChange {
  ip: string;
  dropletId: number | null;
  previousDropletId: number | null;
}

export interface SimulatorHooks {
  /** Awaited before the droplet turns `active`: the sandbox builds the host meanwhile. */
  onDropletCreated?: (droplet: DropletView) => void | Promise<void>;
  onDropletDeleted?: (droplet: DropletView) => void | Promise<void>;
  /** A power action is completing: the sandbox powers the host off, on, or reboots it. */
  onDropletPowerChanged?: (droplet: DropletView, power: 'off' | 'on' | 'reboot') => void | Promise<void>;
  /** The droplet died (fault injection): the sandbox stops its host. */
  onDropletDied?: (droplet: DropletView) => void | Promise<void>;
  /** Awaited before the assign/unassign action reads `completed`, so the route has moved by then. */
  onReservedIpAssignmentChanged?: (change: ReservedIpChange) => void | Promise<void>;
  /** The droplet's metadata service announces a maintenance event, or stops announcing one. */
  onMaintenanceEventChanged?: (droplet: DropletView, event: string) => void | Promise<void>;
}

export interface SimulatorDelays {
  /** From create to `active` (the create action completes at the same time). */
  dropletActiveMs: number;
  /** From an assign/unassign request to its action completing; the IP is `locked` meanwhile. */
  reservedIpActionMs: number;
  /** From a droplet power action to its completion. */
  dropletActionMs: number;
}

export interface AddressingOptions {
  /** Public IPv4s of droplets. */
  publicCidr: string;
  /** VPC addresses (the first hosts are skipped: the sandbox puts fixed hosts there). */
  privateCidr: string;
  privateSkip: number;
  anchorCidr: string;
  reservedCidr: string;
}

export const DEFAULT_ADDRESSING: AddressingOptions = {
  publicCidr: '203.0.113.0/24',
  privateCidr: '10.10.0.0/16',
  privateSkip: 9,
  anchorCidr: '10.20.0.0/16',
  reservedCidr: '198.51.100.0/24',
};

export interface StateOptions {
  delays: SimulatorDelays;
  addressing: AddressingOptions;
  hooks: SimulatorHooks;
  dropletLimit: number;
  reservedIpLimit: number;
  log: (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void;
  /** Read when a droplet turns active: if set (and the tag matches), it dies afterMs later. */
  dropletDeath: () => { afterMs: number; tag?: string } | undefined;
}

interface Droplet {
  id: number;
  name: string;
  region: string;
  size: string;
  image: number;
  tags: string[];
  userData: string;
  vpcUuid: string;
  sshKeyIds: number[];
  status: 'new' | 'active' | 'off' | 'archive';
  createdAt: string;
  publicIPv4: string;
  privateIPv4: string;
  anchorIPv4: string;
  /** Ids of this droplet's actions still in progress. */
  pending: Set<number>;
  /** The physical machine it runs on: droplets with the same one are neighbours. */
  physicalHost: string;
  /** What the metadata service's maintenance_event says: '' or live_migrate. */
  maintenanceEvent: string;
}

interface ReservedIp {
  ip: string;
  region: string;
  dropletId: number | null;
  projectId: string;
  /** The in-progress action holding the lock, if any. */
  lockedBy: number | null;
}

export interface Action {
  id: number;
  status: 'in-progress' | 'completed' | 'errored';
  type: string;
  started_at: string;
  completed_at: string | null;
  resource_id: number | null;
  resource_type: string;
  region_slug: string | null;
  /** The reserved IP an action belongs to (its resource_id is the IP as an integer). */
  ip?: string;
}

interface Tag {
  name: string;
  lastTagged: string | null;
}

export interface FirewallRuleTargets {
  addresses?: string[];
  droplet_ids?: number[];
  load_balancer_uids?: string[];
  kubernetes_ids?: string[];
  tags?: string[];
}

export interface FirewallInbound {
  protocol: string;
  ports: string;
  sources: FirewallRuleTargets;
}

export interface FirewallOutbound {
  protocol: string;
  ports: string;
  destinations: FirewallRuleTargets;
}

interface Firewall {
  id: string;
  name: string;
  createdAt: string;
  dropletIds: number[];
  tags: string[];
  inbound: FirewallInbound[];
  outbound: FirewallOutbound[];
}

interface SshKey {
  id: number;
  name: string;
  publicKey: string;
  fingerprint: string;
}

const TAG_PATTERN = /^[a-zA-Z0-9_\-:]+$/;
const DROPLET_NAME_PATTERN = /^[a-zA-Z0-9]?[a-z0-9A-Z.-]*[a-z0-9A-Z]$/;
const FIREWALL_NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9.-]+$/;
const PROJECT_ID = '6c1a4a52-5b5e-4e5c-9b0a-4a1f0d6e1f2a';

function isoNow(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** A stable UUID-shaped id per region for its default VPC. */
export function defaultVpcUuid(region: string): string {
  const h = createHash('sha256').update(`vpc:${region}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** The MD5 fingerprint DigitalOcean shows for an OpenSSH public key line. */
export function sshFingerprint(publicKey: string): string {
  const blob = publicKey.trim().split(/\s+/)[1];
  if (blob === undefined || !/^[A-Za-z0-9+/=]+$/.test(blob)) {
    throw unprocessable('Key invalid type, we support ssh-rsa, ssh-ed25519 and ecdsa keys.');
  }
  const hex = createHash('md5').update(Buffer.from(blob, 'base64')).digest('hex');
  return hex.match(/../g)!.join(':');
}

function ipToInt(ip: string): number {
  return ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

export class SimulatorState {
  private readonly options: StateOptions;
  private readonly droplets = new Map<number, Droplet>();
  private readonly reservedIps = new Map<string, ReservedIp>();
  private readonly actions = new Map<number, Action>();
  private readonly tags = new Map<string, Tag>();
  private readonly firewalls = new Map<string, Firewall>();
  private readonly sshKeys = new Map<number, SshKey>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly publicPool: AddressPool;
  private readonly privatePool: AddressPool;
  private readonly anchorPool: AddressPool;
  private readonly reservedPool: AddressPool;
  private nextDropletId = 500_000_001;
  private nextActionId = 2_000_000_001;
  private nextSshKeyId = 41_000_001;
  private nextPhysicalHost = 1;
  private closed = false;

  constructor(options: StateOptions) {
    this.options = options;
    this.publicPool = new AddressPool(options.addressing.publicCidr, 8);
    this.privatePool = new AddressPool(options.addressing.privateCidr, options.addressing.privateSkip);
    this.anchorPool = new AddressPool(options.addressing.anchorCidr, 3);
    this.reservedPool = new AddressPool(options.addressing.reservedCidr, 8);
  }

  get delays(): SimulatorDelays {
    return this.options.delays;
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private later(ms: number, fn: () => Promise<void> | void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (this.closed) return;
      Promise.resolve()
        .then(fn)
        .catch((err: unknown) => this.options.log('warn', 'simulator timer failed', { err: String(err) }));
    }, ms);
    this.timers.add(timer);
  }

  private async runHook(name: string, fn: () => void | Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.options.log('warn', `hook ${name} failed`, { err: String(err) });
    }
  }

  // ---------- actions ----------

  private newAction(type: string, resourceType: string, resourceId: number | null, region: string, ip?: string): Action {
    const action: Action = {
      id: this.nextActionId++,
      status: 'in-progress',
      type,
      started_at: isoNow(),
      completed_at: null,
      resource_id: resourceId,
      resource_type: resourceType,
      region_slug: region,
    };
    if (ip !== undefined) action.ip = ip;
    this.actions.set(action.id, action);
    return action;
  }

  private complete(action: Action, status: 'completed' | 'errored' = 'completed'): void {
    action.status = status;
    action.completed_at = isoNow();
  }

  /** The action as DigitalOcean shows it; `resourceType` renames reserved_ip/floating_ip. */
  actionObject(action: Action, resourceType?: string): Record<string, unknown> {
    return {
      id: action.id,
      status: action.status,
      type: action.type,
      started_at: action.started_at,
      completed_at: action.completed_at,
      resource_id: action.resource_id,
      resource_type: resourceType ?? action.resource_type,
      region: regionObject(action.region_slug ?? 'nyc3'),
      region_slug: action.region_slug,
    };
  }

  getAction(id: number): Action {
    const action = this.actions.get(id);
    if (!action) throw notFound();
    return action;
  }

  listActions(filter?: (a: Action) => boolean): Action[] {
    const all = [...this.actions.values()];
    return (filter ? all.filter(filter) : all).sort((a, b) => b.id - a.id);
  }

  // ---------- tags ----------

  private canonicalTag(name: string): Tag | undefined {
    for (const tag of this.tags.values()) if (tag.name.toLowerCase() === name.toLowerCase()) return tag;
    return undefined;
  }

  private ensureTag(name: string): string {
    if (typeof name !== 'string' || !TAG_PATTERN.test(name) || name.length > 255) {
      throw unprocessable(`Tag name "${String(name)}" is invalid: tags may contain letters, numbers, colons, dashes and underscores.`);
    }
    const existing = this.canonicalTag(name);
    if (existing) return existing.name;
    this.tags.set(name, { name, lastTagged: null });
    return name;
  }

  createTag(body: unknown): Record<string, unknown> {
    const name = (body as { name?: unknown } | null)?.name;
    if (typeof name !== 'string' || name === '') throw badRequest('Error validating resource tag: name is required');
    if (!TAG_PATTERN.test(name) || name.length > 255) {
      throw badRequest(`Error validating resource tag: "tag-name \\"${name}\\" contains invalid characters"`);
    }
    const canonical = this.ensureTag(name);
    return this.tagObject(this.tags.get(canonical)!);
  }

  getTag(name: string): Record<string, unknown> {
    const tag = this.tags.get(name);
    if (!tag) throw notFound();
    return this.tagObject(tag);
  }

  listTags(): Record<string, unknown>[] {
    return [...this.tags.values()].sort((a, b) => a.name.localeCompare(b.name)).map((t) => this.tagObject(t));
  }

  deleteTag(name: string): void {
    if (!this.tags.delete(name)) throw notFound();
    for (const d of this.droplets.values()) d.tags = d.tags.filter((t) => t !== name);
    for (const f of this.firewalls.values()) f.tags = f.tags.filter((t) => t !== name);
  }

  tagResources(name: string, body: unknown, add: boolean): void {
    const tag = this.tags.get(name);
    if (!tag) throw notFound();
    const resources = (body as { resources?: unknown } | null)?.resources;
    if (!Array.isArray(resources) || resources.length === 0) throw badRequest('resources must be a non-empty array');
    for (const r of resources as { resource_id?: unknown; resource_type?: unknown }[]) {
      if (r?.resource_type !== 'droplet') {
        throw unprocessable(`resource_type "${String(r?.resource_type)}" is not supported by this simulator`);
      }
      const droplet = this.droplets.get(Number(r.resource_id));
      if (!droplet) throw notFound();
      if (add && !droplet.tags.includes(tag.name)) {
        droplet.tags.push(tag.name);
        tag.lastTagged = `/v2/droplets/${droplet.id}`;
      }
      if (!add) droplet.tags = droplet.tags.filter((t) => t !== tag.name);
    }
  }

  private tagObject(tag: Tag): Record<string, unknown> {
    const count = [...this.droplets.values()].filter((d) => d.tags.includes(tag.name)).length;
    const droplets: Record<string, unknown> = { count };
    if (tag.lastTagged) droplets.last_tagged_uri = tag.lastTagged;
    const resources: Record<string, unknown> = {
      count,
      droplets,
      images: { count: 0 },
      volumes: { count: 0 },
      volume_snapshots: { count: 0 },
      databases: { count: 0 },
    };
    if (tag.lastTagged) resources.last_tagged_uri = tag.lastTagged;
    return { name: tag.name, resources };
  }

  // ---------- SSH keys ----------

  createSshKey(body: unknown): Record<string, unknown> {
    const { name, public_key: publicKey } = (body ?? {}) as { name?: unknown; public_key?: unknown };
    if (typeof name !== 'string' || name === '') throw unprocessable('Name is required.');
    if (typeof publicKey !== 'string' || publicKey === '') throw unprocessable('Public key is required.');
    const fingerprint = sshFingerprint(publicKey);
    for (const k of this.sshKeys.values()) {
      if (k.fingerprint === fingerprint) throw unprocessable('SSH Key is already in use on your account');
    }
    const key: SshKey = { id: this.nextSshKeyId++, name, publicKey: publicKey.trim(), fingerprint };
    this.sshKeys.set(key.id, key);
    return this.sshKeyObject(key);
  }

  private findSshKey(idOrFingerprint: string): SshKey {
    for (const k of this.sshKeys.values()) {
      if (String(k.id) === idOrFingerprint || k.fingerprint === idOrFingerprint) return k;
    }
    throw notFound();
  }

  getSshKey(idOrFingerprint: string): Record<string, unknown> {
    return this.sshKeyObject(this.findSshKey(idOrFingerprint));
  }

  updateSshKey(idOrFingerprint: string, body: unknown): Record<string, unknown> {
    const key = this.findSshKey(idOrFingerprint);
    const name = (body as { name?: unknown } | null)?.name;
    if (typeof name === 'string' && name !== '') key.name = name;
    return this.sshKeyObject(key);
  }

  deleteSshKey(idOrFingerprint: string): void {
    this.sshKeys.delete(this.findSshKey(idOrFingerprint).id);
  }

  listSshKeys(): Record<string, unknown>[] {
    return [...this.sshKeys.values()].map((k) => this.sshKeyObject(k));
  }

  private sshKeyObject(k: SshKey): Record<string, unknown> {
    return { id: k.id, fingerprint: k.fingerprint, public_key: k.publicKey, name: k.name };
  }

  // ---------- droplets ----------

  /** Creates one droplet per name (POST /v2/droplets, single or multi form). */
  createDroplets(body: unknown, multi: boolean): { droplets: Droplet[]; actions: Action[] } {
    const b = (body ?? {}) as Record<string, unknown>;
    const names: unknown[] = multi ? (Array.isArray(b.names) ? b.names : []) : [b.name];
    if (multi && (names.length === 0 || names.length > 10)) throw unprocessable('names must list between 1 and 10 Droplet names.');
    for (const name of names) {
      if (typeof name !== 'string' || name.length > 255 || !DROPLET_NAME_PATTERN.test(name)) {
        throw unprocessable(`You specified an invalid name for the Droplet: "${String(name)}". ` +
          'Names may contain letters, numbers, periods and dashes.');
      }
    }
    const region = typeof b.region === 'string' ? b.region : 'nyc3';
    if (!REGIONS.some((r) => r.slug === region)) throw unprocessable(`Region "${region}" is not available.`);
    if (typeof b.size !== 'string' || !SIZES.some((s) => s.slug === b.size)) {
      throw unprocessable(`Size "${String(b.size)}" is not available in this region.`);
    }
    const image = IMAGES.find((i) => i.slug === b.image || i.id === Number(b.image));
    if (!image) throw unprocessable(`You specified an invalid image for Droplet creation: "${String(b.image)}".`);
    const tags = b.tags === undefined || b.tags === null ? [] : b.tags;
    if (!Array.isArray(tags)) throw unprocessable('tags must be an array of strings.');
    const userData = b.user_data ?? '';
    if (typeof userData !== 'string') throw unprocessable('user_data must be a string.');
    if (Buffer.byteLength(userData) > 65536) throw unprocessable('user_data must be 64 KiB or less.');
    const sshKeysIn = b.ssh_keys ?? [];
    if (!Array.isArray(sshKeysIn)) throw unprocessable('ssh_keys must be an array of ids or fingerprints.');
    const sshKeyIds = sshKeysIn.map((k: unknown) => {
      try {
        return this.findSshKey(String(k)).id;
      } catch {
        throw unprocessable(`SSH key "${String(k)}" was not found on your account.`);
      }
    });
    if (b.vpc_uuid !== undefined && b.vpc_uuid !== '' &&
      (typeof b.vpc_uuid !== 'string' || !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(b.vpc_uuid))) {
      throw unprocessable(`vpc_uuid "${String(b.vpc_uuid)}" is not a valid VPC UUID.`);
    }
    const vpcUuid = typeof b.vpc_uuid === 'string' && b.vpc_uuid !== '' ? b.vpc_uuid : defaultVpcUuid(region);
    if (this.droplets.size + names.length > this.options.dropletLimit) {
      throw unprocessable(`creating this/these droplet(s) will exceed your droplet limit (${this.options.dropletLimit})`);
    }
    const canonicalTags = [...new Set((tags as unknown[]).map((t) => this.ensureTag(String(t))))];
    const created: Droplet[] = [];
    const actions: Action[] = [];
    for (const name of names as string[]) {
      const droplet: Droplet = {
        id: this.nextDropletId++,
        name,
        region,
        size: b.size,
        image: image.id,
        tags: [...canonicalTags],
        userData,
        vpcUuid,
        sshKeyIds,
        status: 'new',
        createdAt: isoNow(),
        publicIPv4: this.publicPool.allocate(),
        privateIPv4: this.privatePool.allocate(),
        anchorIPv4: this.anchorPool.allocate(),
        pending: new Set(),
        physicalHost: this.newPhysicalHost(),
        maintenanceEvent: '',
      };
      this.droplets.set(droplet.id, droplet);
      const action = this.newAction('create', 'droplet', droplet.id, region);
      droplet.pending.add(action.id);
      created.push(droplet);
      actions.push(action);
      this.options.log('info', 'droplet created', { id: droplet.id, name, tags: droplet.tags });
      this.boot(droplet, action);
    }
    return { droplets: created, actions };
  }

  private boot(droplet: Droplet, action: Action): void {
    const hook = this.options.hooks.onDropletCreated;
    const hookDone = hook ? this.runHook('onDropletCreated', () => hook(this.view(droplet))) : Promise.resolve();
    const started = Date.now();
    void hookDone.then(() => {
      const rest = Math.max(0, this.options.delays.dropletActiveMs - (Date.now() - started));
      this.later(rest, () => {
        if (!this.droplets.has(droplet.id)) return;
        droplet.status = 'active';
        droplet.pending.delete(action.id);
        this.complete(action);
        const death = this.options.dropletDeath();
        if (death && (death.tag === undefined || droplet.tags.includes(death.tag))) {
          this.later(death.afterMs, () => {
            if (this.droplets.has(droplet.id)) this.killDroplet(droplet.id);
          });
        }
      });
    });
  }

  /** Adds an already-running droplet (the sandbox's backends), with fixed addresses if given. */
  seedDroplet(input: {
    name: string; region?: string; size?: string; tags?: string[]; publicIPv4?: string; privateIPv4?: string; anchorIPv4?: string;
    /** ids or fingerprints of registered keys */ sshKeys?: string[];
  }): DropletView {
    const region = input.region ?? 'nyc3';
    const claim = (pool: AddressPool, ip: string | undefined) => {
      if (ip === undefined) return pool.allocate();
      pool.claim(ip);
      return ip;
    };
    const droplet: Droplet = {
      id: this.nextDropletId++,
      name: input.name,
      region,
      size: input.size ?? 's-1vcpu-1gb',
      image: IMAGES[0]!.id,
      tags: (input.tags ?? []).map((t) => this.ensureTag(t)),
      userData: '',
      vpcUuid: defaultVpcUuid(region),
      sshKeyIds: (input.sshKeys ?? []).map((k) => this.findSshKey(k).id),
      status: 'active',
      createdAt: isoNow(),
      publicIPv4: claim(this.publicPool, input.publicIPv4),
      privateIPv4: claim(this.privatePool, input.privateIPv4),
      anchorIPv4: claim(this.anchorPool, input.anchorIPv4),
      pending: new Set(),
      physicalHost: this.newPhysicalHost(),
      maintenanceEvent: '',
    };
    this.droplets.set(droplet.id, droplet);
    return this.view(droplet);
  }

  private droplet(id: number): Droplet {
    const d = this.droplets.get(id);
    if (!d) throw notFound();
    return d;
  }

  getDroplet(id: number): Record<string, unknown> {
    return this.dropletObject(this.droplet(id));
  }

  /** Droplets in creation order; `tag` is matched exactly, as DigitalOcean does. */
  listDroplets(filter: { tag?: string; name?: string }): Record<string, unknown>[] {
    let all = [...this.droplets.values()];
    if (filter.tag !== undefined) {
      const tag = filter.tag;
      all = all.filter((d) => d.tags.includes(tag));
    }
    if (filter.name !== undefined) {
      const name = filter.name.toLowerCase();
      all = all.filter((d) => d.name.toLowerCase() === name);
    }
    return all.map((d) => this.dropletObject(d));
  }

  deleteDroplet(id: number): void {
    this.removeDroplet(this.droplet(id));
  }

  deleteDropletsByTag(tag: string): void {
    if (!this.tags.has(tag)) throw notFound();
    for (const d of [...this.droplets.values()]) if (d.tags.includes(tag)) this.removeDroplet(d);
  }

  private removeDroplet(d: Droplet): void {
    this.droplets.delete(d.id);
    this.publicPool.release(d.publicIPv4);
    this.privatePool.release(d.privateIPv4);
    this.anchorPool.release(d.anchorIPv4);
    for (const f of this.firewalls.values()) f.dropletIds = f.dropletIds.filter((x) => x !== d.id);
    this.options.log('info', 'droplet deleted', { id: d.id, name: d.name });
    const view = this.view(d);
    const onDeleted = this.options.hooks.onDropletDeleted;
    if (onDeleted) void this.runHook('onDropletDeleted', () => onDeleted(view));
    for (const reserved of this.reservedIps.values()) {
      if (reserved.dropletId === d.id) {
        reserved.dropletId = null;
        const onChanged = this.options.hooks.onReservedIpAssignmentChanged;
        if (onChanged) {
          const change = { ip: reserved.ip, dropletId: null, previousDropletId: d.id };
          void this.runHook('onReservedIpAssignmentChanged', () => onChanged(change));
        }
      }
    }
  }

  /** Fault injection: the droplet powers off by itself (the host is gone or hung). */
  killDroplet(id: number): DropletView {
    const d = this.droplet(id);
    d.status = 'off';
    this.options.log('warn', 'droplet died', { id });
    const view = this.view(d);
    const hook = this.options.hooks.onDropletDied;
    if (hook) void this.runHook('onDropletDied', () => hook(view));
    return view;
  }

  dropletAction(id: number, body: unknown): Action {
    const d = this.droplet(id);
    const type = (body as { type?: unknown } | null)?.type;
    const supported = ['power_on', 'power_off', 'shutdown', 'reboot', 'power_cycle'];
    if (typeof type !== 'string' || !supported.includes(type)) {
      throw unprocessable(`Action type "${String(type)}" is not supported by this simulator (supported: ${supported.join(', ')}).`);
    }
    if (d.pending.size > 0) throw unprocessable('Droplet already has a pending event.');
    const action = this.newAction(type, 'droplet', d.id, d.region);
    d.pending.add(action.id);
    this.later(this.options.delays.dropletActionMs, () => {
      const off = type === 'power_off' || type === 'shutdown';
      // The host follows before the action reads completed, as a real droplet is off by then.
      const hook = this.options.hooks.onDropletPowerChanged;
      const view = this.view(d);
      const follow = !hook ? Promise.resolve()
        : off ? this.runHook('onDropletPowerChanged', () => hook(view, 'off'))
          : this.runHook('onDropletPowerChanged', () => hook(view, type === 'power_on' ? 'on' : 'reboot'));
      void follow.then(() => {
        d.pending.delete(action.id);
        d.status = off ? 'off' : 'active';
        this.complete(action);
      });
    });
    return action;
  }

  // ---------- physical hosts and maintenance ----------

  private newPhysicalHost(): string {
    return `hv-${this.nextPhysicalHost++}`;
  }

  /** Puts droplets on one physical machine (the first one's), as DigitalOcean's placement
   *  sometimes does: they become each other's neighbours. */
  placeOnOneHost(ids: readonly number[]): void {
    const droplets = ids.map((id) => this.droplet(id));
    for (const d of droplets) d.physicalHost = droplets[0]!.physicalHost;
    this.options.log('info', 'droplets placed on one physical host', { ids, physicalHost: droplets[0]?.physicalHost });
  }

  /** Moves a droplet to a physical machine by name (a new name: a machine of its own). */
  setPhysicalHost(id: number, physicalHost: string): void {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(physicalHost)) {
      throw badRequest('a physical host name is 1 to 64 letters, digits, dots, dashes or underscores');
    }
    this.droplet(id).physicalHost = physicalHost;
  }

  /** GET /v2/droplets/{id}/neighbors: the other droplets on the same physical machine. */
  neighbors(id: number): Record<string, unknown>[] {
    const d = this.droplet(id);
    return [...this.droplets.values()].filter((o) => o !== d && o.physicalHost === d.physicalHost).map((o) => this.dropletObject(o));
  }

  /** GET /v2/reports/droplet_neighbors_ids: one list of ids per physical machine that runs more
   *  than one of the account's droplets. */
  neighborIds(): number[][] {
    const byHost = new Map<string, number[]>();
    for (const d of this.droplets.values()) byHost.set(d.physicalHost, [...(byHost.get(d.physicalHost) ?? []), d.id]);
    return [...byHost.values()].filter((ids) => ids.length > 1).map((ids) => ids.sort((a, b) => a - b));
  }

  /** The droplet's metadata announces a maintenance event (DigitalOcean: live_migrate, at least
   *  10 minutes ahead), or nothing with ''. */
  announceMaintenance(id: number, event: string): void {
    if (!/^[a-z_]{0,64}$/.test(event)) {
      throw badRequest('a maintenance event is lower-case letters and underscores, such as live_migrate, or empty');
    }
    const d = this.droplet(id);
    d.maintenanceEvent = event;
    this.options.log('info', event ? 'maintenance event announced' : 'maintenance event withdrawn', { id, event });
    const hook = this.options.hooks.onMaintenanceEventChanged;
    if (hook) void this.runHook('onMaintenanceEventChanged', () => hook(this.view(d), event));
  }

  maintenanceEventOf(id: number): string {
    return this.droplet(id).maintenanceEvent;
  }

  private reservedIpOf(dropletId: number): ReservedIp | undefined {
    for (const r of this.reservedIps.values()) if (r.dropletId === dropletId) return r;
    return undefined;
  }

  dropletObject(d: Droplet): Record<string, unknown> {
    const size = SIZES.find((s) => s.slug === d.size) ?? SIZES[1]!;
    const image = IMAGES.find((i) => i.id === d.image) ?? IMAGES[0]!;
    const v4: Record<string, unknown>[] = [];
    if (d.status !== 'new') {
      v4.push({ ip_address: d.privateIPv4, netmask: this.privatePool.netmask, gateway: 'nil', type: 'private' });
      v4.push({ ip_address: d.publicIPv4, netmask: this.publicPool.netmask, gateway: this.publicPool.gateway, type: 'public' });
      // A reserved IP shows up as an extra public entry, after the droplet's own (as flipop relies on).
      const reserved = this.reservedIpOf(d.id);
      if (reserved) {
        v4.push({ ip_address: reserved.ip, netmask: this.reservedPool.netmask, gateway: this.reservedPool.gateway, type: 'public' });
      }
    }
    return {
      id: d.id,
      name: d.name,
      memory: size.memory,
      vcpus: size.vcpus,
      disk: size.disk,
      disk_info: [{ type: 'local', size: { amount: size.disk, unit: 'gib' } }],
      locked: false,
      status: d.status,
      kernel: null,
      created_at: d.createdAt,
      features: ['private_networking', 'droplet_agent'],
      backup_ids: [],
      next_backup_window: null,
      snapshot_ids: [],
      image: imageObject(image),
      volume_ids: [],
      size: sizeObject(size),
      size_slug: size.slug,
      networks: { v4, v6: [] },
      region: regionObject(d.region),
      tags: [...d.tags],
      vpc_uuid: d.vpcUuid,
    };
  }

  view(d: Droplet): DropletView {
    return {
      id: d.id,
      name: d.name,
      region: d.region,
      tags: [...d.tags],
      status: d.status,
      userData: d.userData,
      vpcUuid: d.vpcUuid,
      publicIPv4: d.publicIPv4,
      privateIPv4: d.privateIPv4,
      anchorIPv4: d.anchorIPv4,
      sshPublicKeys: d.sshKeyIds.map((id) => this.sshKeys.get(id)?.publicKey).filter((k): k is string => k !== undefined),
      image: (IMAGES.find((i) => i.id === d.image) ?? IMAGES[0]!).slug,
    };
  }

  dropletView(id: number): DropletView | undefined {
    const d = this.droplets.get(id);
    return d ? this.view(d) : undefined;
  }

  dropletViews(): DropletView[] {
    return [...this.droplets.values()].map((d) => this.view(d));
  }

  /** The reserved IPv4 on a droplet, for its metadata documents. */
  reservedIpOnDroplet(id: number): string | undefined {
    return this.reservedIpOf(id)?.ip;
  }

  // ---------- reserved IPs ----------

  private reservedIp(ip: string): ReservedIp {
    const r = this.reservedIps.get(ip);
    if (!r) throw notFound();
    return r;
  }

  reservedIpObject(r: ReservedIp): Record<string, unknown> {
    const droplet = r.dropletId === null ? undefined : this.droplets.get(r.dropletId);
    return {
      ip: r.ip,
      region: regionObject(r.region),
      droplet: droplet ? this.dropletObject(droplet) : null,
      locked: r.lockedBy !== null,
      project_id: r.projectId,
    };
  }

  getReservedIp(ip: string): Record<string, unknown> {
    return this.reservedIpObject(this.reservedIp(ip));
  }

  listReservedIps(): Record<string, unknown>[] {
    return [...this.reservedIps.values()].sort((a, b) => ipToInt(a.ip) - ipToInt(b.ip)).map((r) => this.reservedIpObject(r));
  }

  /** Who holds a reserved IP right now (for the sandbox's routing). */
  reservedIpHolder(ip: string): number | null | undefined {
    return this.reservedIps.get(ip)?.dropletId;
  }

  /** POST /v2/reserved_ips: `{region}` reserves one; `{droplet_id}` reserves one and assigns it. */
  createReservedIp(body: unknown, kind: string): { reservedIp: ReservedIp; action?: Action } {
    const b = (body ?? {}) as { region?: unknown; droplet_id?: unknown; project_id?: unknown };
    if (this.reservedIps.size >= this.options.reservedIpLimit) {
      throw unprocessable(
        `You have reached the limit of ${this.options.reservedIpLimit} ${kind === 'floating_ip' ? 'floating' : 'reserved'} IPs ` +
        'on your account.');
    }
    let region: string;
    let droplet: Droplet | undefined;
    if (b.droplet_id !== undefined) {
      droplet = this.droplets.get(Number(b.droplet_id));
      if (!droplet) throw unprocessable(`Droplet ${String(b.droplet_id)} was not found.`);
      this.checkAssignable(droplet);
      region = droplet.region;
    } else if (typeof b.region === 'string') {
      if (!REGIONS.some((r) => r.slug === b.region)) throw unprocessable(`Region "${b.region}" is not available.`);
      region = b.region;
    } else {
      throw unprocessable('Either droplet_id or region is required.');
    }
    const r: ReservedIp = {
      ip: this.reservedPool.allocate(),
      region,
      dropletId: null,
      projectId: typeof b.project_id === 'string' ? b.project_id : PROJECT_ID,
      lockedBy: null,
    };
    this.reservedIps.set(r.ip, r);
    this.options.log('info', 'reserved IP created', { ip: r.ip, region });
    if (!droplet) return { reservedIp: r };
    const action = this.startAssignment(r, droplet, kind);
    return { reservedIp: r, action };
  }

  private checkAssignable(droplet: Droplet): void {
    if (droplet.pending.size > 0) throw unprocessable('Droplet already has a pending event.');
    if (this.reservedIpOf(droplet.id)) throw unprocessable('Droplet already has a reserved IP assigned.');
  }

  /** Adds a reserved IP at once, optionally already on a droplet (sandbox set-up, benchmarks). */
  seedReservedIp(input: { region?: string; dropletId?: number; ip?: string }): string {
    const droplet = input.dropletId === undefined ? undefined : this.droplet(input.dropletId);
    if (droplet && this.reservedIpOf(droplet.id)) throw unprocessable('Droplet already has a reserved IP assigned.');
    const ip = input.ip ?? this.reservedPool.allocate();
    if (input.ip !== undefined) {
      if (this.reservedIps.has(ip)) throw unprocessable(`reserved IP ${ip} already exists`);
      this.reservedPool.claim(ip);
    }
    this.reservedIps.set(ip, {
      ip, region: droplet?.region ?? input.region ?? 'nyc3', dropletId: droplet?.id ?? null, projectId: PROJECT_ID, lockedBy: null,
    });
    return ip;
  }

  deleteReservedIp(ip: string, kind: string): void {
    const r = this.reservedIp(ip);
    if (r.lockedBy !== null) throw unprocessable(`The ${kind === 'floating_ip' ? 'floating' : 'reserved'} IP already has a pending event.`);
    this.reservedIps.delete(ip);
    this.reservedPool.release(ip);
    this.options.log('info', 'reserved IP deleted', { ip });
    if (r.dropletId !== null) {
      const onChanged = this.options.hooks.onReservedIpAssignmentChanged;
      const previous = r.dropletId;
      if (onChanged) {
        void this.runHook('onReservedIpAssignmentChanged', () => onChanged({ ip, dropletId: null, previousDropletId: previous }));
      }
    }
  }

  reservedIpAction(ip: string, body: unknown, kind: string): Action {
    const r = this.reservedIp(ip);
    const b = (body ?? {}) as { type?: unknown; droplet_id?: unknown };
    if (b.type !== 'assign' && b.type !== 'unassign') {
      throw unprocessable(`Action type "${String(b.type)}" is invalid: use assign or unassign.`);
    }
    if (r.lockedBy !== null) throw unprocessable(`The ${kind === 'floating_ip' ? 'floating' : 'reserved'} IP already has a pending event.`);
    if (b.type === 'unassign') {
      if (r.dropletId === null) {
        throw unprocessable(`The ${kind === 'floating_ip' ? 'floating' : 'reserved'} IP is not assigned to a Droplet.`);
      }
      return this.startAssignment(r, null, kind);
    }
    const droplet = this.droplets.get(Number(b.droplet_id));
    if (!droplet) throw unprocessable(`Droplet ${String(b.droplet_id)} was not found.`);
    if (droplet.region !== r.region) throw unprocessable('The Droplet and the reserved IP must be in the same region.');
    this.checkAssignable(droplet);
    return this.startAssignment(r, droplet, kind);
  }

  private startAssignment(r: ReservedIp, droplet: Droplet | null, kind: string): Action {
    const action = this.newAction(droplet ? 'assign_ip' : 'unassign_ip', kind, ipToInt(r.ip), r.region, r.ip);
    r.lockedBy = action.id;
    if (droplet) droplet.pending.add(action.id);
    this.later(this.options.delays.reservedIpActionMs, async () => {
      const previous = r.dropletId;
      const target = droplet && this.droplets.has(droplet.id) ? droplet.id : null;
      const hook = this.options.hooks.onReservedIpAssignmentChanged;
      if (hook && previous !== target) {
        await this.runHook('onReservedIpAssignmentChanged', () => hook({ ip: r.ip, dropletId: target, previousDropletId: previous }));
      }
      if (droplet) droplet.pending.delete(action.id);
      r.lockedBy = null;
      if (droplet && target === null) {
        this.complete(action, 'errored');
        return;
      }
      r.dropletId = target;
      this.options.log('info', 'reserved IP assignment changed', { ip: r.ip, dropletId: target, previousDropletId: previous });
      this.complete(action);
    });
    return action;
  }

  // ---------- firewalls ----------

  private firewall(id: string): Firewall {
    const f = this.firewalls.get(id);
    if (!f) throw notFound();
    return f;
  }

  private checkRules(inbound: unknown, outbound: unknown): { inbound: FirewallInbound[]; outbound: FirewallOutbound[] } {
    const check = (rules: unknown, side: 'inbound_rules' | 'outbound_rules', key: 'sources' | 'destinations') => {
      if (rules === undefined || rules === null) return [];
      if (!Array.isArray(rules)) throw badRequest(`${side} must be an array`);
      return rules.map((rule: Record<string, unknown>, i: number) => {
        if (!['tcp', 'udp', 'icmp'].includes(String(rule?.protocol))) throw badRequest(`${side}[${i}].protocol must be tcp, udp or icmp`);
        const ports = rule.protocol === 'icmp' ? '0' : String(rule.ports ?? '');
        if (!/^(\d{1,5}(-\d{1,5})?|all)$/.test(ports)) throw badRequest(`${side}[${i}].ports must be a port, a range or "0"`);
        const targets = (rule[key] ?? {}) as FirewallRuleTargets;
        for (const t of targets.tags ?? []) {
          if (!this.tags.has(t)) throw badRequest(`${side}[${i}].${key}.tags: tag "${t}" does not exist`);
        }
        return { protocol: String(rule.protocol), ports: ports === 'all' ? '0' : ports, [key]: targets };
      });
    };
    return {
      inbound: check(inbound, 'inbound_rules', 'sources') as unknown as FirewallInbound[],
      outbound: check(outbound, 'outbound_rules', 'destinations') as unknown as FirewallOutbound[],
    };
  }

  private checkFirewallTargets(dropletIds: unknown, tags: unknown): { dropletIds: number[]; tags: string[] } {
    const ids = dropletIds === undefined || dropletIds === null ? [] : dropletIds;
    const names = tags === undefined || tags === null ? [] : tags;
    if (!Array.isArray(ids)) throw badRequest('droplet_ids must be an array of integers');
    if (!Array.isArray(names)) throw badRequest('tags must be an array of strings');
    for (const id of ids) if (!this.droplets.has(Number(id))) throw badRequest(`droplet_ids: droplet ${String(id)} does not exist`);
    for (const t of names) if (!this.tags.has(String(t))) throw badRequest(`tags: tag "${String(t)}" does not exist`);
    return { dropletIds: ids.map(Number), tags: names.map(String) };
  }

  createFirewall(body: unknown): Record<string, unknown> {
    const b = (body ?? {}) as Record<string, unknown>;
    if (typeof b.name !== 'string' || !FIREWALL_NAME_PATTERN.test(b.name)) {
      throw badRequest('name must start with a letter or digit and contain only letters, digits, periods and dashes');
    }
    if (b.inbound_rules === undefined && b.outbound_rules === undefined) {
      throw badRequest('at least one of inbound_rules or outbound_rules is required');
    }
    const rules = this.checkRules(b.inbound_rules, b.outbound_rules);
    const targets = this.checkFirewallTargets(b.droplet_ids, b.tags);
    const f: Firewall = { id: randomUUID(), name: b.name, createdAt: isoNow(), ...targets, ...rules };
    this.firewalls.set(f.id, f);
    return this.firewallObject(f);
  }

  updateFirewall(id: string, body: unknown): Record<string, unknown> {
    const f = this.firewall(id);
    const b = (body ?? {}) as Record<string, unknown>;
    if (typeof b.name !== 'string' || !FIREWALL_NAME_PATTERN.test(b.name)) {
      throw badRequest('name must start with a letter or digit and contain only letters, digits, periods and dashes');
    }
    // PUT replaces the whole firewall: anything left out goes back to its default.
    const rules = this.checkRules(b.inbound_rules, b.outbound_rules);
    const targets = this.checkFirewallTargets(b.droplet_ids, b.tags);
    Object.assign(f, { name: b.name, ...rules, ...targets });
    return this.firewallObject(f);
  }

  getFirewall(id: string): Record<string, unknown> {
    return this.firewallObject(this.firewall(id));
  }

  listFirewalls(): Record<string, unknown>[] {
    return [...this.firewalls.values()].sort((a, b) => a.createdAt.localeCompare(b.createdAt)).map((f) => this.firewallObject(f));
  }

  deleteFirewall(id: string): void {
    this.firewall(id);
    this.firewalls.delete(id);
  }

  firewallMembers(id: string, body: unknown, what: 'droplets' | 'tags', add: boolean): void {
    const f = this.firewall(id);
    const b = (body ?? {}) as Record<string, unknown>;
    if (what === 'droplets') {
      const { dropletIds } = this.checkFirewallTargets(b.droplet_ids, undefined);
      if (dropletIds.length === 0) throw badRequest('droplet_ids must not be empty');
      f.dropletIds = add ? [...new Set([...f.dropletIds, ...dropletIds])] : f.dropletIds.filter((x) => !dropletIds.includes(x));
    } else {
      const { tags } = add ? this.checkFirewallTargets(undefined, b.tags) : { tags: Array.isArray(b.tags) ? b.tags.map(String) : [] };
      if (tags.length === 0) throw badRequest('tags must not be empty');
      f.tags = add ? [...new Set([...f.tags, ...tags])] : f.tags.filter((x) => !tags.includes(x));
    }
  }

  firewallRules(id: string, body: unknown, add: boolean): void {
    const f = this.firewall(id);
    const b = (body ?? {}) as Record<string, unknown>;
    const rules = this.checkRules(b.inbound_rules, b.outbound_rules);
    const same = (a: unknown, c: unknown) => JSON.stringify(a) === JSON.stringify(c);
    if (add) {
      f.inbound.push(...rules.inbound);
      f.outbound.push(...rules.outbound);
    } else {
      f.inbound = f.inbound.filter((r) => !rules.inbound.some((x) => same(x, r)));
      f.outbound = f.outbound.filter((r) => !rules.outbound.some((x) => same(x, r)));
    }
  }

  private firewallObject(f: Firewall): Record<string, unknown> {
    return {
      id: f.id,
      status: 'succeeded',
      created_at: f.createdAt,
      pending_changes: [],
      name: f.name,
      droplet_ids: [...f.dropletIds],
      tags: [...f.tags],
      inbound_rules: f.inbound,
      outbound_rules: f.outbound,
    };
  }

  // ---------- account ----------

  account(): Record<string, unknown> {
    return {
      droplet_limit: this.options.dropletLimit,
      floating_ip_limit: this.options.reservedIpLimit,
      email: 'sandbox@halb.invalid',
      name: 'halb sandbox',
      uuid: 'b6f889dbf6d9156cace5f3c78dc9851d957381ef',
      email_verified: true,
      status: 'active',
      status_message: '',
    };
  }
}

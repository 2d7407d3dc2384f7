// One reconcile of one HALoadBalancer, level-based: re-read the object, observe DigitalOcean and
// the hosts into one value, plan with pure functions, act idempotently, write status once if it
// changed. Errors throw (the queue retries with backoff); waiting on DigitalOcean or a host is
// a timed requeue; an invalid spec is a condition and nothing else.
import * as k8s from '@kubernetes/client-node';
import ssh2 from 'ssh2';
import { GROUP, PLURAL, VERSION } from '../api/schema.ts';
import { networkCIDR, nodeName, referencedSecrets } from '../api/derived.ts';
import { validateSemantics, type Problem } from '../api/validate.ts';
import type { HALoadBalancer, HALoadBalancerStatus, SecretData, StoredHALoadBalancer } from '../api/types.ts';
import { withDefaults } from '../api/defaults.ts';
import { DigitalOceanProvider, DigitalOceanError, type Inventory, type NodeDroplet } from '../digitalocean/provider.ts';
import type { ApiFirewall } from '../digitalocean/firewalls.ts';
import { cloudInit } from '../digitalocean/cloud-init.ts';
import { uidTag } from '../digitalocean/naming.ts';
import { HostAgent, HostKeyChangedError, type HostState } from '../hosts/agent.ts';
import { renderSshdDropIn } from '../render/hardening.ts';
import { DEFAULT_PATHS, renderNodes, defaultSettings, RenderError, type ObservedFacts, type RenderSettings, type RenderedNode } from '../render/index.ts';
import type { Logger } from '../log.ts';
import type { EventRecorder } from './events.ts';
import type { Observed, ObservedHost } from './observed.ts';
import { certificateExpiries, type CertificateExpiry } from './certificates.ts';
import { conditionTypes as T } from './conditions.ts';
import { plan, type Action } from './plan.ts';
import { computeStatus, invalidSpecStatus, statusChanged } from './status.ts';
import type { OperatorMetrics } from './telemetry.ts';
import type { ReconcileResult } from './workqueue.ts';

export const FINALIZER = 'halb.dev/cleanup';

export interface ReconcilerOptions {
  /** DigitalOcean API base for the operator, with /v2 (default https://api.digitalocean.com/v2). */
  doEndpoint?: string;
  /** Render settings: the API base the failover script calls, metadata URL, versions. */
  render?: Partial<RenderSettings>;
  /** How often converged objects are looked at again (drift, failovers). */
  resyncIntervalMs: number;
  /** How long the reserved IP may sit on a non-MASTER before the operator moves it. */
  backstopGraceMs: number;
  /** DigitalOcean polling; tests and the sandbox shorten it. */
  doWait?: { intervalMs?: number; maxIntervalMs?: number; timeoutMs?: number };
  sshTimeoutMs?: number;
  /** Where a node's SSH server is reached, from its droplet's public IPv4 (default: that
   *  address, port 22). Only the scale benchmark sets it, to reach its loopback stand-in hosts. */
  sshEndpoint?: (publicIPv4: string) => { host: string; port: number };
  /** Shared DigitalOcean inventory is reused at least this long across objects (default 2000);
   *  longer on large accounts, see inventoryMaxAgeMs(). */
  inventoryMaxAgeMs?: number;
}

export interface ReconcilerDeps {
  kc: k8s.KubeConfig;
  log: Logger;
  events: EventRecorder;
  metrics: OperatorMetrics;
  options: ReconcilerOptions;
  now?: () => Date;
}

/** A problem only the user can fix: reported as a condition, not retried with backoff. */
class SpecProblem extends Error {
  readonly problems: Problem[];
  readonly reason: string;
  /** Look again later: a missing Secret may be created without the object changing. */
  readonly recheckMs: number | undefined;
  constructor(problems: Problem[], reason = 'InvalidSpec', recheckMs?: number) {
    super(problems.map((p) => `${p.path}: ${p.message}`).join('; '));
    this.problems = problems;
    this.reason = reason;
    this.recheckMs = recheckMs;
  }
}

const SECRET_RECHECK_MS = 30_000;
const CLOUD_RECHECK_MS = 60_000;

function decodeSecret(secret: k8s.V1Secret): SecretData {
  const data: Record<string, string> = {};
  for (const [k, v] of Object.entries(secret.data ?? {})) data[k] = Buffer.from(v, 'base64').toString('utf8');
  const out: SecretData = { name: secret.metadata?.name ?? '', data };
  if (secret.metadata?.namespace) out.namespace = secret.metadata.namespace;
  if (secret.type) out.type = secret.type;
  return out;
}

/** The OpenSSH public key line for a private key (PEM or OpenSSH format). */
export function publicKeyOf(privateKey: string): string {
  const parsed = ssh2.utils.parseKey(privateKey);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key instanceof Error) throw new Error(`the SSH private key cannot be read: ${key instanceof Error ? key.message : 'no key'}`);
  return `${key.type} ${key.getPublicSSH().toString('base64')} halb-operator`;
}

/** How long an inventory is reused per page it cost: at most one list page every 2 s. */
const INVENTORY_MS_PER_PAGE = 2000;

/**
 * How long one DigitalOcean inventory is shared across objects. Looking again costs a request
 * per page (200 droplets or reserved IPs), so a large account reuses it longer: at most about
 * one page every 2 s, whatever the number of objects (at 1,000 objects, 15 pages: one inventory
 * per 15 s instead of one per 2 s, which alone would be 450 requests a minute, over the 250
 * DigitalOcean allows). Never longer than half the backstop grace, so the reserved IP's holder
 * the backstop acts on was read after the grace began. `floorMs` (inventoryMaxAgeMs) wins.
 */
export function inventoryMaxAgeMs(pages: number, floorMs: number, backstopGraceMs: number): number {
  return Math.max(floorMs, Math.min(pages * INVENTORY_MS_PER_PAGE, backstopGraceMs / 2));
}

interface SharedRead<T> { at: number; value: Promise<T>; maxAgeMs: number }

export class Reconciler {
  private readonly kc: k8s.KubeConfig;
  private readonly co: k8s.CustomObjectsApi;
  private readonly core: k8s.CoreV1Api;
  private readonly log: Logger;
  private readonly events: EventRecorder;
  private readonly metrics: OperatorMetrics;
  private readonly options: ReconcilerOptions;
  private readonly now: () => Date;
  private readonly providers = new Map<string, DigitalOceanProvider>();
  private readonly inventories = new Map<DigitalOceanProvider, SharedRead<Inventory>>();
  private readonly firewallLists = new Map<DigitalOceanProvider, SharedRead<ApiFirewall[]>>();
  private readonly backstopSince = new Map<string, Date>();
  private readonly masterDownSince = new Map<string, Date>();
  private readonly certificateSeries = new Map<string, CertificateExpiry[]>();
  /** The SSH private key that last logged in to each droplet, for key rotations. */
  private readonly loginKeys = new Map<number, string>();
  /** The spec generation whose backend firewalls were last reconciled, by object UID. */
  private readonly firewallsSyncedAt = new Map<string, number>();

  constructor(deps: ReconcilerDeps) {
    this.kc = deps.kc;
    this.co = deps.kc.makeApiClient(k8s.CustomObjectsApi);
    this.core = deps.kc.makeApiClient(k8s.CoreV1Api);
    this.log = deps.log;
    this.events = deps.events;
    this.metrics = deps.metrics;
    this.options = deps.options;
    this.now = deps.now ?? (() => new Date());
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const [namespace = 'default', name = ''] = key.split('/');
    const started = process.hrtime.bigint();
    try {
      const result = await this.reconcileObject(namespace, name);
      this.metrics.reconciles.inc({ result: result.invalid ? 'invalid' : 'success' });
      return result.requeueAfterMs === undefined ? {} : { requeueAfterMs: result.requeueAfterMs };
    } catch (err) {
      this.metrics.reconciles.inc({ result: 'error' });
      this.metrics.reconcileErrors.inc({ kind: err instanceof DigitalOceanError ? err.kind : 'transient' });
      throw err;
    } finally {
      this.metrics.reconcileSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
    }
  }

  private async get(namespace: string, name: string): Promise<HALoadBalancer | undefined> {
    try {
      const stored = await this.co.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL, name }) as StoredHALoadBalancer;
      // The CRD has no defaults inside list items (they would make GitOps tools see drift): apply them here.
      return { ...stored, spec: withDefaults(stored.spec) };
    } catch (err) {
      if ((err as { code?: number }).code === 404) return undefined;
      throw err;
    }
  }

  private async reconcileObject(namespace: string, name: string): Promise<{ requeueAfterMs?: number; invalid?: boolean }> {
    const object = await this.get(namespace, name);
    if (!object) {
      this.backstopSince.delete(`${namespace}/${name}`);
      this.masterDownSince.delete(`${namespace}/${name}`);
      return {};
    }
    const log = this.log.child({ halb: `${namespace}/${name}` });
    if (object.metadata.deletionTimestamp) {
      this.recordCertificates(`${namespace}/${name}`, []);
      return this.finalize(object, log);
    }

    // 1. Finalizer first, so nothing is created that deletion would not clean up.
    if (!object.metadata.finalizers?.includes(FINALIZER)) {
      await this.patchMeta(object, { finalizers: [...(object.metadata.finalizers ?? []), FINALIZER] });
      return { requeueAfterMs: 0 };
    }

    try {
      return await this.converge(object, log).catch((err: unknown) => {
        // DigitalOcean refused for good (a missing token scope, an invalid request): a person
        // must act, so it is a condition naming the cause, looked at again now and then.
        if (err instanceof DigitalOceanError && err.kind === 'terminal') {
          throw new SpecProblem([{ path: '', message: `DigitalOcean refused: ${err.message}` }], 'CloudRequestRefused', CLOUD_RECHECK_MS);
        }
        throw err;
      });
    } catch (err) {
      if (!(err instanceof SpecProblem)) throw err;
      await this.writeStatus(object, invalidSpecStatus(object, err.problems, this.now().toISOString(), err.reason));
      log.info({ problems: err.problems, reason: err.reason }, 'refused spec');
      return err.recheckMs === undefined ? { invalid: true } : { invalid: true, requeueAfterMs: err.recheckMs };
    }
  }

  private async converge(object: HALoadBalancer, log: Logger): Promise<{ requeueAfterMs?: number }> {
    const namespace = object.metadata.namespace ?? 'default';
    const name = object.metadata.name;
    // 2. Secrets and the semantic rules: an invalid spec touches nothing outside Kubernetes.
    const secrets = await this.readSecrets(object);
    const problems = validateSemantics(object, (n) => secrets.find((s) => s.name === n));
    if (problems.length) throw new SpecProblem(problems);

    const spec = object.spec;
    const token = this.secretValue(secrets, spec.credentials.tokenSecretRef);
    const privateKey = this.secretValue(secrets, spec.credentials.sshKeySecretRef);
    // During an SSH key rotation the old key may sit next to the new one, under `<key>.previous`:
    // the operator then still reaches nodes that lack the new key, even after a restart.
    const previousKey = secrets.find((s) => s.name === spec.credentials.sshKeySecretRef.name)?.data[`${spec.credentials.sshKeySecretRef.key}.previous`]?.replace(/\r?\n$/, '');
    const provider = this.provider(token);
    const uid = object.metadata.uid ?? '';

    // 3. Observe DigitalOcean (one shared inventory per resync) and the hosts.
    const inventory = await this.inventory(provider);
    const droplets = inventory.nodesByUid.get(uid) ?? [];
    const reservedIP = spec.floatingIP.address
      ? inventory.reservedIpByAddress.get(spec.floatingIP.address)
      : droplets.map((d) => inventory.reservedIpByDroplet.get(d.id)).find((r) => r !== undefined);
    const agents = new Map<string, HostAgent>();
    try {
      const hostStates = await this.observeHosts(object, droplets, [privateKey, ...(previousKey ? [previousKey] : [])], agents, log);
      const observed: Observed = {
        droplets: droplets.map((d) => ({ ...d })),
        hosts: Object.fromEntries([...hostStates].map(([n, h]) => [n, h.observed])),
        ...(reservedIP ? { reservedIP: { ip: reservedIP.ip, dropletId: reservedIP.dropletId, locked: reservedIP.locked } } : {}),
      };

      // 4. Desired files, once every node's addresses are known. Tagged backends are looked up
      //    each pass, so droplets joining or leaving a tag reach the config.
      const tags = [...new Set(spec.backends.map((b) => b.dropletTag).filter((t) => t !== ''))];
      const taggedDroplets = Object.fromEntries(await Promise.all(tags.map(async (t) => [t, await provider.taggedDroplets(t)] as const)));
      const peopleKeys = await provider.sshPublicKeys(spec.droplets.sshKeys).catch((err: unknown) => {
        if (err instanceof DigitalOceanError && err.status === 404) throw new SpecProblem([{ path: 'spec.droplets.sshKeys', message: `names a key that is not in this DigitalOcean account: ${err.message}` }], 'InvalidSpec', CLOUD_RECHECK_MS);
        throw err;
      });
      const operatorKey = publicKeyOf(privateKey);
      const authorizedKeys = (loginKey: string | undefined) => [operatorKey, ...(loginKey && loginKey !== privateKey ? [publicKeyOf(loginKey)] : []), ...peopleKeys];
      const rendered = this.render(object, secrets, observed, droplets, hostStates, taggedDroplets, authorizedKeys, log);
      const desiredHashes = Object.fromEntries(rendered.map((r) => [r.name, r.configHash]));

      // 5. Plan (pure) and act.
      const key = `${namespace}/${name}`;
      const planned = plan({
        object, observed, desiredHashes, now: this.now(), backstopGraceMs: this.options.backstopGraceMs,
        ...(this.backstopSince.has(key) ? { backstopSince: this.backstopSince.get(key)! } : {}),
        ...(this.masterDownSince.has(key) ? { masterHAProxyDownSince: this.masterDownSince.get(key)! } : {}),
      });
      if (planned.backstopSince) this.backstopSince.set(key, planned.backstopSince);
      else this.backstopSince.delete(key);
      if (planned.masterHAProxyDownSince) this.masterDownSince.set(key, planned.masterHAProxyDownSince);
      else this.masterDownSince.delete(key);
      const acted = await this.act(object, planned.actions, { provider, secrets, privateKey, droplets, rendered, agents, hostStates, observed, log });
      await this.reconcileBackendFirewalls(object, provider, log);

      // 6. Status, once, from what was observed and what acting changed.
      const certificates = certificateExpiries(spec, secrets);
      const status = computeStatus({ object, observed, desiredHashes, now: this.now().toISOString(), certificates });
      this.recordCertificates(`${namespace}/${name}`, certificates);
      await this.noticeFailover(object, status, log);
      await this.noticeWarnings(object, status);
      await this.writeStatus(object, status);
      this.recordNodeMetrics(object, status);
      // After acting, look again soon: the next step usually waits on what was just done.
      if (acted) return { requeueAfterMs: Math.min(planned.requeueAfterMs ?? 500, 500) };
      return { requeueAfterMs: planned.requeueAfterMs ?? this.options.resyncIntervalMs };
    } finally {
      for (const agent of agents.values()) agent.dispose();
    }
  }

  /** One expiry series per TLS frontend of the object; series of removed frontends go. */
  private recordCertificates(key: string, certificates: CertificateExpiry[]): void {
    const [namespace = '', name = ''] = key.split('/');
    for (const c of this.certificateSeries.get(key) ?? []) this.metrics.certificateExpiry.remove({ namespace, name, frontend: c.frontend, secret: c.secret });
    for (const c of certificates) this.metrics.certificateExpiry.set({ namespace, name, frontend: c.frontend, secret: c.secret }, Date.parse(c.notAfter) / 1000);
    if (certificates.length) this.certificateSeries.set(key, certificates);
    else this.certificateSeries.delete(key);
  }

  private async readSecrets(object: HALoadBalancer): Promise<SecretData[]> {
    const names = referencedSecrets(object.spec);
    const namespace = object.metadata.namespace ?? 'default';
    const out: SecretData[] = [];
    const missing: string[] = [];
    for (const name of names) {
      try {
        out.push(decodeSecret(await this.core.readNamespacedSecret({ name, namespace })));
      } catch (err) {
        if ((err as { code?: number }).code === 404) missing.push(name);
        else throw err;
      }
    }
    if (missing.length) throw new SpecProblem(missing.map((n) => ({ path: 'spec', message: `Secret ${JSON.stringify(n)} not found in namespace ${namespace}` })), 'SecretNotFound', SECRET_RECHECK_MS);
    return out;
  }

  private secretValue(secrets: SecretData[], ref: { name: string; key: string }): string {
    const value = secrets.find((s) => s.name === ref.name)?.data[ref.key];
    if (value === undefined) throw new SpecProblem([{ path: 'spec', message: `Secret ${ref.name} has no key ${ref.key}` }], 'SecretNotFound', SECRET_RECHECK_MS);
    return value.replace(/\r?\n$/, '');
  }

  private provider(token: string): DigitalOceanProvider {
    let p = this.providers.get(token);
    if (!p) {
      p = new DigitalOceanProvider({
        token,
        ...(this.options.doEndpoint ? { endpoint: this.options.doEndpoint } : {}),
        logger: this.log.child({ component: 'digitalocean' }),
        ...(this.options.doWait ? { wait: this.options.doWait } : {}),
      });
      this.providers.set(token, p);
    }
    return p;
  }

  private inventory(provider: DigitalOceanProvider): Promise<Inventory> {
    return this.shared(this.inventories, provider, () => provider.observe(), (inventory) => inventory.pages);
  }

  /** Every firewall of the account, shared across objects like the inventory (one list serves
   *  all: a backend firewall's name carries its owner's UID); dropped when one is changed. */
  private firewallList(provider: DigitalOceanProvider): Promise<ApiFirewall[]> {
    return this.shared(this.firewallLists, provider, () => provider.listFirewalls(), (list) => Math.max(1, Math.ceil(list.length / 200)));
  }

  /** One read of an account-wide list serves every object for a while: longer the more pages
   *  it cost (inventoryMaxAgeMs). A failed read is forgotten at once. */
  private shared<T>(cache: Map<DigitalOceanProvider, SharedRead<T>>, provider: DigitalOceanProvider, load: () => Promise<T>, pages: (value: T) => number): Promise<T> {
    const cached = cache.get(provider);
    if (cached && Date.now() - cached.at < cached.maxAgeMs) return cached.value;
    const floorMs = this.options.inventoryMaxAgeMs ?? 2000;
    const value = load();
    const entry: SharedRead<T> = { at: Date.now(), value, maxAgeMs: floorMs };
    cache.set(provider, entry);
    value.then(
      (v) => { entry.maxAgeMs = inventoryMaxAgeMs(pages(v), floorMs, this.options.backstopGraceMs); },
      () => { if (cache.get(provider) === entry) cache.delete(provider); },
    );
    return value;
  }

  /**
   * Connects with the first key a node takes: the Secret's key, then the previous one (the
   * Secret's `.previous`, or the key that last worked on this droplet). A node reached with an
   * older key gets the new one added to its authorized_keys; once the new key works there, the
   * old one is dropped. So access holds at every step of a rotation.
   */
  private async connect(d: NodeDroplet, keys: string[], pin: string | undefined, log: Logger): Promise<{ agent: HostAgent; loginKey: string }> {
    const remembered = this.loginKeys.get(d.id);
    const candidates = [...new Set([...keys, ...(remembered ? [remembered] : [])])];
    for (const [i, privateKey] of candidates.entries()) {
      try {
        const endpoint = this.options.sshEndpoint?.(d.publicIPv4!) ?? { host: d.publicIPv4!, port: 22 };
        const agent = await HostAgent.connect({ host: endpoint.host, port: endpoint.port, privateKey, ...(pin ? { pinnedHostKey: pin } : {}), timeoutMs: this.options.sshTimeoutMs ?? 10_000 });
        this.loginKeys.set(d.id, privateKey);
        if (i > 0) log.info({ node: d.name }, 'connected with the previous SSH key');
        return { agent, loginKey: privateKey };
      } catch (err) {
        const refusedKey = /authentication methods failed/i.test((err as Error).message);
        if (!refusedKey || i === candidates.length - 1) throw err;
      }
    }
    throw new Error('no SSH key to try');
  }

  private async observeHosts(object: HALoadBalancer, droplets: NodeDroplet[], keys: string[], agents: Map<string, HostAgent>, log: Logger): Promise<Map<string, { observed: ObservedHost; state?: HostState; loginKey?: string }>> {
    const out = new Map<string, { observed: ObservedHost; state?: HostState; loginKey?: string }>();
    const pins = new Map((object.status?.nodes ?? []).map((n) => [n.name, n]));
    await Promise.all(droplets.filter((d) => d.status === 'active' && d.publicIPv4).map(async (d) => {
      const name = d.name;
      const pinned = pins.get(name);
      const pin = pinned?.dropletID === d.id ? pinned.hostKey : undefined;
      try {
        const { agent, loginKey } = await this.connect(d, keys, pin, log);
        agents.set(name, agent);
        const state = await agent.readState(this.options.render?.metadataBaseURL);
        const observed: ObservedHost = {
          reachable: state.booted,
          hostKey: agent.hostKey,
          haproxyRunning: state.haproxyRunning,
          keepalivedRunning: state.keepalivedRunning,
          firewallLoaded: state.firewallLoaded,
          ...(state.sshClientAddress ? { operatorAddress: state.sshClientAddress } : {}),
          ...(state.sshd ? { sshd: state.sshd } : {}),
          ...(state.booted ? {} : { error: 'cloud-init has not finished' }),
        };
        for (const field of ['vrrpState', 'configHash', 'anchorIPv4', 'privateIPv4', 'keepalivedVersion', 'haproxyVersion', 'servers'] as const) {
          if (state[field] !== undefined) (observed as unknown as Record<string, unknown>)[field] = state[field];
        }
        out.set(name, { observed, state, loginKey });
      } catch (err) {
        if (err instanceof HostKeyChangedError) out.set(name, { observed: { reachable: false, hostKeyChanged: true, error: err.message } });
        else out.set(name, { observed: { reachable: false, error: (err as Error).message } });
      }
    }));
    return out;
  }

  private render(object: HALoadBalancer, secrets: SecretData[], observed: Observed, droplets: NodeDroplet[], hosts: Map<string, { observed: ObservedHost; loginKey?: string }>,
    taggedDroplets: NonNullable<ObservedFacts['taggedDroplets']>, authorizedKeys: (loginKey: string | undefined) => string[], log: Logger): RenderedNode[] {
    if (!observed.reservedIP) return [];
    const nodes = [];
    const versions: RenderSettings['versions'] = {};
    for (let index = 0; index < object.spec.droplets.count; index++) {
      const name = nodeName(object.metadata.name, index);
      const droplet = droplets.filter((d) => d.index === index).sort((a, b) => a.id - b.id)[0];
      const host = hosts.get(name)?.observed;
      const privateIPv4 = host?.privateIPv4 ?? droplet?.privateIPv4;
      if (!droplet || !privateIPv4 || !host?.anchorIPv4) return []; // not all facts yet
      nodes.push({
        name, dropletID: droplet.id, privateIPv4, anchorIPv4: host.anchorIPv4, ...(droplet.publicIPv4 ? { publicIPv4: droplet.publicIPv4 } : {}),
        authorizedKeys: authorizedKeys(hosts.get(name)?.loginKey),
      });
      if (host.keepalivedVersion && host.haproxyVersion) versions[name] = { keepalived: host.keepalivedVersion, haproxy: host.haproxyVersion };
    }
    const vpc = droplets.find((d) => d.privateIPv4 && d.privateNetmask);
    const vpcCIDR = vpc ? networkCIDR(vpc.privateIPv4!, vpc.privateNetmask!) : undefined;
    const facts: ObservedFacts = { floatingIP: observed.reservedIP.ip, nodes, taggedDroplets, ...(vpcCIDR ? { vpcCIDR } : {}) };
    try {
      return renderNodes({ lb: object, secrets, observed: facts, settings: defaultSettings({ ...this.options.render, versions }) });
    } catch (err) {
      if (err instanceof RenderError) throw new SpecProblem([{ path: '', message: err.message }]);
      log.error({ err }, 'render failed');
      throw err;
    }
  }

  /** Carries out the plan's actions; returns whether anything was changed. */
  private async act(object: HALoadBalancer, actions: Action[], ctx: {
    provider: DigitalOceanProvider; secrets: SecretData[]; privateKey: string; droplets: NodeDroplet[];
    rendered: RenderedNode[]; agents: Map<string, HostAgent>; hostStates: Map<string, { observed: ObservedHost; state?: HostState }>;
    observed: Observed; log: Logger;
  }): Promise<boolean> {
    const { provider, log } = ctx;
    const spec = object.spec;
    const uid = object.metadata.uid ?? '';
    let changedCloud = false;
    let changed = false;
    if (actions.some((a) => a.kind === 'CreateDroplet')) {
      const fingerprint = await provider.ensureSshKey(publicKeyOf(ctx.privateKey), `halb-operator-${uid.slice(0, 8)}`);
      const result = await provider.ensureDroplets({
        uid, objectName: object.metadata.name, count: spec.droplets.count, region: spec.region, size: spec.droplets.size,
        image: spec.droplets.image, ...(spec.vpcUUID ? { vpcUUID: spec.vpcUUID } : {}), sshKeys: [fingerprint, ...spec.droplets.sshKeys],
        extraTags: spec.droplets.tags, userData: (node) => cloudInit({ objectName: object.metadata.name, nodeName: node, sshdDropIn: { path: DEFAULT_PATHS.sshdConfig, content: renderSshdDropIn() } }),
      });
      for (const id of result.created) {
        const node = result.nodes.find((n) => n.id === id);
        await this.events.record(object, 'Normal', 'DropletCreated', `created droplet ${node?.name ?? id} (id ${id})`);
        log.info({ node: node?.name, dropletId: id }, 'created droplet');
      }
      changedCloud = changed = true;
    }
    for (const action of actions) {
      switch (action.kind) {
        case 'CreateDroplet':
          break; // done above, all at once
        case 'DeleteDroplet':
          await provider.deleteDroplet(action.dropletId);
          await this.events.record(object, 'Normal', 'DropletDeleted', `deleted droplet ${action.node} (id ${action.dropletId}): ${action.reason}`);
          log.info({ node: action.node, dropletId: action.dropletId, reason: action.reason }, 'deleted droplet');
          changedCloud = changed = true;
          break;
        case 'CreateReservedIP':
        case 'AdoptReservedIP': {
          const nodes = ctx.droplets.filter((d) => d.index < spec.droplets.count).sort((a, b) => a.index - b.index);
          const rip = await provider.ensureReservedIp({ ...(action.kind === 'AdoptReservedIP' ? { address: action.ip } : {}), region: spec.region, nodes });
          await this.events.record(object, 'Normal', action.kind === 'AdoptReservedIP' ? 'ReservedIPAdopted' : 'ReservedIPCreated', `reserved IP ${rip.ip}${rip.dropletId ? ` on droplet ${rip.dropletId}` : ''}`);
          log.info({ ip: rip.ip }, action.kind === 'AdoptReservedIP' ? 'adopted reserved IP' : 'created reserved IP');
          changedCloud = changed = true;
          break;
        }
        case 'AssignReservedIP':
          await provider.assignReservedIp(action.ip, action.dropletId);
          await this.events.record(object, action.reason === 'Backstop' ? 'Warning' : 'Normal', action.reason === 'Backstop' ? 'ReservedIPReassigned' : 'ReservedIPAssigned',
            action.reason === 'Backstop' ? `reserved IP ${action.ip} moved to MASTER ${action.node}: it had stayed on a non-MASTER node past the grace period` : `reserved IP ${action.ip} assigned to ${action.node}`);
          log.info({ ip: action.ip, node: action.node, reason: action.reason }, 'assigned reserved IP');
          changedCloud = changed = true;
          break;
        case 'ApplyConfig':
          break; // below, on every node at once
        case 'HandOverMaster': {
          const agent = ctx.agents.get(action.node);
          if (!agent) break;
          await agent.stopKeepalived();
          await this.events.record(object, 'Normal', 'MasterHandedOver', `stopped keepalived on ${action.node} so a BACKUP takes over before the node is replaced`);
          log.info({ node: action.node }, 'handed over MASTER');
          changed = true;
          break;
        }
      }
    }
    // Config goes to every node at once: a reload is seamless, and validation is per node.
    await Promise.all(actions.filter((a): a is Extract<Action, { kind: 'ApplyConfig' }> => a.kind === 'ApplyConfig').map(async (action) => {
      const agent = ctx.agents.get(action.node);
      const node = ctx.rendered.find((r) => r.name === action.node);
      const host = ctx.observed.hosts[action.node];
      if (!agent || !node || !host) return; // not reachable yet: the next pass tries again
      const result = await agent.apply(node.files, node.configHash, ctx.hostStates.get(action.node)?.state);
      if (result.outcome === 'invalid') {
        host.applyError = `${result.daemon} refused the config: ${result.message}`;
        await this.events.record(object, 'Warning', 'ConfigRejected', `${action.node}: ${host.applyError}`);
        log.warn({ node: action.node, daemon: result.daemon }, 'config rejected on host');
      } else if (result.outcome === 'applied') {
        const repaired = host.configHash === node.configHash;
        host.configHash = node.configHash;
        host.haproxyRunning = true;
        host.keepalivedRunning = true;
        if (repaired) {
          // Same files, but a daemon was not running: drift on the host, repaired.
          const started = result.started.filter((s) => s.startsWith('started')).map((s) => s.replace('started ', ''));
          await this.events.record(object, 'Warning', 'DaemonRestarted', `started ${started.join(' and ') || 'the daemons'} on ${action.node}: not running`);
          log.warn({ node: action.node, started }, 'restarted stopped daemons');
        } else {
          await this.events.record(object, 'Normal', 'ConfigApplied', `applied config ${node.configHash.slice(0, 19)} on ${action.node}`);
          log.info({ node: action.node, hash: node.configHash, steps: result.started }, 'applied config');
        }
        changed = true;
      }
    }));
    if (changedCloud) this.inventories.delete(provider);
    return changed;
  }

  /** restrictToLoadBalancers: one Cloud Firewall per such backend, admitting its port only from
   *  the load-balancer droplets; firewalls of backends that no longer ask for it are removed. */
  private async reconcileBackendFirewalls(object: HALoadBalancer, provider: DigitalOceanProvider, log: Logger): Promise<void> {
    const uid = object.metadata.uid ?? '';
    const wanted = object.spec.backends.filter((b) => b.restrictToLoadBalancers && b.dropletTag);
    // Listing firewalls costs a request per object: do it while a backend wants one (drift), and
    // once per spec generation otherwise (to prune firewalls a backend no longer asks for).
    const generation = object.metadata.generation ?? 0;
    if (!wanted.length && this.firewallsSyncedAt.get(uid) === generation) return;
    const existing = await this.firewallList(provider);
    let changed = false;
    for (const b of wanted) {
      const result = await provider.ensureBackendFirewall({ uid, backend: b.name, backendTag: b.dropletTag, port: b.port }, existing);
      if (result.changed) {
        changed = true;
        await this.events.record(object, 'Normal', 'FirewallApplied', `Cloud Firewall on tag ${b.dropletTag} admits port ${b.port} only from the load balancers`);
        log.info({ backend: b.name, tag: b.dropletTag, firewall: result.id }, 'applied backend firewall');
      }
    }
    const pruned = await provider.pruneBackendFirewalls(uid, wanted.map((b) => b.name), existing);
    for (const id of pruned) log.info({ firewall: id }, 'removed backend firewall');
    if (changed || pruned.length) this.firewallLists.delete(provider);
    this.firewallsSyncedAt.set(uid, generation);
  }

  private async noticeFailover(object: HALoadBalancer, status: HALoadBalancerStatus, log: Logger): Promise<void> {
    const before = object.status?.activeNode;
    if (before && status.activeNode && before !== status.activeNode) {
      this.metrics.failovers.inc({ namespace: object.metadata.namespace ?? 'default', name: object.metadata.name });
      await this.events.record(object, 'Normal', 'FailoverObserved', `reserved IP ${status.floatingIP} moved from ${before} to ${status.activeNode}`);
      log.info({ from: before, to: status.activeNode }, 'observed failover');
    }
  }

  /** A Warning Event when a warning condition turns on (or changes its reason): SSH open to
   *  all, a certificate near its end, a firewall refused for locking the operator out. */
  private async noticeWarnings(object: HALoadBalancer, status: HALoadBalancerStatus): Promise<void> {
    const before = (type: string) => object.status?.conditions?.find((c) => c.type === type);
    for (const c of status.conditions ?? []) {
      const warning = ((c.type === T.sshExposed || c.type === T.certificateExpiring) && c.status === 'True') || (c.type === T.configApplied && c.reason === 'WouldLockOut');
      const prev = before(c.type);
      if (warning && (prev?.status !== c.status || prev.reason !== c.reason)) {
        await this.events.record(object, 'Warning', c.type === T.configApplied ? c.reason : c.type, c.message);
      }
    }
  }

  private recordNodeMetrics(object: HALoadBalancer, status: HALoadBalancerStatus): void {
    const labels = { namespace: object.metadata.namespace ?? 'default', name: object.metadata.name };
    for (const state of ['MASTER', 'BACKUP', 'FAULT', 'UNKNOWN'] as const) {
      this.metrics.nodesByState.set({ ...labels, state }, (status.nodes ?? []).filter((n) => n.vrrpState === state).length);
    }
  }

  private async writeStatus(object: HALoadBalancer, status: HALoadBalancerStatus): Promise<void> {
    if (!statusChanged(object.status, status)) return;
    await this.co.patchNamespacedCustomObjectStatus(
      { group: GROUP, version: VERSION, namespace: object.metadata.namespace ?? 'default', plural: PLURAL, name: object.metadata.name, body: { metadata: { resourceVersion: object.metadata.resourceVersion }, status } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
  }

  private async patchMeta(object: HALoadBalancer, metadata: { finalizers: string[] }): Promise<void> {
    await this.co.patchNamespacedCustomObject(
      { group: GROUP, version: VERSION, namespace: object.metadata.namespace ?? 'default', plural: PLURAL, name: object.metadata.name, body: { metadata: { ...metadata, resourceVersion: object.metadata.resourceVersion } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
  }

  /** Deletion: droplets, firewalls, the reserved IP per reclaimPolicy, then the finalizer. */
  private async finalize(object: HALoadBalancer, log: Logger): Promise<{ requeueAfterMs?: number }> {
    if (!object.metadata.finalizers?.includes(FINALIZER)) return {};
    const namespace = object.metadata.namespace ?? 'default';
    let token: string | undefined;
    try {
      const secret = await this.core.readNamespacedSecret({ name: object.spec.credentials.tokenSecretRef.name, namespace });
      token = decodeSecret(secret).data[object.spec.credentials.tokenSecretRef.key]?.replace(/\r?\n$/, '');
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw err;
    }
    if (!token) {
      // Without a token nothing can be cleaned up; say so and keep the finalizer.
      await this.events.record(object, 'Warning', 'CleanupBlocked', `cannot delete droplets: Secret ${object.spec.credentials.tokenSecretRef.name} is missing`);
      return { requeueAfterMs: 30_000 };
    }
    const provider = this.provider(token);
    this.inventories.delete(provider);
    const inventory = await this.inventory(provider);
    const uid = object.metadata.uid ?? '';
    const droplets = inventory.nodesByUid.get(uid) ?? [];
    const ip = object.spec.floatingIP.address || droplets.map((d) => inventory.reservedIpByDroplet.get(d.id)?.ip).find((x) => x) || object.status?.floatingIP;
    if (ip && inventory.reservedIpByAddress.has(ip)) {
      if (object.spec.floatingIP.reclaimPolicy === 'Delete') {
        await provider.deleteReservedIp(ip);
        await this.events.record(object, 'Normal', 'ReservedIPDeleted', `deleted reserved IP ${ip} (reclaimPolicy Delete)`);
      } else if (inventory.reservedIpByAddress.get(ip)?.dropletId !== null) {
        await provider.unassignReservedIp(ip);
        await this.events.record(object, 'Normal', 'ReservedIPRetained', `kept reserved IP ${ip} (reclaimPolicy Retain)`);
      }
    }
    for (const d of droplets) {
      await provider.deleteDroplet(d.id);
      await this.events.record(object, 'Normal', 'DropletDeleted', `deleted droplet ${d.name} (id ${d.id})`);
    }
    await provider.pruneBackendFirewalls(uid, []);
    this.inventories.delete(provider);
    this.firewallLists.delete(provider);
    // Nothing of ours may remain before the finalizer goes.
    const after = (await provider.observe()).nodesByUid.get(uid) ?? [];
    if (after.length) return { requeueAfterMs: 2000 };
    await this.patchMeta(object, { finalizers: (object.metadata.finalizers ?? []).filter((f) => f !== FINALIZER) });
    log.info({ tag: uidTag(uid) }, 'cleaned up and removed finalizer');
    return {};
  }
}

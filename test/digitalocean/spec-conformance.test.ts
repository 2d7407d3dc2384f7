// Every response the simulator gives validates against DigitalOcean's own OpenAPI spec: the
// operation is looked up by method and path template, the response by status code (errors may
// fall back to `default`; successes must be declared), and the body is validated with the
// spec's schema. The scenario below drives every route the simulator serves.
import { existsSync, readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import type { ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCOPE_TABLE } from '../../src/digitalocean/errors.ts';
import type { DigitalOceanSimulator, RecordedResponse } from '../../src/sandbox/digitalocean/simulator.ts';
import { sshPublicKey, startSimulator } from './helpers.ts';
import { extractSubset } from './openapi/subset.ts';

// The vendored excerpt (openapi/README.md); the full bundle beside the repository, when present,
// is used to check that the excerpt is current.
const SUBSET_FILE = new URL('./openapi/digitalocean-subset.json', import.meta.url);
const BUNDLE_FILE = process.env.HALB_DO_OPENAPI ??
  new URL('../../../shared/digitalocean-openapi/DigitalOcean-public.v2.bundled.yaml', import.meta.url).pathname;
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

type Json = Record<string, unknown>;

interface Spec {
  paths: Record<string, Record<string, { operationId: string; responses: Record<string, Json>; security?: { bearer_auth: string[] }[] }>>;
  components: Record<string, Record<string, Json>>;
}

function rewriteRefs(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(rewriteRefs);
  if (node && typeof node === 'object') {
    return Object.fromEntries(
      Object.entries(node).map(([k, v]) => [k, k === '$ref' && typeof v === 'string' && v.startsWith('#/') ? `spec${v}` : rewriteRefs(v)]),
    );
  }
  return node;
}

class SpecValidator {
  private readonly spec: Spec;
  private readonly ajv: Ajv;
  private readonly cache = new Map<string, ValidateFunction>();

  constructor(spec: Spec) {
    this.spec = spec;
    this.ajv = new Ajv({ strict: false, allErrors: true, logger: false, unicodeRegExp: false });
    addFormats(this.ajv);
    this.ajv.addSchema({ $id: 'spec', components: { schemas: spec.components.schemas } });
  }

  private deref(obj: Json): Json {
    let cur = obj;
    while (typeof cur.$ref === 'string') {
      cur = (cur.$ref as string).slice(2).split('/')
        .reduce<unknown>((o, k) => (o as Json)[k.replace(/~1/g, '/').replace(/~0/g, '~')], this.spec) as Json;
    }
    return cur;
  }

  operation(method: string, route: string) {
    return this.spec.paths[route]?.[method.toLowerCase()];
  }

  /** Problems with one response; empty when it conforms. */
  check(r: RecordedResponse): string[] {
    const op = this.operation(r.method, r.route);
    if (!op) return [`no operation ${r.method} ${r.route} in the spec`];
    const declared = op.responses[String(r.status)];
    if (!declared && r.status < 400) {
      return [`${op.operationId}: status ${r.status} is not declared (declared: ${Object.keys(op.responses).join(', ')})`];
    }
    const response = this.deref(declared ?? op.responses.default!);
    const problems: string[] = [];
    if (r.status !== 401) {
      for (const name of Object.keys((response.headers as Json | undefined) ?? {})) {
        if (!(name in r.headers)) problems.push(`${op.operationId} ${r.status}: header ${name} missing`);
      }
    }
    const content = (response.content as Record<string, { schema?: Json }> | undefined)?.['application/json'];
    if (!content?.schema) {
      if (r.body !== undefined) {
        problems.push(`${op.operationId} ${r.status}: the spec declares no body, got ${JSON.stringify(r.body).slice(0, 100)}`);
      }
      return problems;
    }
    const key = `${r.method} ${r.route} ${declared ? r.status : 'default'}`;
    let validate = this.cache.get(key);
    if (!validate) {
      validate = this.ajv.compile(rewriteRefs(content.schema) as Json);
      this.cache.set(key, validate);
    }
    if (!validate(r.body)) {
      problems.push(`${op.operationId} ${r.status}: ${this.ajv.errorsText(validate.errors, { separator: '; ' })}`);
    }
    return problems;
  }
}

describe('the simulator against the OpenAPI spec', () => {
  let spec: Spec;
  let validator: SpecValidator;
  let sim: DigitalOceanSimulator;
  let limited: DigitalOceanSimulator;

  beforeAll(async () => {
    spec = JSON.parse(readFileSync(SUBSET_FILE, 'utf8')) as Spec;
    validator = new SpecValidator(spec);
    // Delays long enough that the "still pending" requests below land inside them even on a busy machine.
    sim = await startSimulator({
      tokens: { full: '*', readonly: ['droplet:read'] }, reservedIpLimit: 20,
      delays: { dropletActiveMs: 800, reservedIpActionMs: 800, dropletActionMs: 50 },
    });
    limited = await startSimulator({ rateLimits: [{ limit: 2, windowMs: 60_000 }, { limit: 1, windowMs: 30_000 }] });
  });
  afterAll(async () => {
    await sim.close();
    await limited.close();
  });

  /** Polls the simulator's state until `done` holds (no fixed sleeps: the machine may be busy). */
  async function until(done: () => boolean): Promise<void> {
    for (let i = 0; i < 200 && !done(); i++) await new Promise((r) => setTimeout(r, 25));
    expect(done()).toBe(true);
  }

  async function call(
    method: string, path: string, body?: unknown, token = 'full', on: DigitalOceanSimulator = sim,
  ): Promise<{ status: number; json: Json }> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    const res = await fetch(`${on.endpoint}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    const text = await res.text();
    return { status: res.status, json: text ? (JSON.parse(text) as Json) : {} };
  }

  it('answers every route it serves with bodies that validate against the spec', async () => {
    const expectStatus = async (p: Promise<{ status: number; json: Json }>, status: number) => {
      const r = await p;
      expect(r.status, JSON.stringify(r.json)).toBe(status);
      return r.json;
    };
    // Account and SSH keys
    await expectStatus(call('GET', '/account'), 200);
    const key = (await expectStatus(call('POST', '/account/keys', { name: 'ops', public_key: sshPublicKey(1) }), 201)).ssh_key as Json;
    await expectStatus(call('POST', '/account/keys', { name: 'again', public_key: sshPublicKey(1) }), 422);
    await expectStatus(call('GET', '/account/keys'), 200);
    await expectStatus(call('GET', `/account/keys/${String(key.id)}`), 200);
    await expectStatus(call('GET', `/account/keys/${String(key.fingerprint)}`), 200);
    await expectStatus(call('PUT', `/account/keys/${String(key.id)}`, { name: 'renamed' }), 200);
    await expectStatus(call('GET', '/regions'), 200);

    // Tags
    await expectStatus(call('POST', '/tags', { name: 'web' }), 201);
    await expectStatus(call('POST', '/tags', { name: 'bad tag!' }), 400);
    await expectStatus(call('GET', '/tags'), 200);
    await expectStatus(call('GET', '/tags/web'), 200);
    await expectStatus(call('GET', '/tags/missing'), 404);

    // Droplets
    const base = {
      region: 'nyc3', size: 's-1vcpu-1gb', image: 'ubuntu-24-04-x64', ssh_keys: [key.fingerprint], user_data: '#cloud-config\n',
    };
    const one = (await expectStatus(call('POST', '/droplets', {
      ...base, name: 'lb-0', tags: ['halb', 'halb-uid-x', 'halb-node-0'],
    }), 202)).droplet as Json;
    const many = (await expectStatus(call('POST', '/droplets', { ...base, names: ['w-1', 'w-2'], tags: ['web'] }), 202)).droplets as Json[];
    await expectStatus(call('POST', '/droplets', { ...base, name: 'bad name!' }), 422);
    await expectStatus(call('GET', `/droplets/${String(one.id)}`), 200); // still "new", no networks
    await expectStatus(call('POST', `/droplets/${String(one.id)}/actions`, { type: 'reboot' }), 422); // create still pending
    await until(() => sim.state.dropletViews().every((d) => d.status === 'active'));
    await expectStatus(call('GET', '/droplets?per_page=1&page=2'), 200);
    await expectStatus(call('GET', '/droplets?tag_name=halb-uid-x'), 200);
    await expectStatus(call('GET', `/droplets/${String(one.id)}`), 200);
    await expectStatus(call('GET', '/droplets/999'), 404);
    await expectStatus(call('GET', '/droplets', undefined, 'readonly'), 200);
    await expectStatus(call('GET', '/reserved_ips', undefined, 'readonly'), 403);
    await expectStatus(call('GET', '/droplets', undefined, ''), 401);
    await expectStatus(call('POST', '/tags/web/resources', {
      resources: [{ resource_id: String(one.id), resource_type: 'droplet' }],
    }), 204);
    await expectStatus(call('DELETE', '/tags/web/resources', {
      resources: [{ resource_id: String(one.id), resource_type: 'droplet' }],
    }), 204);
    // Neighbours: two droplets on one physical machine, as DigitalOcean's placement may put them.
    expect((await expectStatus(call('GET', `/droplets/${String(one.id)}/neighbors`), 200)).droplets).toEqual([]);
    expect((await expectStatus(call('GET', '/reports/droplet_neighbors_ids'), 200)).neighbor_ids).toEqual([]);
    sim.state.placeOnOneHost([Number(one.id), Number(many[1]!.id)]);
    const neighbors = (await expectStatus(call('GET', `/droplets/${String(one.id)}/neighbors`), 200)).droplets as Json[];
    expect(neighbors.map((d) => d.id)).toEqual([many[1]!.id]);
    expect((await expectStatus(call('GET', '/reports/droplet_neighbors_ids'), 200)).neighbor_ids).toEqual([[one.id, many[1]!.id]]);
    await expectStatus(call('GET', '/droplets/999/neighbors'), 404);
    const reboot = (await expectStatus(call('POST', `/droplets/${String(many[0]!.id)}/actions`, { type: 'reboot' }), 201)).action as Json;
    await expectStatus(call('GET', `/droplets/${String(many[0]!.id)}/actions`), 200);
    await expectStatus(call('GET', `/droplets/${String(many[0]!.id)}/actions/${String(reboot.id)}`), 200);
    await expectStatus(call('GET', '/actions?per_page=2'), 200);
    await expectStatus(call('GET', `/actions/${String(reboot.id)}`), 200);
    await expectStatus(call('GET', '/actions/1'), 404);

    // Reserved IPs, and the same under the old floating-IP names
    for (const kind of ['reserved_ip', 'floating_ip']) {
      const path = `/${kind}s`;
      const byRegion = (await expectStatus(call('POST', path, { region: 'nyc3' }), 202))[kind] as Json;
      await expectStatus(call('POST', path, {}), 422);
      const target = kind === 'reserved_ip' ? many[1]! : many[0]!;
      const onDroplet = (await expectStatus(call('POST', path, { droplet_id: target.id }), 202))[kind] as Json;
      await expectStatus(call('GET', path), 200);
      await expectStatus(call('GET', `${path}/${String(onDroplet.ip)}`), 200); // locked
      await expectStatus(call('DELETE', `${path}/${String(onDroplet.ip)}`), 422); // pending event
      const assign = (await expectStatus(call('POST', `${path}/${String(byRegion.ip)}/actions`, {
        type: 'assign', droplet_id: one.id,
      }), 201)).action as Json;
      await expectStatus(call('POST', `${path}/${String(byRegion.ip)}/actions`, { type: 'unassign' }), 422); // locked
      await expectStatus(call('GET', `${path}/${String(byRegion.ip)}/actions`), 200);
      await expectStatus(call('GET', `${path}/${String(byRegion.ip)}/actions/${String(assign.id)}`), 200);
      await until(() =>
        sim.state.reservedIpHolder(String(byRegion.ip)) === one.id && sim.state.reservedIpHolder(String(onDroplet.ip)) === target.id);
      await expectStatus(call('GET', `${path}/${String(byRegion.ip)}`), 200); // assigned: full droplet object
      await expectStatus(call('GET', `/droplets/${String(one.id)}`), 200);
      await expectStatus(call('POST', `${path}/${String(byRegion.ip)}/actions`, {
        type: 'assign', droplet_id: one.id,
      }), 422); // already has one
      await expectStatus(call('POST', `${path}/${String(byRegion.ip)}/actions`, { type: 'unassign' }), 201);
      await until(() =>
        sim.state.reservedIpHolder(String(byRegion.ip)) === null && !(sim.state.getReservedIp(String(byRegion.ip)).locked as boolean));
      await expectStatus(call('DELETE', `${path}/${String(byRegion.ip)}`), 204);
      await expectStatus(call('GET', `${path}/${String(byRegion.ip)}`), 404);
      await expectStatus(call('DELETE', `${path}/${String(onDroplet.ip)}`), 204);
    }

    // Firewalls
    const rules = {
      inbound_rules: [{ protocol: 'tcp', ports: '80', sources: { tags: ['halb-uid-x'] } }],
      outbound_rules: [{ protocol: 'tcp', ports: '0', destinations: { addresses: ['0.0.0.0/0'] } }],
    };
    const fw = (await expectStatus(call('POST', '/firewalls', { name: 'halb-x-web', tags: ['web'], ...rules }), 202)).firewall as Json;
    await expectStatus(call('POST', '/firewalls', { name: 'bad', tags: ['no-such-tag'], ...rules }), 400);
    await expectStatus(call('GET', '/firewalls'), 200);
    await expectStatus(call('GET', `/firewalls/${String(fw.id)}`), 200);
    await expectStatus(call('PUT', `/firewalls/${String(fw.id)}`, {
      name: 'halb-x-web', tags: ['web'], droplet_ids: [one.id], ...rules,
    }), 200);
    await expectStatus(call('POST', `/firewalls/${String(fw.id)}/droplets`, { droplet_ids: [many[0]!.id] }), 204);
    await expectStatus(call('DELETE', `/firewalls/${String(fw.id)}/droplets`, { droplet_ids: [many[0]!.id] }), 204);
    await expectStatus(call('POST', `/firewalls/${String(fw.id)}/tags`, { tags: ['halb'] }), 204);
    await expectStatus(call('DELETE', `/firewalls/${String(fw.id)}/tags`, { tags: ['halb'] }), 204);
    await expectStatus(call('POST', `/firewalls/${String(fw.id)}/rules`, {
      inbound_rules: [{ protocol: 'tcp', ports: '443', sources: { addresses: ['0.0.0.0/0'] } }],
    }), 204);
    await expectStatus(call('DELETE', `/firewalls/${String(fw.id)}/rules`, {
      inbound_rules: [{ protocol: 'tcp', ports: '443', sources: { addresses: ['0.0.0.0/0'] } }],
    }), 204);
    await expectStatus(call('DELETE', `/firewalls/${String(fw.id)}`), 204);
    await expectStatus(call('GET', `/firewalls/${String(fw.id)}`), 404);

    // Injected server error, then clean-up deletes
    sim.faults.errorRate = { 'GET /v2/account': 1 };
    await expectStatus(call('GET', '/account'), 500);
    sim.faults.errorRate = {};
    await expectStatus(call('DELETE', `/droplets/${String(one.id)}`), 204);
    await expectStatus(call('DELETE', `/droplets/${String(one.id)}`), 404);
    await expectStatus(call('DELETE', '/droplets?tag_name=web'), 204);
    await expectStatus(call('DELETE', '/tags/web'), 204);
    await expectStatus(call('DELETE', `/account/keys/${String(key.id)}`), 204);
    await expectStatus(call('GET', `/account/keys/${String(key.id)}`), 404);

    // A real 429 from the burst window: retry-after set, the hourly budget not yet spent
    await expectStatus(call('GET', '/droplets', undefined, 't', limited), 200);
    await expectStatus(call('GET', '/droplets', undefined, 't', limited), 429);
    const rejected = limited.responses.at(-1)!;
    expect(rejected.headers['retry-after']).toMatch(/^\d+$/);
    expect(rejected.headers['ratelimit-remaining']).toBe('1'); // the headers describe the hourly window

    const problems = [...sim.responses, ...limited.responses].flatMap((r) => validator.check(r).map((p) => `${r.method} ${r.path} → ${p}`));
    expect(problems).toEqual([]);

    // Every route was exercised with a success, and every error body carried request_id.
    const succeeded = new Set(sim.responses.filter((r) => r.status < 300).map((r) => `${r.method} ${r.route}`));
    const missing = sim.routes.map((r) => `${r.method} ${r.template}`).filter((k) => !succeeded.has(k));
    expect(missing).toEqual([]);
    const statuses = new Set(sim.responses.map((r) => r.status));
    for (const s of [200, 201, 202, 204, 400, 401, 403, 404, 422, 500]) expect(statuses.has(s), `status ${s}`).toBe(true);
    for (const r of sim.responses.filter((x) => x.status >= 400 && x.route !== '/v2/tags')) {
      expect((r.body as Json).request_id).toBeTypeOf('string');
    }
  });

  it.skipIf(!existsSync(BUNDLE_FILE))('uses a current excerpt of the full spec', () => {
    const full = parse(readFileSync(BUNDLE_FILE, 'utf8')) as Parameters<typeof extractSubset>[0];
    expect(extractSubset(full, sim.routes.map((r) => r.template))).toEqual(spec);
  });

  it('serves each route under the scope the spec names, and the provider\'s scope table agrees', () => {
    const scopeOf = (method: string, template: string) => validator.operation(method, template)?.security?.[0]?.bearer_auth[0];
    const wrong = [
      ...sim.routes.filter((r) => scopeOf(r.method, r.template) !== r.scope)
        .map((r) => `simulator ${r.method} ${r.template}: ${r.scope} vs ${scopeOf(r.method, r.template)}`),
      ...SCOPE_TABLE.filter((e) => scopeOf(e.method, e.template) !== e.scope)
        .map((e) => `provider ${e.method} ${e.template}: ${e.scope} vs ${scopeOf(e.method, e.template)}`),
    ];
    expect(wrong).toEqual([]);
  });
});

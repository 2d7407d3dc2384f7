// The DigitalOcean API simulator: the /v2 paths halb uses, over real HTTP, with DigitalOcean's
// envelopes, status codes, error bodies, pagination links, rolling-window rate limits with
// `ratelimit-*` headers, Bearer auth with optional token scopes, and fault injection.
// Start it in-process with startDigitalOceanSimulator(); `halb sandbox do` runs it alone.
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import type { Logger } from 'pino';
import { REGIONS, regionObject } from './catalog.ts';
import { metadataResponse } from './metadata.ts';
import type { MetadataResponse } from './metadata.ts';
import { DIGITALOCEAN_RATE_LIMITS, RollingRateLimiter } from './ratelimit.ts';
import type { RateLimitWindow } from './ratelimit.ts';
import { ApiError, DEFAULT_ADDRESSING, NOT_FOUND_MESSAGE, SimulatorState, notFound } from './state.ts';
import type { Action, AddressingOptions, SimulatorDelays, SimulatorHooks } from './state.ts';
import { parseCidr, netmaskOf, intToIpv4 } from './addresses.ts';

export type { DropletView, ReservedIpChange, SimulatorHooks, SimulatorDelays, AddressingOptions } from './state.ts';
export type { RateLimitWindow } from './ratelimit.ts';

export interface FaultSettings {
  /** Probability (0..1) that a request fails with `errorStatus`, keyed by route
   * ("POST /v2/reserved_ips/{reserved_ip}/actions") or "*" for every route. */
  errorRate: Record<string, number>;
  /** The status injected errors get: 500 (default), 502, 503 or 429. */
  errorStatus: number;
  /** Added latency in milliseconds, keyed like errorRate. */
  latencyMs: Record<string, number>;
  /** A droplet that dies: every droplet (with `tag`, if set) created while this is set powers
   * off `afterMs` after it turns active. `state.killDroplet(id)` kills one at once. */
  dropletDeath?: { afterMs: number; tag?: string };
  /** Drops the connection without an answer, before or after the request takes effect
   * (an operator crash or a lost response). Called for every authenticated request. */
  dropConnection?: (request: { method: string; route: string; seq: number; token: string }) => 'before' | 'after' | undefined;
}

export interface SimulatorOptions {
  /** 0 picks a free port. */
  port?: number;
  host?: string;
  /** Token → granted scopes ('*' = all). Unset: any non-empty Bearer token has every scope. */
  tokens?: Record<string, string[] | '*'>;
  rateLimits?: RateLimitWindow[];
  /** Extra limits of single operations, keyed "GET /v2/account/keys" (DigitalOcean: 10 SSH-key
   * listings per 60 s). Exceeding one gets a 429 with retry-after. */
  routeRateLimits?: Record<string, RateLimitWindow[]>;
  delays?: Partial<SimulatorDelays>;
  addressing?: Partial<AddressingOptions>;
  faults?: Partial<FaultSettings>;
  hooks?: SimulatorHooks & {
    /** Every response the API gives (for spec conformance tests and request counting). */
    onResponse?: (r: RecordedResponse) => void;
  };
  dropletLimit?: number;
  reservedIpLimit?: number;
  /** How many recent responses `responses` keeps (default 10,000), so a long run stays bounded. */
  keepResponses?: number;
  /** Seed of the fault-injection random source, for repeatable runs. */
  seed?: number;
  logger?: Logger;
}

export interface RecordedResponse {
  method: string;
  /** The route template, as the OpenAPI spec names the path ("/v2/droplets/{droplet_id}"). */
  route: string;
  path: string;
  status: number;
  body: unknown;
  headers: Record<string, string>;
  /** When the request arrived (the time the rate limiter counted it). */
  at: number;
  token: string;
}

export interface DigitalOceanSimulator {
  /** Base URL, e.g. http://127.0.0.1:8089 */
  url: string;
  /** The endpoint to give dots-wrapper: `${url}/v2`. */
  endpoint: string;
  port: number;
  state: SimulatorState;
  /** Mutable at run time: tests flip faults and delays on and off. */
  faults: FaultSettings;
  delays: SimulatorDelays;
  /** The responses given so far, newest last (the most recent `keepResponses`). */
  responses: RecordedResponse[];
  /** The operations served, as the OpenAPI spec names them. */
  routes: { method: string; template: string; scope: string }[];
  /** Serves the same API on another address, same port (the sandbox's veth into its fabric,
   * so droplets reach the API the way real ones reach api.digitalocean.com). */
  addListener(host: string): Promise<void>;
  /** The metadata service's answer for one droplet and path ("/metadata/v1/id"). */
  metadata(dropletId: number, path: string): MetadataResponse;
  close(): Promise<void>;
}

export const DEFAULT_DELAYS: SimulatorDelays = { dropletActiveMs: 3000, reservedIpActionMs: 2000, dropletActionMs: 2000 };

interface RouteContext {
  params: Record<string, string>;
  query: URLSearchParams;
  body: unknown;
  baseUrl: string;
}

interface Reply {
  status: number;
  body?: unknown;
}

interface Route {
  method: string;
  template: string;
  scope: string;
  pattern: RegExp;
  names: string[];
  handle: (ctx: RouteContext) => Reply;
}

/** mulberry32: a tiny seeded PRNG, so fault injection repeats run to run. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ERROR_IDS: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  409: 'conflict',
  422: 'unprocessable_entity',
  429: 'too_many_requests',
  500: 'server_error',
  502: 'server_error',
  503: 'server_error',
};

/** DigitalOcean's list envelope: `{key: [...], links: {pages}, meta: {total}}`. */
function paginate(ctx: RouteContext, path: string, key: string, items: unknown[]): Reply {
  const pageText = ctx.query.get('page') ?? '1';
  const perPageText = ctx.query.get('per_page') ?? '20';
  const page = Number(pageText);
  const perPage = Number(perPageText);
  if (!Number.isInteger(page) || page < 1) {
    throw new ApiError(400, 'bad_request', `page must be an integer of at least 1, got "${pageText}"`);
  }
  if (!Number.isInteger(perPage) || perPage < 1) {
    throw new ApiError(400, 'bad_request', `per_page must be an integer of at least 1, got "${perPageText}"`);
  }
  const size = Math.min(perPage, 200);
  const last = Math.max(1, Math.ceil(items.length / size));
  const link = (p: number) => {
    const q = new URLSearchParams(ctx.query);
    q.set('page', String(p));
    q.set('per_page', String(size));
    return `${ctx.baseUrl}${path}?${q.toString()}`;
  };
  const pages: Record<string, string> = {};
  if (page > 1) {
    pages.first = link(1);
    pages.prev = link(Math.min(page - 1, last));
  }
  if (page < last) {
    pages.next = link(page + 1);
    pages.last = link(last);
  }
  return { status: 200, body: { [key]: items.slice((page - 1) * size, page * size), links: { pages }, meta: { total: items.length } } };
}

function buildRoutes(state: SimulatorState): Route[] {
  const routes: Route[] = [];
  const add = (method: string, template: string, scope: string, handle: (ctx: RouteContext) => Reply) => {
    const names: string[] = [];
    const source = template.replace(/\{([a-z_]+)\}/g, (_m, name: string) => {
      names.push(name);
      return '([^/]+)';
    });
    routes.push({ method, template, scope, pattern: new RegExp(`^${source}/?$`), names, handle });
  };
  const intParam = (ctx: RouteContext, name: string): number => {
    const text = ctx.params[name] ?? '';
    if (!/^\d+$/.test(text)) throw notFound();
    return Number(text);
  };
  const actionLink = (ctx: RouteContext, action: Action, rel: string) =>
    ({ id: action.id, rel, href: `${ctx.baseUrl}/v2/actions/${action.id}` });

  // Droplets
  add('GET', '/v2/droplets', 'droplet:read', (ctx) => {
    const tag = ctx.query.get('tag_name') ?? undefined;
    const name = ctx.query.get('name') ?? undefined;
    if (tag !== undefined && (name !== undefined || ctx.query.has('type'))) {
      throw new ApiError(422, 'unprocessable_entity', 'tag_name cannot be combined with name or type.');
    }
    return paginate(ctx, '/v2/droplets', 'droplets', state.listDroplets({ tag, name }));
  });
  add('POST', '/v2/droplets', 'droplet:create', (ctx) => {
    const multi = Array.isArray((ctx.body as { names?: unknown } | null)?.names);
    const { droplets, actions } = state.createDroplets(ctx.body, multi);
    const links = { actions: actions.map((a) => actionLink(ctx, a, 'create')) };
    const objects = droplets.map((d) => state.dropletObject(d));
    return { status: 202, body: multi ? { droplets: objects, links } : { droplet: objects[0], links } };
  });
  add('DELETE', '/v2/droplets', 'droplet:delete', (ctx) => {
    const tag = ctx.query.get('tag_name');
    if (!tag) throw new ApiError(400, 'bad_request', 'tag_name is required to delete droplets by tag');
    state.deleteDropletsByTag(tag);
    return { status: 204 };
  });
  add('GET', '/v2/droplets/{droplet_id}', 'droplet:read', (ctx) =>
    ({ status: 200, body: { droplet: state.getDroplet(intParam(ctx, 'droplet_id')) } }));
  add('DELETE', '/v2/droplets/{droplet_id}', 'droplet:delete', (ctx) => {
    state.deleteDroplet(intParam(ctx, 'droplet_id'));
    return { status: 204 };
  });
  add('POST', '/v2/droplets/{droplet_id}/actions', 'droplet:update', (ctx) => ({
    status: 201,
    body: { action: state.actionObject(state.dropletAction(intParam(ctx, 'droplet_id'), ctx.body)) },
  }));
  add('GET', '/v2/droplets/{droplet_id}/actions', 'droplet:read', (ctx) => {
    const id = intParam(ctx, 'droplet_id');
    state.getDroplet(id);
    const actions = state.listActions((a) => a.resource_type === 'droplet' && a.resource_id === id).map((a) => state.actionObject(a));
    return paginate(ctx, `/v2/droplets/${id}/actions`, 'actions', actions);
  });
  add('GET', '/v2/droplets/{droplet_id}/neighbors', 'droplet:read', (ctx) => ({
    status: 200, body: { droplets: state.neighbors(intParam(ctx, 'droplet_id')) },
  }));
  add('GET', '/v2/reports/droplet_neighbors_ids', 'droplet:read', () => ({ status: 200, body: { neighbor_ids: state.neighborIds() } }));
  add('GET', '/v2/droplets/{droplet_id}/actions/{action_id}', 'droplet:read', (ctx) => {
    const id = intParam(ctx, 'droplet_id');
    const action = state.getAction(intParam(ctx, 'action_id'));
    if (action.resource_type !== 'droplet' || action.resource_id !== id) throw notFound();
    return { status: 200, body: { action: state.actionObject(action) } };
  });

  // Actions
  add('GET', '/v2/actions', 'actions:read', (ctx) =>
    paginate(ctx, '/v2/actions', 'actions', state.listActions().map((a) => state.actionObject(a))));
  add('GET', '/v2/actions/{action_id}', 'actions:read', (ctx) =>
    ({ status: 200, body: { action: state.actionObject(state.getAction(intParam(ctx, 'action_id'))) } }));

  // Reserved IPs, and the same under their old name, floating IPs.
  for (const kind of ['reserved_ip', 'floating_ip'] as const) {
    const base = `/v2/${kind}s`;
    const param = `{${kind}}`;
    const ipOf = (ctx: RouteContext) => ctx.params[kind] ?? '';
    add('GET', base, 'reserved_ip:read', (ctx) => paginate(ctx, base, `${kind}s`, state.listReservedIps()));
    add('POST', base, 'reserved_ip:create', (ctx) => {
      const { reservedIp, action } = state.createReservedIp(ctx.body, kind);
      const links: Record<string, unknown> = {};
      if (action) {
        const dropletId = Number((ctx.body as { droplet_id?: unknown }).droplet_id);
        links.droplets = [{ id: dropletId, rel: 'droplet', href: `${ctx.baseUrl}/v2/droplets/${dropletId}` }];
        links.actions = [actionLink(ctx, action, 'assign_ip')];
      }
      return { status: 202, body: { [kind]: state.getReservedIp(reservedIp.ip), links } };
    });
    add('GET', `${base}/${param}`, 'reserved_ip:read', (ctx) => ({ status: 200, body: { [kind]: state.getReservedIp(ipOf(ctx)) } }));
    add('DELETE', `${base}/${param}`, 'reserved_ip:delete', (ctx) => {
      state.deleteReservedIp(ipOf(ctx), kind);
      return { status: 204 };
    });
    add('POST', `${base}/${param}/actions`, 'reserved_ip:update', (ctx) => ({
      status: 201,
      body: { action: state.actionObject(state.reservedIpAction(ipOf(ctx), ctx.body, kind), kind) },
    }));
    add('GET', `${base}/${param}/actions`, 'reserved_ip:read', (ctx) => {
      const ip = ipOf(ctx);
      state.getReservedIp(ip);
      return paginate(ctx, `${base}/${ip}/actions`, 'actions',
        state.listActions((a) => a.ip === ip).map((a) => state.actionObject(a, kind)));
    });
    add('GET', `${base}/${param}/actions/{action_id}`, 'reserved_ip:read', (ctx) => {
      const action = state.getAction(intParam(ctx, 'action_id'));
      if (action.ip !== ipOf(ctx)) throw notFound();
      return { status: 200, body: { action: state.actionObject(action, kind) } };
    });
  }

  // Tags
  add('GET', '/v2/tags', 'tag:read', (ctx) => paginate(ctx, '/v2/tags', 'tags', state.listTags()));
  add('POST', '/v2/tags', 'tag:create', (ctx) => ({ status: 201, body: { tag: state.createTag(ctx.body) } }));
  add('GET', '/v2/tags/{tag_id}', 'tag:read', (ctx) => ({ status: 200, body: { tag: state.getTag(ctx.params.tag_id ?? '') } }));
  add('DELETE', '/v2/tags/{tag_id}', 'tag:delete', (ctx) => {
    state.deleteTag(ctx.params.tag_id ?? '');
    return { status: 204 };
  });
  add('POST', '/v2/tags/{tag_id}/resources', 'tag:create', (ctx) => {
    state.tagResources(ctx.params.tag_id ?? '', ctx.body, true);
    return { status: 204 };
  });
  add('DELETE', '/v2/tags/{tag_id}/resources', 'tag:delete', (ctx) => {
    state.tagResources(ctx.params.tag_id ?? '', ctx.body, false);
    return { status: 204 };
  });

  // Firewalls
  add('GET', '/v2/firewalls', 'firewall:read', (ctx) => paginate(ctx, '/v2/firewalls', 'firewalls', state.listFirewalls()));
  add('POST', '/v2/firewalls', 'firewall:create', (ctx) => ({ status: 202, body: { firewall: state.createFirewall(ctx.body) } }));
  add('GET', '/v2/firewalls/{firewall_id}', 'firewall:read', (ctx) =>
    ({ status: 200, body: { firewall: state.getFirewall(ctx.params.firewall_id ?? '') } }));
  add('PUT', '/v2/firewalls/{firewall_id}', 'firewall:update', (ctx) =>
    ({ status: 200, body: { firewall: state.updateFirewall(ctx.params.firewall_id ?? '', ctx.body) } }));
  add('DELETE', '/v2/firewalls/{firewall_id}', 'firewall:delete', (ctx) => {
    state.deleteFirewall(ctx.params.firewall_id ?? '');
    return { status: 204 };
  });
  for (const what of ['droplets', 'tags'] as const) {
    for (const [method, addIt] of [['POST', true], ['DELETE', false]] as const) {
      add(method, `/v2/firewalls/{firewall_id}/${what}`, 'firewall:update', (ctx) => {
        state.firewallMembers(ctx.params.firewall_id ?? '', ctx.body, what, addIt);
        return { status: 204 };
      });
    }
  }
  for (const [method, addIt] of [['POST', true], ['DELETE', false]] as const) {
    add(method, '/v2/firewalls/{firewall_id}/rules', 'firewall:update', (ctx) => {
      state.firewallRules(ctx.params.firewall_id ?? '', ctx.body, addIt);
      return { status: 204 };
    });
  }

  // Account, SSH keys, regions
  add('GET', '/v2/account', 'account:read', () => ({ status: 200, body: { account: state.account() } }));
  add('GET', '/v2/account/keys', 'ssh_key:read', (ctx) => paginate(ctx, '/v2/account/keys', 'ssh_keys', state.listSshKeys()));
  add('POST', '/v2/account/keys', 'ssh_key:create', (ctx) => ({ status: 201, body: { ssh_key: state.createSshKey(ctx.body) } }));
  add('GET', '/v2/account/keys/{ssh_key_identifier}', 'ssh_key:read', (ctx) =>
    ({ status: 200, body: { ssh_key: state.getSshKey(ctx.params.ssh_key_identifier ?? '') } }));
  add('PUT', '/v2/account/keys/{ssh_key_identifier}', 'ssh_key:update', (ctx) =>
    ({ status: 200, body: { ssh_key: state.updateSshKey(ctx.params.ssh_key_identifier ?? '', ctx.body) } }));
  add('DELETE', '/v2/account/keys/{ssh_key_identifier}', 'ssh_key:delete', (ctx) => {
    state.deleteSshKey(ctx.params.ssh_key_identifier ?? '');
    return { status: 204 };
  });
  add('GET', '/v2/regions', 'regions:read', (ctx) => paginate(ctx, '/v2/regions', 'regions', REGIONS.map((r) => regionObject(r.slug))));
  return routes;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > 1_048_576) {
        reject(new ApiError(400, 'bad_request', 'request body is larger than 1 MiB'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function keyed(map: Record<string, number>, routeKey: string): number {
  return map[routeKey] ?? map['*'] ?? 0;
}

export async function startDigitalOceanSimulator(options: SimulatorOptions = {}): Promise<DigitalOceanSimulator> {
  const log = options.logger ?? pino({ level: 'silent' });
  const delays: SimulatorDelays = { ...DEFAULT_DELAYS, ...options.delays };
  const addressing: AddressingOptions = { ...DEFAULT_ADDRESSING, ...options.addressing };
  const faults: FaultSettings = { errorRate: {}, errorStatus: 500, latencyMs: {}, ...options.faults };
  const hooks = options.hooks ?? {};
  const state = new SimulatorState({
    delays,
    addressing,
    hooks,
    dropletLimit: options.dropletLimit ?? 10_000,
    reservedIpLimit: options.reservedIpLimit ?? 10,
    log: (level, msg, fields) => log[level](fields ?? {}, msg),
    dropletDeath: () => faults.dropletDeath,
  });
  const routes = buildRoutes(state);
  const limiters = new Map<string, RollingRateLimiter>();
  const rateLimits = options.rateLimits ?? [...DIGITALOCEAN_RATE_LIMITS];
  const routeRateLimits = options.routeRateLimits ?? { 'GET /v2/account/keys': [{ limit: 10, windowMs: 60_000 }] };
  new RollingRateLimiter(rateLimits); // validates the windows up front
  const random = seededRandom(options.seed ?? 1);
  const responses: RecordedResponse[] = [];
  const keepResponses = options.keepResponses ?? 10_000;
  let seq = 0;

  const netOf = (cidr: string) => {
    const { base, prefix } = parseCidr(cidr);
    return { netmask: netmaskOf(prefix), gateway: intToIpv4(base + 1) };
  };
  const metadata = (dropletId: number, path: string): MetadataResponse => {
    const droplet = state.dropletView(dropletId);
    if (!droplet) return { status: 404, contentType: 'text/plain; charset=utf-8', body: 'not found\n' };
    const reservedIPv4 = state.reservedIpOnDroplet(dropletId);
    return metadataResponse(
      {
        droplet,
        maintenanceEvent: state.maintenanceEventOf(dropletId),
        ...(reservedIPv4 === undefined ? {} : { reservedIPv4 }),
        publicNet: netOf(addressing.publicCidr),
        anchorNet: netOf(addressing.anchorCidr),
        privateNet: { netmask: netOf(addressing.privateCidr).netmask, gateway: '' },
      },
      path,
    );
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const arrived = Date.now();
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://simulator');
    const baseUrl = `http://${req.headers.host ?? '127.0.0.1'}`;
    const headers: Record<string, string> = {};
    let route: Route | undefined;
    let params: Record<string, string> = {};
    let token = '';

    const send = (status: number, body?: unknown) => {
      const requestId = randomUUID();
      let payload = body;
      if (status >= 400 && payload === undefined) payload = { id: ERROR_IDS[status] ?? 'server_error', message: 'error' };
      if (status >= 400 && payload && typeof payload === 'object' && 'id' in payload && !('request_id' in payload)) {
        payload = { ...payload, request_id: requestId };
      }
      res.statusCode = status;
      headers['content-type'] = 'application/json; charset=utf-8';
      headers['x-request-id'] = requestId;
      for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
      const recorded: RecordedResponse = {
        method, route: route?.template ?? url.pathname, path: url.pathname + url.search, status, body: payload, headers: { ...headers },
        at: arrived, token,
      };
      responses.push(recorded);
      if (responses.length > keepResponses) responses.splice(0, responses.length - keepResponses);
      hooks.onResponse?.(recorded);
      res.end(status === 204 || payload === undefined ? undefined : JSON.stringify(payload));
    };
    const sendError = (err: ApiError) => {
      // POST /v2/tags is the one operation whose 400 has another shape (error_with_root_causes).
      if (err.status === 400 && method === 'POST' && route?.template === '/v2/tags') {
        return send(400, { error: err.message, messages: null, root_causes: [err.message] });
      }
      send(err.status, { id: err.id, message: err.message });
    };

    // The metadata service, for the sandbox's per-droplet proxies (no auth, like 169.254.169.254).
    const meta = /^\/_sandbox\/droplets\/(\d+)(\/metadata\/.*|\/v1\/maintenance_event)$/.exec(url.pathname);
    if (meta && method === 'GET') {
      const answer = metadata(Number(meta[1]), meta[2]!);
      res.statusCode = answer.status;
      res.setHeader('content-type', answer.contentType);
      if (answer.location) res.setHeader('location', `/_sandbox/droplets/${meta[1]}${answer.location}`);
      res.end(answer.body);
      return;
    }

    // The sandbox's own controls (no auth, like the metadata service): what DigitalOcean decides
    // alone, a droplet's physical machine and its maintenance notices.
    const control = /^\/_sandbox\/droplets\/(\d+)\/(physical_host|maintenance_event)$/.exec(url.pathname);
    if (control && method === 'PUT') {
      try {
        const value = (await readBody(req)).trim();
        if (control[2] === 'physical_host') state.setPhysicalHost(Number(control[1]), value);
        else state.announceMaintenance(Number(control[1]), value);
        res.statusCode = 204;
        res.end();
      } catch (err) {
        const e = err instanceof ApiError ? err : new ApiError(400, 'bad_request', String(err));
        res.statusCode = e.status;
        res.setHeader('content-type', 'application/json; charset=utf-8');
        res.end(JSON.stringify({ id: e.id, message: e.message }));
      }
      return;
    }

    for (const r of routes) {
      if (r.method !== method) continue;
      const m = r.pattern.exec(url.pathname);
      if (!m) continue;
      route = r;
      params = Object.fromEntries(r.names.map((n, i) => [n, decodeURIComponent(m[i + 1] ?? '')]));
      break;
    }

    const auth = req.headers.authorization ?? '';
    token = /^Bearer\s+(\S+)$/i.exec(auth)?.[1] ?? '';
    const granted = token === '' ? undefined : options.tokens === undefined ? '*' : options.tokens[token];
    if (granted === undefined) {
      await readBody(req).catch(() => '');
      return sendError(new ApiError(401, 'unauthorized', 'Unable to authenticate you.'));
    }
    let limiter = limiters.get(token);
    if (!limiter) {
      limiter = new RollingRateLimiter(rateLimits);
      limiters.set(token, limiter);
    }
    const decision = limiter.take(arrived);
    Object.assign(headers, decision.headers);
    if (!decision.allowed) {
      if (decision.retryAfterSeconds !== undefined) headers['retry-after'] = String(decision.retryAfterSeconds);
      await readBody(req).catch(() => '');
      return sendError(new ApiError(429, 'too_many_requests', 'API Rate limit exceeded.'));
    }
    if (!route) {
      await readBody(req).catch(() => '');
      return sendError(new ApiError(404, 'not_found', NOT_FOUND_MESSAGE));
    }
    if (granted !== '*' && !granted.includes(route.scope)) {
      await readBody(req).catch(() => '');
      return sendError(new ApiError(403, 'forbidden',
        `You are not authorized to perform this operation (it needs the ${route.scope} scope).`));
    }
    const routeKey = `${method} ${route.template}`;
    const routeWindows = routeRateLimits[routeKey];
    if (routeWindows) {
      const key = `${token} ${routeKey}`;
      let routeLimiter = limiters.get(key);
      if (!routeLimiter) {
        // A leading unlimited-in-practice window keeps retry-after on every refusal.
        routeLimiter = new RollingRateLimiter([{ limit: Number.MAX_SAFE_INTEGER, windowMs: 1 }, ...routeWindows]);
        limiters.set(key, routeLimiter);
      }
      const routeDecision = routeLimiter.take(arrived);
      if (!routeDecision.allowed) {
        headers['retry-after'] = String(routeDecision.retryAfterSeconds ?? 1);
        await readBody(req).catch(() => '');
        return sendError(new ApiError(429, 'too_many_requests', 'API Rate limit exceeded.'));
      }
    }
    seq += 1;
    const drop = faults.dropConnection?.({ method, route: route.template, seq, token });
    if (drop === 'before') {
      req.socket.destroy();
      return;
    }
    const latency = keyed(faults.latencyMs, routeKey);
    if (latency > 0) await new Promise((r) => setTimeout(r, latency));
    if (random() < keyed(faults.errorRate, routeKey)) {
      await readBody(req).catch(() => '');
      const status = faults.errorStatus;
      if (status === 429) headers['retry-after'] = '1';
      const message = status === 429 ? 'API Rate limit exceeded.' : 'Server was unable to give you a response.';
      return sendError(new ApiError(status, ERROR_IDS[status] ?? 'server_error', message));
    }
    let body: unknown = undefined;
    try {
      const text = await readBody(req);
      if (text.trim() !== '') {
        try {
          body = JSON.parse(text);
        } catch {
          throw new ApiError(400, 'bad_request', 'The request body is not valid JSON.');
        }
      }
      const reply = route.handle({ params, query: url.searchParams, body, baseUrl });
      if (drop === 'after') {
        req.socket.destroy();
        return;
      }
      send(reply.status, reply.body);
    } catch (err) {
      if (err instanceof ApiError) return sendError(err);
      log.error({ err: String(err), route: routeKey }, 'simulator handler failed');
      sendError(new ApiError(500, 'server_error', 'Server was unable to give you a response.'));
    }
  };

  const servers: Server[] = [];
  const listen = async (host: string, port: number): Promise<Server> => {
    const server = createServer((req, res) => {
      handle(req, res).catch((err: unknown) => {
        log.error({ err: String(err) }, 'simulator request failed');
        if (!res.headersSent) res.statusCode = 500;
        res.end();
      });
    });
    server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    servers.push(server);
    return server;
  };
  const server = await listen(options.host ?? '127.0.0.1', options.port ?? 0);
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  log.info({ url }, 'digitalocean simulator listened');
  return {
    url,
    endpoint: `${url}/v2`,
    port: address.port,
    state,
    faults,
    delays,
    responses,
    routes: routes.map((r) => ({ method: r.method, template: r.template, scope: r.scope })),
    metadata,
    addListener: async (host: string) => {
      await listen(host, address.port);
      log.info({ host, port: address.port }, 'digitalocean simulator listened on another address');
    },
    close: async () => {
      state.close();
      await Promise.all(
        servers.map((srv) => {
          srv.closeAllConnections();
          return new Promise<void>((resolve) => srv.close(() => resolve()));
        }),
      );
    },
  };
}

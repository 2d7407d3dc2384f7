// HTTP front of the emulator: routing, content negotiation (JSON, Table, aggregated discovery),
// Status errors, and streaming watches.
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { FieldValidation, KubeApi, Selectors, WriteOptions } from './api.ts';
import {
  AGGREGATED_CONTENT_TYPE, VERSION_INFO, aggregatedDiscovery, apiGroup, apiGroupList, apiResourceList, apiVersions, wantsAggregated,
} from './discovery.ts';
import { ApiError, badRequest, methodNotAllowed, pathNotFound } from './errors.ts';
import type { ResourceDef } from './resources.ts';
import { apiVersionOf } from './resources.ts';
import type { KubeObject, StoreEvent } from './store.ts';
import { gvDocument, openapiRoot } from './openapi.ts';
import { PROTOBUF_CONTENT_TYPE, decodeKubeProtobuf } from './protobuf.ts';
import { buildTable } from './table.ts';

const JSON_TYPE = 'application/json';
const TABLE_TYPE = 'application/json;as=Table;v=v1;g=meta.k8s.io';
const MAX_BODY = 3 * 1024 * 1024;

export interface HttpOptions {
  logger: Logger;
  /** Interval between watch bookmarks, when a client asks for them. The real server: ~1 min. */
  bookmarkIntervalMs?: number;
  /** Called after every request (tests assert request sequences with it). */
  onRequest?: (r: { method: string; path: string; query: string; code: number }) => void;
}

interface Req {
  method: string;
  url: URL;
  headers: IncomingMessage['headers'];
  body: string;
  raw: Buffer;
}

function wantsTable(accept: string | undefined): boolean {
  if (!accept) return false;
  const first = accept.split(',')[0] ?? '';
  return /as=Table/.test(first) && /g=meta\.k8s\.io/.test(first);
}

function send(res: ServerResponse, code: number, body: unknown, contentType = JSON_TYPE, warnings: string[] = []): void {
  const text = JSON.stringify(body);
  const headers: Record<string, string | string[]> = {
    'Content-Type': contentType, 'Content-Length': String(Buffer.byteLength(text)), 'Cache-Control': 'no-cache, private',
  };
  if (warnings.length > 0) headers.Warning = warnings.map((w) => `299 - ${JSON.stringify(w)}`);
  res.writeHead(code, headers);
  res.end(text);
}

/**
 * A list as the real server encodes it: a built-in kind's items carry no apiVersion or kind (its
 * typed list leaves them out); a custom resource's list says "continue": "" when there is no
 * next page (the unstructured list keeps the empty field).
 */
function listBody(def: ResourceDef, items: KubeObject[], resourceVersion: string): Record<string, unknown> {
  if (def.custom) return { apiVersion: apiVersionOf(def), kind: def.listKind, metadata: { continue: '', resourceVersion }, items };
  const bare = items.map(({ apiVersion: _apiVersion, kind: _kind, ...rest }) => rest);
  return { apiVersion: apiVersionOf(def), kind: def.listKind, metadata: { resourceVersion }, items: bare };
}

function sendError(res: ServerResponse, err: ApiError): void {
  send(res, err.code, err.toStatus());
}

/**
 * What the real server answers for a path under /apis that no API group serves (an unknown
 * group, version or resource): its mux's plain-text page, not a Status. client-go reads both as
 * "the server could not find the requested resource"; `kubectl get --raw` prints the page.
 */
function sendNotFoundPage(res: ServerResponse): void {
  const text = '404 page not found\n';
  res.writeHead(404, {
    'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff', 'Content-Length': String(text.length),
  });
  res.end(text);
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new ApiError(413, 'RequestEntityTooLarge', 'Request entity too large: limit is 3145728'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** The request body as an object: JSON, or the Kubernetes protobuf kubectl uses for built-ins. */
function parseBody(req: Req): unknown {
  if ((req.headers['content-type'] ?? '').startsWith(PROTOBUF_CONTENT_TYPE) && req.raw.length > 0) return decodeKubeProtobuf(req.raw);
  const body = req.body;
  if (body.trim() === '') return undefined;
  try {
    return JSON.parse(body);
  } catch (err) {
    throw badRequest(`couldn't get version/kind; json parse error: ${(err as Error).message}`);
  }
}

interface ResourcePath {
  def: ResourceDef;
  namespace?: string;
  name?: string;
  subresource?: string;
  watch: boolean;
}

export class KubeHttp {
  readonly server: Server;
  private readonly api: KubeApi;
  private readonly log: Logger;
  private readonly bookmarkIntervalMs: number;
  private readonly watches = new Set<{ def: ResourceDef; end: () => void; expire: () => void }>();
  private readonly onRequest: HttpOptions['onRequest'];
  serverAddress = '127.0.0.1:6443';

  constructor(api: KubeApi, opts: HttpOptions) {
    this.api = api;
    this.log = opts.logger;
    this.bookmarkIntervalMs = opts.bookmarkIntervalMs ?? 60_000;
    this.onRequest = opts.onRequest;
    this.server = createServer((req, res) => void this.handle(req, res));
    api.onResourcesRemoved = (defs) => {
      for (const w of [...this.watches]) if (defs.includes(w.def)) w.end();
    };
  }

  /** Ends every open watch (on shutdown) so clients see a clean close. */
  endWatches(): void {
    for (const w of [...this.watches]) w.end();
  }

  /**
   * Compacts the history and sends every open watch the in-stream 410 Expired a real server sends
   * when its watch cache falls behind: clients must relist. Returns the compaction RV.
   */
  compactAndExpireWatches(): number {
    const rv = this.api.store.compact();
    for (const w of [...this.watches]) w.expire();
    return rv;
  }

  private async handle(raw: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = Date.now();
    const url = new URL(raw.url ?? '/', 'http://localhost');
    const method = raw.method ?? 'GET';
    try {
      const rawBody = method === 'GET' || method === 'HEAD' ? Buffer.alloc(0) : await readBody(raw);
      await this.route({ method, url, headers: raw.headers, body: rawBody.toString('utf8'), raw: rawBody }, res);
    } catch (err) {
      if (err instanceof ApiError) sendError(res, err);
      else {
        this.log.error({ err, method, path: url.pathname }, 'request failed');
        if (!res.headersSent) sendError(res, new ApiError(500, 'InternalError', `Internal error occurred: ${(err as Error).message}`));
        else res.end();
      }
    } finally {
      this.log.debug({ method, path: url.pathname, query: url.search, code: res.statusCode, ms: Date.now() - started }, 'served request');
      this.onRequest?.({ method, path: url.pathname, query: url.search, code: res.statusCode });
    }
  }

  private async route(req: Req, res: ServerResponse): Promise<void> {
    const path = req.url.pathname.replace(/\/+$/, '') || '/';
    const segs = path.split('/').filter((s) => s !== '').map(decodeURIComponent);
    const accept = req.headers.accept;
    if (req.method === 'GET') {
      switch (path) {
        case '/version': return send(res, 200, VERSION_INFO);
        case '/healthz': case '/livez': case '/readyz':
          res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
          res.end('ok');
          return;
        // The real server writes its OpenAPI v3 discovery without a media type, so Go sniffs text.
        case '/openapi/v3': return send(res, 200, openapiRoot(this.api.registry), 'text/plain; charset=utf-8');
        case '/openapi/v2':
          // An empty protobuf message is a valid empty OpenAPI Document; kubectl then validates
          // nothing client-side and leaves fieldValidation to the server.
          res.writeHead(200, { 'Content-Type': 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf', 'Content-Length': '0' });
          res.end();
          return;
        case '/api':
          if (wantsAggregated(accept)) return send(res, 200, aggregatedDiscovery(this.api.registry, true), AGGREGATED_CONTENT_TYPE);
          return send(res, 200, apiVersions(this.serverAddress));
        case '/apis':
          if (wantsAggregated(accept)) return send(res, 200, aggregatedDiscovery(this.api.registry, false), AGGREGATED_CONTENT_TYPE);
          return send(res, 200, apiGroupList(this.api.registry));
        case '/api/v1': return send(res, 200, apiResourceList(this.api.registry, '', 'v1'));
        default:
      }
      if (segs[0] === 'openapi' && segs[1] === 'v3' && segs.length > 2) {
        const doc = segs[2] === 'api' && segs.length === 4 ? gvDocument(this.api.registry, '', segs[3]!)
          : segs[2] === 'apis' && segs.length === 5 ? gvDocument(this.api.registry, segs[3]!, segs[4]!) : undefined;
        if (!doc) throw pathNotFound();
        return send(res, 200, doc);
      }
      if (segs[0] === 'apis' && segs.length === 2) {
        const g = apiGroup(this.api.registry, segs[1]!);
        if (!g) return sendNotFoundPage(res);
        return send(res, 200, g);
      }
      if (segs[0] === 'apis' && segs.length === 3) {
        const l = apiResourceList(this.api.registry, segs[1]!, segs[2]!);
        if (!l) return sendNotFoundPage(res);
        return send(res, 200, l);
      }
    }
    if (path === '/_emulator/compact' && req.method === 'POST') {
      return send(res, 200, { resourceVersion: String(this.compactAndExpireWatches()) });
    }
    const rp = this.parseResourcePath(segs);
    if (!rp) {
      if (segs[0] === 'apis' && !this.servesResourceOf(segs)) return sendNotFoundPage(res);
      throw pathNotFound();
    }
    return this.serveResource(req, res, rp);
  }

  /** Whether /apis/<group>/<version>/[watch/][namespaces/<ns>/]<plural>... names a resource served here. */
  private servesResourceOf(segs: string[]): boolean {
    let rest = segs.slice(3);
    if (rest[0] === 'watch') rest = rest.slice(1);
    if (rest[0] === 'namespaces' && rest.length >= 3) rest = rest.slice(2);
    return rest[0] !== undefined && this.api.registry.lookup(segs[1] ?? '', segs[2] ?? '', rest[0]) !== undefined;
  }

  private parseResourcePath(segs: string[]): ResourcePath | undefined {
    let group: string;
    let version: string;
    let rest: string[];
    if (segs[0] === 'api' && segs[1] === 'v1') {
      group = '';
      version = 'v1';
      rest = segs.slice(2);
    } else if (segs[0] === 'apis' && segs.length >= 4) {
      group = segs[1]!;
      version = segs[2]!;
      rest = segs.slice(3);
    } else return undefined;
    let watch = false;
    if (rest[0] === 'watch') {
      watch = true;
      rest = rest.slice(1);
    }
    let namespace: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3 && rest[2] !== 'status' && rest[2] !== 'finalize') {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const [plural, name, subresource, ...extra] = rest;
    if (!plural || extra.length > 0) return undefined;
    const def = this.api.registry.lookup(group, version, plural);
    if (!def) return undefined;
    if (namespace !== undefined && !def.namespaced) return undefined;
    if (subresource !== undefined && !(subresource === 'status' && def.statusSubresource)) return undefined;
    if (def.namespaced && namespace === undefined && name !== undefined) return undefined;
    return { def, namespace, name, subresource, watch };
  }

  private writeOptions(req: Req, patchType?: string): WriteOptions {
    const q = req.url.searchParams;
    const fvRaw = q.get('fieldValidation');
    let fieldValidation: FieldValidation = 'Warn';
    if (fvRaw) {
      if (fvRaw !== 'Strict' && fvRaw !== 'Warn' && fvRaw !== 'Ignore') {
        throw badRequest(`fieldValidation: Unsupported value: "${fvRaw}": supported values: "Ignore", "Strict", "Warn"`);
      }
      fieldValidation = fvRaw;
    }
    const dryRun = q.getAll('dryRun');
    for (const d of dryRun) if (d !== 'All') throw badRequest(`dryRun: Unsupported value: "${d}": supported values: "All"`);
    let fieldManager = q.get('fieldManager') ?? '';
    if (!fieldManager && patchType !== 'application/apply-patch+yaml') {
      fieldManager = (req.headers['user-agent'] ?? 'unknown').split('/')[0]!.slice(0, 128) || 'unknown';
    }
    const forceRaw = q.get('force');
    return { dryRun: dryRun.length > 0, fieldValidation, fieldManager, force: forceRaw === null ? undefined : forceRaw === 'true' };
  }

  private async serveResource(req: Req, res: ServerResponse, rp: ResourcePath): Promise<void> {
    const { def, namespace, name, subresource } = rp;
    const q = req.url.searchParams;
    const dep = def.deprecationWarning ? [def.deprecationWarning] : [];
    const table = wantsTable(req.headers.accept);
    const isWatch = rp.watch || q.get('watch') === 'true' || q.get('watch') === '1';
    switch (req.method) {
      case 'GET': {
        if (isWatch) {
          const fieldSel = [q.get('fieldSelector'), name ? `metadata.name=${name}` : null].filter((x) => x).join(',');
          return this.watch(req, res, def, namespace, this.api.parseSelectors(def, q.get('labelSelector'), fieldSel || null), table, dep);
        }
        if (name) {
          const obj = this.api.get(def, namespace, name);
          if (table) {
            const options = { includeObject: q.get('includeObject'), resourceVersion: obj.metadata.resourceVersion };
            return send(res, 200, buildTable(def.table, [obj], options), TABLE_TYPE, dep);
          }
          return send(res, 200, obj, JSON_TYPE, dep);
        }
        const sel = this.api.parseSelectors(def, q.get('labelSelector'), q.get('fieldSelector'));
        const { items, resourceVersion } = this.api.list(def, namespace, sel, q.get('resourceVersion'));
        if (table) {
          return send(res, 200, buildTable(def.table, items, { includeObject: q.get('includeObject'), resourceVersion }), TABLE_TYPE, dep);
        }
        return send(res, 200, listBody(def, items, resourceVersion), JSON_TYPE, dep);
      }
      case 'POST': {
        // The all-namespaces path of a namespaced resource serves only list and watch.
        if (name || (def.namespaced && namespace === undefined)) throw methodNotAllowed();
        const r = this.api.create(def, namespace, parseBody(req), this.writeOptions(req));
        return send(res, r.code, r.body, JSON_TYPE, [...dep, ...r.warnings]);
      }
      case 'PUT': {
        if (!name) throw methodNotAllowed();
        const r = this.api.update(def, namespace, name, parseBody(req), this.writeOptions(req), subresource, { put: true });
        return send(res, r.code, r.body, JSON_TYPE, [...dep, ...r.warnings]);
      }
      case 'PATCH': {
        if (!name) throw methodNotAllowed();
        const ct = req.headers['content-type'] ?? '';
        const r = this.api.patch(def, namespace, name, ct, req.body, this.writeOptions(req, ct.split(';')[0]), subresource);
        return send(res, r.code, r.body, JSON_TYPE, [...dep, ...r.warnings]);
      }
      case 'DELETE': {
        if (subresource) throw methodNotAllowed();
        const opts = parseBody(req);
        const dryRun = q.getAll('dryRun').length > 0 ||
          (Array.isArray((opts as { dryRun?: unknown } | undefined)?.dryRun) && ((opts as { dryRun: unknown[] }).dryRun.length > 0));
        if (!name) {
          if (def.namespaced && namespace === undefined) throw methodNotAllowed();
          const sel = this.api.parseSelectors(def, q.get('labelSelector'), q.get('fieldSelector'));
          const r = this.api.deleteCollection(def, namespace, sel, dryRun);
          return send(res, r.code, r.body, JSON_TYPE, dep);
        }
        const r = this.api.delete(def, namespace, name, opts, dryRun);
        return send(res, r.code, r.body, JSON_TYPE, dep);
      }
      default:
        throw methodNotAllowed();
    }
  }

  private watch(
    req: Req, res: ServerResponse, def: ResourceDef, namespace: string | undefined, sel: Selectors, table: boolean, warnings: string[],
  ): void {
    const q = req.url.searchParams;
    const rvParam = q.get('resourceVersion');
    const bookmarks = q.get('allowWatchBookmarks') === 'true';
    const timeoutRaw = q.get('timeoutSeconds');
    const timeoutMs = timeoutRaw !== null ? Math.max(0, Number(timeoutRaw)) * 1000 : (1800 + Math.random() * 1800) * 1000;
    if (q.get('sendInitialEvents') === 'true') throw badRequest('sendInitialEvents is not supported by this server');
    let fromRV: number;
    const initial: KubeObject[] = [];
    if (rvParam === null || rvParam === '' || rvParam === '0') {
      fromRV = this.api.store.currentRV();
      for (const o of this.api.store.list(def.storageKey, namespace)) if (this.api.matches(def, o, sel)) initial.push(o);
    } else {
      fromRV = Number(rvParam);
      if (!Number.isInteger(fromRV) || fromRV < 0) throw badRequest(`invalid resource version: ${rvParam}`);
    }
    const headers: Record<string, string | string[]> = {
      'Content-Type': table ? TABLE_TYPE : JSON_TYPE, 'Transfer-Encoding': 'chunked', 'Cache-Control': 'no-cache, private',
    };
    if (warnings.length > 0) headers.Warning = warnings.map((w) => `299 - ${JSON.stringify(w)}`);
    res.writeHead(200, headers);
    res.flushHeaders();
    let first = true;
    const write = (type: string, stored: KubeObject): void => {
      let object: unknown = this.api.present(def, stored);
      if (table && type !== 'BOOKMARK' && type !== 'ERROR') {
        object = buildTable(def.table, [object as KubeObject], {
          includeObject: q.get('includeObject'), noHeaders: !first, resourceVersion: stored.metadata.resourceVersion,
        });
        first = false;
      }
      res.write(`${JSON.stringify({ type, object })}\n`);
    };
    const onEvent = (ev: StoreEvent): void => {
      if (ev.storageKey !== def.storageKey) return;
      if (namespace !== undefined && ev.object.metadata.namespace !== namespace) return;
      const now = this.api.matches(def, ev.object, sel);
      const before = ev.previous ? this.api.matches(def, ev.previous, sel) : false;
      if (ev.type === 'MODIFIED') {
        if (now && before) write('MODIFIED', ev.object);
        else if (now) write('ADDED', ev.object);
        else if (before) write('DELETED', ev.object);
      } else if (now) write(ev.type, ev.object);
    };
    const expiredLine = (rv: number): string => {
      const status = new ApiError(410, 'Expired', `too old resource version: ${rv} (${this.api.store.oldestRV() + 1})`).toStatus();
      return `${JSON.stringify({ type: 'ERROR', object: status })}\n`;
    };
    let lastSentRV = fromRV;
    const sub = this.api.store.subscribe(fromRV, (ev) => {
      lastSentRV = ev.rv;
      onEvent(ev);
    });
    if (!sub) {
      res.end(expiredLine(fromRV));
      return;
    }
    for (const o of initial) write('ADDED', o);
    for (const ev of sub.replay) {
      lastSentRV = ev.rv;
      onEvent(ev);
    }
    const bookmark = (): void => {
      const bookmark = {
        type: 'BOOKMARK',
        object: { kind: def.kind, apiVersion: apiVersionOf(def), metadata: { resourceVersion: String(this.api.store.currentRV()) } },
      };
      res.write(`${JSON.stringify(bookmark)}\n`);
    };
    const bookmarkTimer = bookmarks ? setInterval(bookmark, this.bookmarkIntervalMs) : undefined;
    const entry = {
      def,
      end: (): void => finish(),
      expire: (): void => {
        if (!res.writableEnded) res.write(expiredLine(lastSentRV));
        finish();
      },
    };
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(deadline);
      if (bookmarkTimer) clearInterval(bookmarkTimer);
      sub.unsubscribe();
      this.watches.delete(entry);
      if (!res.writableEnded) res.end();
    };
    const deadline = setTimeout(() => {
      if (bookmarks) bookmark();
      finish();
    }, timeoutMs);
    this.watches.add(entry);
    res.on('close', finish);
  }
}

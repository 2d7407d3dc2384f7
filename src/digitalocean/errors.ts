// Typed DigitalOcean errors. Transient ones (429, 5xx, timeouts, connection failures, 422
// "pending event") are worth retrying; terminal ones need a person: a missing token scope, a
// missing resource, a rejected request. Every error names the request that failed.

export type ErrorKind = 'transient' | 'terminal';

export interface ErrorDetails {
  method: string;
  path: string;
  status?: number;
  id?: string;
  requestId?: string;
  /** The token scope a 401/403 points at. */
  scope?: string;
  /** Set when the API answered at all (false for timeouts and connection failures). */
  answered?: boolean;
}

export class DigitalOceanError extends Error {
  readonly kind: ErrorKind;
  readonly details: ErrorDetails;
  constructor(kind: ErrorKind, message: string, details: ErrorDetails) {
    super(message);
    this.name = kind === 'transient' ? 'DigitalOceanTransientError' : 'DigitalOceanTerminalError';
    this.kind = kind;
    this.details = details;
  }
  get status(): number | undefined {
    return this.details.status;
  }
  get transient(): boolean {
    return this.kind === 'transient';
  }
}

/** The token scope each request needs, from the OpenAPI spec's `security.bearer_auth`
 * (test/digitalocean/scopes.test.ts checks this table against the spec). */
export const SCOPE_TABLE: readonly { method: string; template: string; scope: string }[] = [
  { method: 'GET', template: '/v2/droplets', scope: 'droplet:read' },
  { method: 'POST', template: '/v2/droplets', scope: 'droplet:create' },
  { method: 'DELETE', template: '/v2/droplets', scope: 'droplet:delete' },
  { method: 'GET', template: '/v2/droplets/{droplet_id}', scope: 'droplet:read' },
  { method: 'DELETE', template: '/v2/droplets/{droplet_id}', scope: 'droplet:delete' },
  { method: 'POST', template: '/v2/droplets/{droplet_id}/actions', scope: 'droplet:update' },
  { method: 'GET', template: '/v2/droplets/{droplet_id}/actions/{action_id}', scope: 'droplet:read' },
  { method: 'GET', template: '/v2/actions/{action_id}', scope: 'actions:read' },
  { method: 'GET', template: '/v2/reports/droplet_neighbors_ids', scope: 'droplet:read' },
  { method: 'GET', template: '/v2/reserved_ips', scope: 'reserved_ip:read' },
  { method: 'POST', template: '/v2/reserved_ips', scope: 'reserved_ip:create' },
  { method: 'GET', template: '/v2/reserved_ips/{reserved_ip}', scope: 'reserved_ip:read' },
  { method: 'DELETE', template: '/v2/reserved_ips/{reserved_ip}', scope: 'reserved_ip:delete' },
  { method: 'POST', template: '/v2/reserved_ips/{reserved_ip}/actions', scope: 'reserved_ip:update' },
  { method: 'GET', template: '/v2/reserved_ips/{reserved_ip}/actions/{action_id}', scope: 'reserved_ip:read' },
  { method: 'GET', template: '/v2/tags', scope: 'tag:read' },
  { method: 'POST', template: '/v2/tags', scope: 'tag:create' },
  { method: 'GET', template: '/v2/firewalls', scope: 'firewall:read' },
  { method: 'POST', template: '/v2/firewalls', scope: 'firewall:create' },
  { method: 'GET', template: '/v2/firewalls/{firewall_id}', scope: 'firewall:read' },
  { method: 'PUT', template: '/v2/firewalls/{firewall_id}', scope: 'firewall:update' },
  { method: 'DELETE', template: '/v2/firewalls/{firewall_id}', scope: 'firewall:delete' },
  { method: 'GET', template: '/v2/account', scope: 'account:read' },
  { method: 'GET', template: '/v2/account/keys', scope: 'ssh_key:read' },
  { method: 'POST', template: '/v2/account/keys', scope: 'ssh_key:create' },
];

const compiled = SCOPE_TABLE.map((e) => ({
  ...e,
  pattern: new RegExp(`^${e.template.replace(/\{[a-z_]+\}/g, '[^/]+')}/?$`),
}));

/** The scope a request needs; `path` may be relative to /v2 (as dots sends it) or absolute. */
export function requiredScope(method: string, path: string): string | undefined {
  let pathname = path.split('?')[0] ?? '';
  try {
    if (/^https?:/.test(pathname)) pathname = new URL(pathname).pathname;
  } catch {
    // keep the raw path
  }
  if (!pathname.startsWith('/v2/')) pathname = `/v2${pathname.startsWith('/') ? '' : '/'}${pathname}`;
  const upper = method.toUpperCase();
  return compiled.find((e) => e.method === upper && e.pattern.test(pathname))?.scope;
}

export function isPendingEvent(status: number | undefined, message: string | undefined): boolean {
  return status === 422 && /pending event/i.test(message ?? '');
}

/** Only what classification reads from an axios error (axios is dots-wrapper's, not ours). */
export interface HttpErrorLike {
  isAxiosError?: boolean;
  code?: string;
  message?: string;
  config?: { method?: string; url?: string; baseURL?: string };
  response?: { status: number; data?: unknown; headers?: Record<string, unknown> };
}

/** Turns a failed HTTP exchange into a DigitalOceanError. */
export function classifyError(err: HttpErrorLike): DigitalOceanError {
  const method = (err.config?.method ?? 'GET').toUpperCase();
  const path = err.config?.url ?? '';
  const where = `${method} ${path}`;
  const res = err.response;
  if (!res) {
    const timedOut = err.code === 'ECONNABORTED' || err.code === 'ETIMEDOUT';
    const failure = timedOut ? 'timed out' : `failed: ${err.code ?? err.message ?? 'no response'}`;
    return new DigitalOceanError('transient', `${where} ${failure}`, { method, path, answered: false });
  }
  const data = (res.data ?? {}) as { id?: unknown; message?: unknown; request_id?: unknown; error?: unknown };
  // Most errors are {id, message}; POST /v2/tags answers 400 with {error, messages, root_causes}.
  const apiMessage = typeof data.message === 'string' ? data.message : typeof data.error === 'string' ? data.error : '';
  const details: ErrorDetails = { method, path, status: res.status, answered: true };
  if (typeof data.id === 'string') details.id = data.id;
  if (typeof data.request_id === 'string') details.requestId = data.request_id;
  const suffix = apiMessage ? `: ${apiMessage}` : '';
  if (res.status === 401) {
    return new DigitalOceanError('terminal',
      `${where} was rejected (401): the DigitalOcean token is missing, invalid or revoked${suffix}`, details);
  }
  if (res.status === 403) {
    const scope = requiredScope(method, path);
    if (scope) details.scope = scope;
    const need = scope ? `the token lacks the "${scope}" scope` : 'the token lacks a scope this request needs';
    return new DigitalOceanError('terminal', `${where} was forbidden (403): ${need}; create a token with it${suffix}`, details);
  }
  if (res.status === 429 || res.status >= 500 || res.status === 408) {
    return new DigitalOceanError('transient', `${where} failed (${res.status})${suffix}`, details);
  }
  if (isPendingEvent(res.status, apiMessage)) {
    return new DigitalOceanError('transient', `${where} must wait (422)${suffix}`, details);
  }
  return new DigitalOceanError('terminal', `${where} failed (${res.status})${suffix}`, details);
}

// The DigitalOcean client halb uses: the unmodified dots-wrapper, built around our own HTTP
// context so that every call (dots' modules and our raw /v2/reserved_ips calls alike) shares
// one axios instance with the token, endpoint and timeout, and goes through the same pacing,
// retries and error typing.
import { AsyncLocalStorage } from 'node:async_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { modules } from 'dots-wrapper';
import pino from 'pino';
import type { Logger } from 'pino';
import { DigitalOceanError, classifyError, isPendingEvent } from './errors.ts';
import type { HttpErrorLike } from './errors.ts';
import { backoffDelay, type BackoffSettings } from '../backoff.ts';
import { RateLimitPacer, parseRetryAfter } from './pacing.ts';

export type HttpClient = ReturnType<typeof modules.common.createContext>['httpClient'];
export type DotsClient = ReturnType<ReturnType<typeof modules.common.createApiClient>>;

export const DEFAULT_ENDPOINT = 'https://api.digitalocean.com/v2';

export interface ClientOptions {
  token: string;
  /** Must include /v2, e.g. http://127.0.0.1:8089/v2 for the simulator. */
  endpoint?: string;
  requestTimeoutMs?: number;
  /** Attempts per request, the first included. */
  maxAttempts?: number;
  backoff?: BackoffSettings;
  /** Requests to leave unused in the rate-limit window. */
  rateLimitReserve?: number;
  /** DigitalOcean's burst limit, kept client-side (null = none). Default 250 per 60 s. */
  burstLimit?: { limit: number; windowMs: number } | null;
  logger?: Logger;
  random?: () => number;
}

export interface DigitalOceanClient {
  dots: DotsClient;
  http: HttpClient;
  pacer: RateLimitPacer;
  /** Requests sent so far, retries included (benchmarks and tests read it). */
  stats: { requests: number; retries: number; rateLimited: number };
  logger: Logger;
  /** Sleeps, for the polling loops; tests shorten the intervals, not this. */
  sleep: (ms: number) => Promise<void>;
  random: () => number;
  backoff: BackoffSettings;
}

interface RetryState {
  halbAttempt?: number;
  method?: string;
  url?: string;
}

/**
 * The AbortSignal of the work in progress. dots-wrapper takes no per-call options, so a caller
 * scopes its calls with withAbortSignal() and every request, pacing wait and retry sleep inside
 * that scope ends when the signal aborts (the operator's reconcile passes lose their Lease).
 */
const abortScope = new AsyncLocalStorage<AbortSignal>();

export function withAbortSignal<T>(signal: AbortSignal, work: () => Promise<T>): Promise<T> {
  return abortScope.run(signal, work);
}

/** Sleeps, ending early (rejecting with the signal's reason) when the current scope aborts. */
const sleep = async (ms: number): Promise<void> => {
  const signal = abortScope.getStore();
  await delay(ms, undefined, signal ? { signal } : {});
};

/** POSTs that create something: repeating one after a lost answer could create it twice, so
 * they are retried only when the API certainly refused them (429, 422 pending event). The
 * callers make them idempotent by looking before they create. */
function isUnsafeCreate(method: string, url: string): boolean {
  if (method !== 'POST') return false;
  const path = url.split('?')[0]!.replace(/^https?:\/\/[^/]+/, '').replace(/^\/v2/, '');
  return ['/droplets', '/reserved_ips', '/floating_ips', '/firewalls', '/account/keys'].includes(path.replace(/\/$/, ''));
}

export function createDigitalOceanClient(options: ClientOptions): DigitalOceanClient {
  if (typeof options.token !== 'string' || options.token.trim() === '') throw new Error('DigitalOcean token is empty');
  const endpoint = (options.endpoint ?? DEFAULT_ENDPOINT).replace(/\/$/, '');
  if (!/^https?:\/\/.+\/v2$/.test(endpoint)) {
    throw new Error(`DigitalOcean endpoint must be an http(s) URL ending in /v2, got "${endpoint}"`);
  }
  const logger = options.logger ?? pino({ level: 'silent' });
  const maxAttempts = options.maxAttempts ?? 6;
  const backoff = options.backoff ?? { baseMs: 500, maxMs: 30_000 };
  const random = options.random ?? Math.random;
  const burst = options.burstLimit === undefined ? { limit: 250, windowMs: 60_000 } : options.burstLimit;
  const pacer = new RateLimitPacer({ reserve: options.rateLimitReserve ?? 10, marginMs: 100, ...(burst ? { burst } : {}) });
  const stats = { requests: 0, retries: 0, rateLimited: 0 };
  let http: HttpClient | undefined;

  const createContext: typeof modules.common.createContext = (input) => {
    const context = modules.common.createContext(input);
    const client = context.httpClient;
    client.interceptors.request.use(async (config) => {
      const signal = abortScope.getStore();
      if (signal) {
        signal.throwIfAborted();
        config.signal = signal;
      }
      for (;;) {
        const wait = pacer.reserveSlot(Date.now());
        if (wait <= 0) break;
        logger.debug({ waitMs: wait }, 'request paced by rate limit');
        await sleep(wait);
      }
      stats.requests += 1;
      return config;
    });
    client.interceptors.response.use(
      (response) => {
        pacer.finished(response.headers as Record<string, unknown>);
        return response;
      },
      async (raw: unknown) => {
        const err = raw as HttpErrorLike & { config?: RetryState };
        if (raw instanceof DigitalOceanError || !err?.isAxiosError) throw raw;
        const signal = abortScope.getStore();
        if (signal?.aborted) throw signal.reason;
        const now = Date.now();
        const headers = err.response?.headers;
        pacer.finished(headers);
        const typed = classifyError(err);
        const config = err.config as (RetryState & Record<string, unknown>) | undefined;
        const attempt = (config?.halbAttempt ?? 1);
        const status = err.response?.status;
        const method = (config?.method ?? 'get').toUpperCase();
        // A 422 "pending event" is DigitalOcean saying "not now": the caller asks again later
        // (the operator with a timed requeue), so the client does not wait it out here.
        const pendingEvent = isPendingEvent(status, (err.response?.data as { message?: string } | undefined)?.message);
        const retryable = typed.transient && !pendingEvent && (status === 429 || !isUnsafeCreate(method, String(config?.url ?? '')));
        if (status === 429) {
          stats.rateLimited += 1;
          const retryAfter = parseRetryAfter(headers?.['retry-after'], now);
          if (retryAfter !== undefined) pacer.pauseUntil(now + retryAfter);
        }
        if (!retryable || !config || attempt >= maxAttempts) {
          if (typed.transient && attempt >= maxAttempts) typed.message += ` (gave up after ${attempt} attempts)`;
          throw typed;
        }
        const delay = backoffDelay(attempt - 1, backoff, random); // full jitter: clients do not retry in step
        stats.retries += 1;
        logger.warn({ method, url: config.url, status, attempt, delayMs: delay }, 'request retried');
        await sleep(delay);
        config.halbAttempt = attempt + 1;
        return client.request(config);
      },
    );
    http = client;
    return context;
  };

  const dots = modules.common.createApiClient({ modules, createContext })({
    token: options.token.trim(),
    endpoint,
    requestTimeoutInMs: options.requestTimeoutMs ?? 15_000,
  });
  if (!http) throw new Error('dots-wrapper did not build its HTTP context');
  return { dots, http, pacer, stats, logger, sleep, random, backoff };
}

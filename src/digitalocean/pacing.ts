// Request pacing and retry timing. DigitalOcean reports `ratelimit-remaining` and
// `ratelimit-reset` (epoch seconds when the oldest counted request leaves the window) on every
// answer; the pacer holds requests back before the budget runs out instead of earning a 429.


/** `retry-after` in seconds or as an HTTP date, in milliseconds from `now`. */
export function parseRetryAfter(value: unknown, now: number): number | undefined {
  if (typeof value !== 'string' && typeof value !== 'number') return undefined;
  const text = String(value).trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export interface PacerSettings {
  /** Requests to leave unused in the window (for the failover script, when it shares the token). */
  reserve: number;
  /** Added to waits for the reset, because `ratelimit-reset` is rounded to seconds. */
  marginMs: number;
  /** The burst limit, which the headers do not report (DigitalOcean: 250 per minute): the
   * pacer keeps its own rolling count of what it sent. */
  burst?: { limit: number; windowMs: number };
}

const PROBE_WAIT_MS = 25;

/** Tracks the rate-limit budget across concurrent requests of one token. */
export class RateLimitPacer {
  private readonly settings: PacerSettings;
  private remaining: number | undefined;
  private resetAtMs = 0;
  private pausedUntilMs = 0;
  private inFlight = 0;
  private probing = false;
  /** Send times within the burst window, oldest first. */
  private readonly sent: number[] = [];

  constructor(settings: PacerSettings) {
    this.settings = settings;
  }

  /** How long the next request must wait; 0 = go now (and it is counted as sent). While the
   * budget is unknown (no answer yet, or the reset has passed) one request goes alone as a probe
   * and the rest wait for its answer. */
  reserveSlot(now: number): number {
    if (now < this.pausedUntilMs) return this.pausedUntilMs - now;
    const burst = this.settings.burst;
    if (burst) {
      // The server counts a request when it arrives, a little after we send it: keep a margin.
      const windowMs = burst.windowMs + this.settings.marginMs;
      while (this.sent.length > 0 && this.sent[0]! <= now - windowMs) this.sent.shift();
      if (this.sent.length >= burst.limit) return this.sent[0]! + windowMs - now + 1;
    }
    const exhausted = this.remaining !== undefined && this.remaining - this.settings.reserve <= 0;
    if (exhausted && now < this.resetAtMs) return this.resetAtMs - now;
    if (this.remaining === undefined || exhausted) {
      if (this.probing) return PROBE_WAIT_MS;
      this.probing = true;
    } else {
      this.remaining -= 1;
    }
    this.inFlight += 1;
    if (burst) this.sent.push(now);
    return 0;
  }

  /** Records an answer's headers (or none, for a failed connection). */
  finished(headers: Record<string, unknown> | undefined): void {
    this.inFlight = Math.max(0, this.inFlight - 1);
    this.probing = false;
    const remaining = Number(headers?.['ratelimit-remaining']);
    const reset = Number(headers?.['ratelimit-reset']);
    if (headers?.['ratelimit-remaining'] !== undefined && Number.isFinite(remaining)) {
      // Requests still in flight were counted by the server after this answer's figure was taken, or will be.
      this.remaining = remaining - this.inFlight;
      if (Number.isFinite(reset)) this.resetAtMs = reset * 1000 + this.settings.marginMs;
    }
  }

  /** A 429 with retry-after (the burst limit): hold every request until `untilMs`. The hourly
   * budget the headers reported still stands. */
  pauseUntil(untilMs: number): void {
    this.pausedUntilMs = Math.max(this.pausedUntilMs, untilMs);
  }

  snapshot(): { remaining: number | undefined; resetAtMs: number; pausedUntilMs: number; inFlight: number } {
    return { remaining: this.remaining, resetAtMs: this.resetAtMs, pausedUntilMs: this.pausedUntilMs, inFlight: this.inFlight };
  }
}

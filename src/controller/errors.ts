// One error model for the controller, as controller-runtime's: an error is either terminal (a
// person must act; it becomes a condition with a reason and is not retried with backoff) or
// transient (anything else; the work queue retries it with per-key backoff). Terminal errors
// that may clear without the object changing (a Secret created later, a key added to the
// DigitalOcean account) carry a time to look again.
import type { Problem } from '../api/validate.ts';
import { DigitalOceanError } from '../digitalocean/errors.ts';

/** Condition reasons of terminal errors. */
export const terminalReasons = {
  invalidSpec: 'InvalidSpec',
  secretNotFound: 'SecretNotFound',
  cloudResourceNotFound: 'CloudResourceNotFound',
  cloudRequestRefused: 'CloudRequestRefused',
} as const;

export type TerminalReason = (typeof terminalReasons)[keyof typeof terminalReasons];

/** How soon a terminal error that may clear by itself is looked at again. */
export const RECHECK_MS: Record<TerminalReason, number | undefined> = {
  InvalidSpec: undefined,
  SecretNotFound: 30_000,
  CloudResourceNotFound: 60_000,
  CloudRequestRefused: 60_000,
};

export class TerminalError extends Error {
  readonly reason: TerminalReason;
  readonly problems: readonly Problem[];

  constructor(reason: TerminalReason, problems: readonly Problem[]) {
    super(problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('; '));
    this.name = 'TerminalError';
    this.reason = reason;
    this.problems = problems;
  }

  /** Look again after this long, or never (the spec must change). */
  get recheckAfterMs(): number | undefined {
    return RECHECK_MS[this.reason];
  }
}

/** One problem at one field, as a terminal error. */
export function terminal(reason: TerminalReason, path: string, message: string): TerminalError {
  return new TerminalError(reason, [{ path, message }]);
}

/** A refusal by DigitalOcean that retrying cannot fix (a missing scope, a rejected request). */
export function asTerminal(err: unknown): TerminalError | undefined {
  if (err instanceof TerminalError) return err;
  if (err instanceof DigitalOceanError && err.kind === 'terminal') {
    return terminal(terminalReasons.cloudRequestRefused, '', `DigitalOcean refused: ${err.message}`);
  }
  return undefined;
}

/** The HTTP status of a Kubernetes API error (client-node's ApiException) or a DigitalOcean error. */
export function statusCodeOf(err: unknown): number | undefined {
  if (err instanceof DigitalOceanError) return err.status;
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'number') return err.code;
  return undefined;
}

export const isNotFound = (err: unknown): boolean => statusCodeOf(err) === 404;
export const isConflict = (err: unknown): boolean => statusCodeOf(err) === 409;

/** The error a cancelled operation rejects with (AbortSignal.reason or our own). */
export function isAborted(err: unknown, signal?: AbortSignal): boolean {
  return (signal?.aborted === true && err === signal.reason) || (err instanceof Error && err.name === 'AbortError');
}

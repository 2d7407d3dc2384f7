// Structured logs (pino JSON). Secrets never reach a log line: values under sensitive keys are
// replaced at any depth, and any string carrying a private key block or a DigitalOcean token is
// scrubbed, message text included. Messages are short and past tense, context goes in fields:
//   log.info({ node: 'web-1', hash }, 'applied config')
import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger };

export const REDACTED = '[redacted]';

const SENSITIVE_KEYS: ReadonlySet<string> = new Set([
  'token', 'password', 'passwd', 'secret', 'secrets', 'privatekey', 'private_key', 'ssh-privatekey', 'authorization', 'data',
  'stringdata', 'tls.key', 'auth_pass', 'api_key', 'apikey',
]);
const sensitiveKey = (key: string) => SENSITIVE_KEYS.has(key.toLowerCase());
const secretValue = [
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)/g,
  /\bdo[pro]_v1_[A-Za-z0-9]{16,}\b/g,
  /\bBearer\s+[A-Za-z0-9._~+/=-]{8,}/gi,
];

export function scrubText(text: string): string {
  return secretValue.reduce((acc, re) => acc.replace(re, REDACTED), text);
}

/** A copy of a log record's fields with secrets replaced, at any depth. */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 8) return '[deep]';
  if (typeof value === 'string') return scrubText(value);
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  if (value instanceof Error) return { type: value.name, message: scrubText(value.message) };
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>)
      .map(([k, v]) => [k, sensitiveKey(k) ? REDACTED : redact(v, depth + 1)]));
  }
  return value;
}

export function createLogger(options: { level?: string; name?: string } = {}, destination?: DestinationStream): Logger {
  return pino({
    level: options.level ?? process.env.HALB_LOG_LEVEL ?? 'info',
    base: options.name ? { name: options.name } : {},
    formatters: { log: (fields) => redact(fields) as Record<string, unknown> },
    hooks: {
      logMethod(args, method) {
        const scrubbed = args.map((a) => (typeof a === 'string' ? scrubText(a) : a)) as Parameters<typeof method>;
        method.apply(this, scrubbed);
      },
    },
  }, destination);
}

const LEVEL_NAMES: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

/** One pino record as a line for people: `12:04:05 warn restarted stopped daemons node=basic-1`. */
export function readableLine(json: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.trimEnd();
  }
  const { level, time, msg, pid: _pid, hostname: _hostname, ...fields } = record;
  const clock = typeof time === 'number' ? new Date(time).toISOString().slice(11, 19) : '';
  const pairs = Object.entries(fields).map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`);
  return [clock, LEVEL_NAMES[level as number] ?? String(level), String(msg ?? ''), ...pairs].filter(Boolean).join(' ');
}

/** A pino destination that writes readable lines (readableLine) to a stream: for the commands
 *  people run in a terminal, whose output is never raw JSON. */
export function readableDestination(stream: { write(text: string): unknown } = process.stderr): DestinationStream {
  return { write: (chunk: string) => { for (const line of chunk.split('\n')) if (line) stream.write(`${readableLine(line)}\n`); } };
}

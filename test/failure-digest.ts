// A short account of why a sandbox test failed, printed at the very end of the run: CI keeps only
// the tail of a long output, where the full sandbox log printed beside the failure is lost. The
// first failed test of each file writes one digest (later failures there usually follow from it);
// the summary reporter prints them after vitest's summary.
import { appendFileSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where the test workers leave their digests for the reporter (one run at a time per machine). */
export const DIGEST_FILE = process.env.HALB_FAILURE_DIGEST ?? join(tmpdir(), 'halb-failure-digest.txt');

const WARN = 40;
/** How many distinct warnings and how many of the last info records a digest keeps. */
const WARNINGS_KEPT = 25;
const INFO_KEPT = 20;
/** Keys that say where a record comes from or what it is about; the rest stays in the full log. */
const CONTEXT_KEYS = ['component', 'controller', 'informer', 'halb', 'service', 'node', 'droplet', 'host', 'reason', 'retryInMs', 'status'];

type LogRecord = Record<string, unknown>;

const clockTime = (ms: unknown) => new Date(Number(ms)).toISOString().slice(11, 23);

function errorText(record: LogRecord): string {
  const err = record.err as { message?: unknown } | undefined;
  return typeof err?.message === 'string' ? err.message.split('\n')[0]!.slice(0, 200) : '';
}

/** One line of a record: time, level, message, its context keys and its error's first line. */
export function recordLine(record: LogRecord): string {
  const context = CONTEXT_KEYS.filter((k) => record[k] !== undefined && typeof record[k] !== 'object')
    .map((k) => `${k}=${String(record[k])}`).join(' ');
  const err = errorText(record);
  const level = Number(record.level) >= 50 ? 'ERROR' : Number(record.level) >= WARN ? 'WARN' : 'info';
  return [clockTime(record.time), level, JSON.stringify(record.msg ?? ''), context, err && `err=${JSON.stringify(err)}`]
    .filter(Boolean).join(' ');
}

/** Info records with runs of the same line (a resync every 2 s) folded into one, with a count. */
function foldRepeats(records: LogRecord[]): { line: string; count: number }[] {
  const folded: { key: string; line: string; count: number }[] = [];
  for (const record of records) {
    const line = recordLine(record);
    const key = line.slice(13); // without the time
    const last = folded.at(-1);
    if (last?.key === key) {
      last.count++;
      last.line = line;
    } else {
      folded.push({ key, line, count: 1 });
    }
  }
  return folded;
}

/** The digest of a failed test: its errors' first lines, the distinct warnings (each with how many
 *  times and when last), the last info records (repeats folded), and what the cluster said of its
 *  objects (`state`: one line per object, when the test gives it). */
export function failureDigest(test: string, errors: string[], records: LogRecord[], state: string[] = []): string {
  const warnings = new Map<string, { line: string; count: number }>();
  for (const record of records.filter((r) => Number(r.level) >= WARN)) {
    const key = `${String(record.msg)}|${String(record.component ?? record.controller ?? '')}|${errorText(record)}`;
    const count = (warnings.get(key)?.count ?? 0) + 1;
    // Deleted and set again, so the map stays in the order of each warning's last time.
    warnings.delete(key);
    warnings.set(key, { line: recordLine(record), count });
  }
  const info = foldRepeats(records.filter((r) => Number(r.level) < WARN && r.msg !== 'served request')).slice(-INFO_KEPT);
  return [
    `=== failed: ${test}`,
    ...errors.map((e) => `  error: ${e.split('\n')[0]}`),
    `  warnings (${warnings.size} distinct, last ${WARNINGS_KEPT}, each with its count):`,
    ...[...warnings.values()].slice(-WARNINGS_KEPT).map((w) => `    ${w.line} ×${w.count}`),
    `  last ${info.length} info records (a run of the same one folded, with its count):`,
    ...info.map((r) => `    ${r.line}${r.count > 1 ? ` ×${r.count}` : ''}`),
    ...(state.length ? ['  objects:', ...state.map((l) => `    ${l}`)] : []),
    '',
  ].join('\n');
}

const filesWithDigest = new Set<string>();

/** Writes the digest of a failed test, once per test file. */
export function leaveFailureDigest(file: string, test: string, errors: string[], records: LogRecord[], state: string[] = []): void {
  if (filesWithDigest.has(file)) return;
  filesWithDigest.add(file);
  appendFileSync(DIGEST_FILE, `${failureDigest(`${file} > ${test}`, errors, records, state)}\n`);
}

interface ListedObject {
  metadata?: { namespace?: string; name?: string };
  status?: {
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
    nodes?: { name: string; vrrpState?: string }[];
  };
}

/** One line per object of a `kubectl get -o json` list: its conditions and nodes, as status has them. */
export function objectStateLines(listJSON: string): string[] {
  let items: ListedObject[];
  try {
    items = (JSON.parse(listJSON) as { items?: ListedObject[] }).items ?? [];
  } catch {
    return [`(no list: ${listJSON.slice(0, 200)})`];
  }
  return items.map((o) => {
    const conditions = (o.status?.conditions ?? []).map((c) => `${c.type}=${c.status}${c.reason ? `/${c.reason}` : ''}` +
      (c.status !== 'True' && c.message ? ` (${c.message.slice(0, 160)})` : ''));
    const nodes = (o.status?.nodes ?? []).map((n) => `${n.name}:${n.vrrpState ?? '?'}`);
    return `${o.metadata?.namespace}/${o.metadata?.name}: ${conditions.join(', ') || 'no conditions'}; nodes ${nodes.join(' ') || 'none'}`;
  });
}

/** The digests the run left, removed as they are read. */
export function takeFailureDigests(): string {
  if (!existsSync(DIGEST_FILE)) return '';
  const text = readFileSync(DIGEST_FILE, 'utf8');
  rmSync(DIGEST_FILE, { force: true });
  return text;
}

export function clearFailureDigests(): void {
  rmSync(DIGEST_FILE, { force: true });
}

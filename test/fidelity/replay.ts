// Replays recorded exchanges against a server, in the order their requests arrived: each request
// is sent once the previous one is answered; a watch stays open, collecting its stream, until the
// replay reaches the point where the recorded watch ended. Values the server assigns
// (resourceVersion, uid) are learned from each answer against the recorded answer, and the
// requests that carry them (a watch from a list's resourceVersion, an update's precondition, an
// Event's involvedObject) are rewritten with this server's own.
import type { Exchange } from './record.ts';
import type { RawClient, Answer } from '../kube-real/http.ts';

export interface Replayed {
  exchange: Exchange;
  answer: Answer;
}

/** Keys whose values a server assigns and a client repeats (an OpenAPI document's URL carries its hash). */
const ASSIGNED = new Set(['resourceVersion', 'uid', 'serverRelativeURL']);

function parse(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The JSON values of a watch stream, one per line. */
export function streamEvents(text: string): { type: string; object: Record<string, unknown> }[] {
  return text.split('\n').filter((l) => l.trim()).flatMap((l) => {
    const event = parse(l) as { type?: string; object?: Record<string, unknown> } | undefined;
    return event?.type ? [{ type: event.type, object: event.object ?? {} }] : [];
  });
}

const keyOf = (v: unknown): string | undefined => {
  const m = (v as { metadata?: { name?: string; namespace?: string } } | null)?.metadata;
  return m?.name === undefined ? undefined : `${m.namespace ?? ''}/${m.name}`;
};

/** Learns recorded -> replayed values of assigned keys from two answers of the same shape. */
export function learn(recorded: unknown, replayed: unknown, into: Map<string, string>): void {
  if (Array.isArray(recorded) && Array.isArray(replayed)) {
    const byKey = new Map(replayed.map((r, i) => [keyOf(r) ?? `#${i}`, r]));
    recorded.forEach((r, i) => learn(r, byKey.get(keyOf(r) ?? `#${i}`), into));
    return;
  }
  if (!recorded || !replayed || typeof recorded !== 'object' || typeof replayed !== 'object') return;
  for (const [k, v] of Object.entries(recorded as Record<string, unknown>)) {
    const w = (replayed as Record<string, unknown>)[k];
    if (ASSIGNED.has(k) && typeof v === 'string' && typeof w === 'string' && v) into.set(`${k}:${v}`, w);
    else learn(v, w, into);
  }
}

/** The request body with assigned values this server gave in place of the recorded ones. */
function rewriteBody(value: unknown, map: Map<string, string>): unknown {
  if (Array.isArray(value)) return value.map((v) => rewriteBody(v, map));
  if (!value || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) =>
    [k, ASSIGNED.has(k) && typeof v === 'string' ? map.get(`${k}:${v}`) ?? v : rewriteBody(v, map)]));
}

function rewritePath(path: string, map: Map<string, string>): string {
  const url = new URL(path, 'http://x');
  // An OpenAPI document is asked for by the hash this server gave it (kubectl adds a timeout).
  const hash = url.searchParams.get('hash');
  const document = hash ? map.get(`serverRelativeURL:${url.pathname}?hash=${hash}`) : undefined;
  if (document) url.searchParams.set('hash', new URL(document, 'http://x').searchParams.get('hash') ?? hash!);
  const rv = url.searchParams.get('resourceVersion');
  if (rv && map.has(`resourceVersion:${rv}`)) url.searchParams.set('resourceVersion', map.get(`resourceVersion:${rv}`)!);
  return `${url.pathname}${url.search}`;
}

export function rewrite(exchange: Exchange, map: Map<string, string>): { path: string; body?: string } {
  const json = parse(exchange.requestBody);
  return {
    path: rewritePath(exchange.path, map),
    ...(exchange.requestBody === undefined
      ? {}
      : { body: json === undefined ? exchange.requestBody : JSON.stringify(rewriteBody(json, map)) }),
  };
}

/** How long a watch may still deliver after the replay reached its end: events are asynchronous. */
const WATCH_GRACE_MS = 400;

export async function replay(exchanges: Exchange[], client: RawClient, seed: () => Promise<void>): Promise<Replayed[]> {
  await seed();
  const map = new Map<string, string>();
  const out: Replayed[] = [];
  const watches: { exchange: Exchange; stop: () => void; done: Promise<Answer> }[] = [];
  const closeWatchesEndedBefore = async (position: number) => {
    const ending = watches.filter((w) => w.exchange.endSeq < position);
    if (!ending.length) return;
    await new Promise((r) => setTimeout(r, WATCH_GRACE_MS));
    for (const w of ending) {
      w.stop();
      const answer = await w.done;
      out.push({ exchange: w.exchange, answer });
      const recorded = streamEvents(w.exchange.responseBody).filter((e) => e.type !== 'BOOKMARK').map((e) => e.object);
      learn(recorded, streamEvents(answer.text).filter((e) => e.type !== 'BOOKMARK').map((e) => e.object), map);
      watches.splice(watches.indexOf(w), 1);
    }
  };
  for (const exchange of [...exchanges].sort((a, b) => a.seq - b.seq)) {
    await closeWatchesEndedBefore(exchange.seq);
    const { path, body } = rewrite(exchange, map);
    const headers = Object.fromEntries(Object.entries(exchange.requestHeaders).filter(([k]) => k !== 'content-length'));
    if (exchange.watch) {
      // Wait for the stream to open, as the recorded client did before its next request.
      let stop = () => {};
      let opened = () => {};
      const open = new Promise<void>((resolve) => { opened = resolve; });
      const done = client.send({
        method: exchange.method, path, headers, ...(body === undefined ? {} : { body }), stopper: (s) => { stop = s; opened(); },
      });
      await Promise.race([open, done]);
      watches.push({ exchange, stop: () => stop(), done });
      continue;
    }
    const answer = await client.send({ method: exchange.method, path, headers, ...(body === undefined ? {} : { body }) });
    learn(parse(exchange.responseBody), answer.json, map);
    out.push({ exchange, answer });
  }
  await closeWatchesEndedBefore(Number.POSITIVE_INFINITY);
  return out.sort((a, b) => a.exchange.seq - b.exchange.seq);
}

// A recording proxy in front of a Kubernetes API server: kubectl and the operator talk to it over
// plain HTTP on 127.0.0.1; it forwards each request to the server unchanged (over TLS with the
// admin's client certificate, unless the request carries its own bearer token, which it passes
// on) and keeps the exchange: request line, the headers that decide the answer, both bodies, and,
// for a watch, the stream as it came. Requests are numbered in the order they arrive; each
// exchange also notes the number reached when its answer ended, so a replay can close a watch
// where the recorded one closed.
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import type { RealKube } from '../../src/sandbox/kube-real/control-plane.ts';

export interface Exchange {
  /** Position when the request arrived. */
  seq: number;
  /** Position when its answer ended. */
  endSeq: number;
  /** kubectl (with its command) or the operator, from User-Agent and Kubectl-Command. */
  client: string;
  method: string;
  /** Path and query. */
  path: string;
  requestHeaders: Record<string, string>;
  requestBody?: string;
  status: number;
  responseHeaders: Record<string, string>;
  responseBody: string;
  watch: boolean;
}

/** Request headers that change what a server answers. */
const REQUEST_HEADERS = ['accept', 'content-type', 'user-agent', 'kubectl-command'];
const RESPONSE_HEADERS = ['content-type', 'warning', 'audit-id'];

export interface RecordingProxy {
  url: string;
  exchanges(): Exchange[];
  close(): Promise<void>;
}

export function clientOf(headers: Record<string, string>): string {
  const agent = headers['user-agent'] ?? '';
  if (agent.startsWith('kubectl')) {
    return `kubectl${headers['kubectl-command'] ? ` ${headers['kubectl-command'].replace(/^kubectl /, '')}` : ''}`;
  }
  // client-node's own requests name it; its watches go through undici's fetch, which names itself.
  return agent.includes('kubernetes-client') || agent === 'undici' || agent === 'node' ? 'operator' : agent || 'unknown';
}

export async function startRecordingProxy(upstream: string, real?: RealKube): Promise<RecordingProxy> {
  const ca = real ? readFileSync(real.pki.caCert) : undefined;
  const admin = real ? { cert: readFileSync(real.pki.adminCert), key: readFileSync(real.pki.adminKey) } : {};
  const recorded: Exchange[] = [];
  let position = 0;
  const open = new Set<ServerResponse>();
  /** Watches still streaming: closing the proxy records them as they stand. */
  const finishers = new Set<() => void>();

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const seq = ++position;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const kept = Object.fromEntries(REQUEST_HEADERS.filter((h) => req.headers[h] !== undefined).map((h) => [h, String(req.headers[h])]));
      const headers: Record<string, string> = { ...kept };
      if (req.headers.authorization) headers.authorization = req.headers.authorization;
      if (body.length) headers['content-length'] = String(body.length);
      const url = new URL(req.url ?? '/', upstream);
      const tls = url.protocol === 'https:' ? { ca, ...(req.headers.authorization ? {} : admin) } : {};
      const forward = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { method: req.method, headers, ...tls }, (answer) => {
        const responseHeaders = Object.fromEntries(RESPONSE_HEADERS.filter((h) => answer.headers[h] !== undefined)
          .map((h) => [h, String(answer.headers[h])]));
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        // A watch's headers at once, as the server sent them: Node holds them until the first
        // write, and an idle watch has none, so a client waiting for the watch to open would hang.
        res.flushHeaders();
        open.add(res);
        const parts: Buffer[] = [];
        answer.on('data', (c: Buffer) => {
          parts.push(c);
          res.write(c);
        });
        let ended = false;
        const done = () => {
          if (ended) return;
          ended = true;
          open.delete(res);
          finishers.delete(done);
          res.end();
          recorded.push({
            seq, endSeq: ++position, client: clientOf(kept), method: req.method ?? 'GET', path: req.url ?? '/',
            requestHeaders: kept, ...(body.length ? { requestBody: body.toString('utf8') } : {}),
            status: answer.statusCode ?? 0, responseHeaders, responseBody: Buffer.concat(parts).toString('utf8'),
            watch: /[?&]watch=(true|1)/.test(req.url ?? ''),
          });
        };
        answer.on('end', done);
        answer.on('error', done);
        answer.on('close', done);
        finishers.add(done);
        // The client went away (a watch it stopped): the exchange ends here, and so does upstream.
        res.on('close', () => {
          done();
          answer.destroy();
        });
      });
      forward.on('error', (err) => {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`recording proxy: ${err.message}`);
      });
      forward.end(body.length ? body : undefined);
    });
  };

  const server: Server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    exchanges: () => [...recorded].sort((a, b) => a.seq - b.seq),
    async close() {
      for (const finish of [...finishers]) finish();
      for (const res of open) res.destroy();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

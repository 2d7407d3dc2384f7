// Raw HTTP to either Kubernetes API server, as the admin: the emulator over plain HTTP (it takes
// no credentials), the real one over TLS with the admin's client certificate. Tests that compare
// the two servers send the same bytes to both and read the answers unparsed.
import { request as httpsRequest } from 'node:https';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { readFileSync } from 'node:fs';
import type { RealKube } from '../../src/sandbox/kube-real/control-plane.ts';

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** The body parsed as JSON, when it is JSON. */
  json?: unknown;
}

export interface RawRequest {
  method: string;
  /** Path with query string. */
  path: string;
  headers?: Record<string, string>;
  body?: string;
  /** For watches: stop reading after this long and return what came. */
  readForMs?: number;
  /** For watches: receives a function that stops reading and returns what came. */
  stopper?: (stop: () => void) => void;
}

export interface RawClient {
  server: string;
  send(req: RawRequest): Promise<Answer>;
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export function rawClient(server: string, real?: RealKube, bearerToken?: string): RawClient {
  const tls = real ? {
    ca: readFileSync(real.pki.caCert),
    ...(bearerToken ? {} : { cert: readFileSync(real.pki.adminCert), key: readFileSync(real.pki.adminKey) }),
  } : {};
  return {
    server,
    send(req) {
      return new Promise((resolve, reject) => {
        const url = new URL(req.path, server);
        const headers: Record<string, string> = {
          ...(req.headers ?? {}), ...(bearerToken ? { authorization: `Bearer ${bearerToken}` } : {}),
        };
        // A body goes with its length, as kubectl sends it (no chunked DELETE).
        if (req.body !== undefined) headers['content-length'] = String(Buffer.byteLength(req.body));
        const options = { method: req.method, headers, ...tls };
        const call = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, options, (res) => {
          const chunks: Buffer[] = [];
          let timer: NodeJS.Timeout | undefined;
          const finish = () => {
            if (timer) clearTimeout(timer);
            const text = Buffer.concat(chunks).toString('utf8');
            resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: parse(text) });
          };
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', finish);
          res.on('error', finish);
          const stop = () => {
            res.removeAllListeners('end');
            res.removeAllListeners('error');
            res.destroy();
            finish();
          };
          if (req.readForMs !== undefined) timer = setTimeout(stop, req.readForMs);
          req.stopper?.(stop);
        });
        call.on('error', reject);
        call.end(req.body);
      });
    },
  };
}

// A stand-in for the droplet metadata service and the DigitalOcean reserved-IP API, for the
// two-node failover test. It runs inside the test's bridge namespace, so the nodes reach it
// without any packet leaving the namespaces. It answers metadata by the caller's source
// address, as the real service answers per droplet, and prints every request as a JSON line.
// Usage: node standin-do.ts '{"port":80,"token":"...","floatingIP":"...","droplets":{"10.77.0.11":5001}}'
import { createServer } from 'node:http';

interface Config {
  port: number;
  token: string;
  floatingIP: string;
  /** Droplet id per VPC source address. */
  droplets: Record<string, number>;
  /** How long an assign action stays in-progress. */
  actionMillis?: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as Config;
let holder: number | null = null;
let nextAction = 9000;
const actions = new Map<number, { id: number; status: string; dropletID: number; started: number }>();

function actionView(action: { id: number; status: string; dropletID: number; started: number }) {
  if (action.status === 'in-progress' && Date.now() - action.started >= (config.actionMillis ?? 300)) {
    action.status = 'completed';
    holder = action.dropletID;
  }
  return {
    action: {
      id: action.id, status: action.status, type: 'assign_ip', started_at: new Date(action.started).toISOString(),
      completed_at: action.status === 'completed' ? new Date().toISOString() : null,
      resource_id: 1, resource_type: 'reserved_ip', region: { name: 'Test', slug: 'tst1' }, region_slug: 'tst1',
    },
  };
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    const source = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    const url = new URL(req.url ?? '/', 'http://standin');
    const auth = req.headers.authorization;
    const send = (status: number, payload: unknown, text = false) => {
      const authorized = auth === undefined ? 'none' : auth === `Bearer ${config.token}` ? 'ok' : 'wrong';
      const entry = { t: Date.now(), method: req.method, path: url.pathname, source, auth: authorized, body, status };
      process.stdout.write(`${JSON.stringify(entry)}\n`);
      res.writeHead(status, { 'content-type': text ? 'text/plain' : 'application/json' });
      res.end(text ? String(payload) : JSON.stringify(payload));
    };
    const self = config.droplets[source];
    if (url.pathname.startsWith('/metadata/v1/')) {
      if (self === undefined) return send(404, 'unknown droplet', true);
      const held = holder === self;
      switch (url.pathname) {
        case '/metadata/v1/id': return send(200, self, true);
        case '/metadata/v1/reserved_ip/ipv4/active': return send(200, held ? 'true' : 'false', true);
        case '/metadata/v1/reserved_ip/ipv4/ip_address': return held ? send(200, config.floatingIP, true) : send(404, 'not found', true);
        default: return send(404, 'not found', true);
      }
    }
    if (auth !== `Bearer ${config.token}`) return send(401, { id: 'unauthorized', message: 'Unable to authenticate you.' });
    const assign = /^\/v2\/reserved_ips\/([0-9.]+)\/actions$/.exec(url.pathname);
    if (assign && req.method === 'POST') {
      if (assign[1] !== config.floatingIP) {
        return send(404, { id: 'not_found', message: 'The resource you were accessing could not be found.' });
      }
      let parsed: { type?: string; droplet_id?: number };
      try {
        parsed = JSON.parse(body) as typeof parsed;
      } catch {
        return send(400, { id: 'bad_request', message: 'invalid JSON' });
      }
      if (parsed.type !== 'assign' || typeof parsed.droplet_id !== 'number') {
        return send(422, { id: 'unprocessable_entity', message: 'bad action' });
      }
      const action = { id: nextAction++, status: 'in-progress', dropletID: parsed.droplet_id, started: Date.now() };
      actions.set(action.id, action);
      return send(201, actionView(action));
    }
    const poll = /^\/v2\/(?:reserved_ips\/[0-9.]+\/)?actions\/([0-9]+)$/.exec(url.pathname);
    if (poll && req.method === 'GET') {
      const action = actions.get(Number(poll[1]));
      return action ? send(200, actionView(action)) : send(404, { id: 'not_found', message: 'no such action' });
    }
    return send(404, { id: 'not_found', message: 'The resource you were accessing could not be found.' });
  });
});

server.listen(config.port, '0.0.0.0', () => {
  process.stdout.write(`${JSON.stringify({ listening: config.port })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));

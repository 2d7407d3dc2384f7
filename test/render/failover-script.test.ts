// The failover and notify scripts, run by /bin/sh against a local stand-in for the metadata
// service and the DigitalOcean API that answers each scenario's script of status codes.
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultSettings, placeholderFacts, renderNodes } from '../../src/render/render.ts';
import { baseSecrets, makeLB, TOKEN } from './helpers.ts';

const FIP = '198.51.100.10';
const DROPLET = 3164444;
const dirs: string[] = [];
const servers: Server[] = [];

afterAll(() => {
  for (const server of servers) server.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

interface Scenario {
  /** Status codes for successive assign POSTs; after the list, 201. */
  assign?: number[];
  /** Action statuses for successive polls; after the list, completed. */
  polls?: string[];
  holds?: boolean;
  /** Called while the first POST is held open, so the caller can look at running processes. */
  duringFirstPost?: () => void;
}

interface Seen { method: string; path: string; auth: boolean; body: string }

async function standIn(scenario: Scenario): Promise<{ port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  let posts = 0;
  let polls = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => {
      const path = req.url ?? '';
      seen.push({ method: req.method ?? '', path, auth: req.headers.authorization === `Bearer ${TOKEN}`, body });
      const text = (status: number, value: string) => { res.writeHead(status, { 'content-type': 'text/plain' }); res.end(value); };
      const json = (status: number, value: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(value, null, 2));
      };
      if (path === '/healthz') return text(200, 'ok');
      if (path === '/metadata/v1/id') return text(200, String(DROPLET));
      if (path === '/metadata/v1/reserved_ip/ipv4/active') return text(200, scenario.holds ? 'true' : 'false');
      if (path === '/metadata/v1/reserved_ip/ipv4/ip_address') return scenario.holds ? text(200, FIP) : text(404, 'not found');
      if (req.method === 'POST' && path === `/v2/reserved_ips/${FIP}/actions`) {
        const status = scenario.assign?.[posts] ?? 201;
        const first = posts === 0;
        posts++;
        const answer = () => (status === 201
          // Pretty-printed, with the region before the id, as the real API may order keys.
          ? json(201, {
            action: {
              region: { name: 'New York 3', slug: 'nyc3' }, id: 777, status: 'in-progress', type: 'assign_ip', resource_id: 1,
              resource_type: 'reserved_ip',
            },
          })
          : json(status, { id: status === 429 ? 'too_many_requests' : 'unprocessable_entity', message: 'no' }));
        if (first && scenario.duringFirstPost) {
          setTimeout(() => { scenario.duringFirstPost!(); answer(); }, 300);
          return;
        }
        return answer();
      }
      if (req.method === 'GET' && path === `/v2/reserved_ips/${FIP}/actions/777`) {
        const status = scenario.polls?.[polls++] ?? 'completed';
        return json(200, { action: { id: 777, status, type: 'assign_ip', region_slug: 'nyc3' } });
      }
      return json(404, { id: 'not_found', message: 'no' });
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, seen };
}

/** Renders the scripts with every path inside a fresh directory, and writes them there. */
function renderScripts(apiPort: number, metadataPort: number, deadline = 30, healthPort = 8405) {
  const dir = mkdtempSync(join(tmpdir(), 'hrt-script-'));
  dirs.push(dir);
  const lb = makeLB('web');
  const settings = defaultSettings({
    apiBaseURL: `http://127.0.0.1:${apiPort}`,
    metadataBaseURL: `http://127.0.0.1:${metadataPort}`,
    failoverDeadlineSeconds: deadline,
    healthPort,
    paths: {
      ...defaultSettings().paths,
      checkScript: join(dir, 'check.sh'),
      notifyScript: join(dir, 'notify.sh'),
      failoverScript: join(dir, 'failover.sh'),
      failoverToken: join(dir, 'token'),
      failoverLog: join(dir, 'failover.log'),
      vrrpStateFile: join(dir, 'run/vrrp-state'),
    },
  });
  const [node] = renderNodes({ lb, secrets: baseSecrets(), observed: { ...placeholderFacts(lb), floatingIP: FIP }, settings });
  for (const file of node!.files.filter((f) => f.path.startsWith(dir))) {
    writeFileSync(file.path, file.content);
    chmodSync(file.path, file.mode);
  }
  return { dir, log: () => (existsSync(join(dir, 'failover.log')) ? readFileSync(join(dir, 'failover.log'), 'utf8') : '') };
}

function run(script: string, args: string[] = []): Promise<{ code: number; ms: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn('sh', [script, ...args], { stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code: code ?? -1, ms: Date.now() - started }));
  });
}

/** Every process's command line and environment that mentions the token. */
function processesShowingToken(): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    for (const part of ['cmdline', 'environ']) {
      try {
        if (readFileSync(`/proc/${pid}/${part}`).includes(TOKEN)) found.push(`${pid}/${part}`);
      } catch {
        // gone, or not ours to read
      }
    }
  }
  return found;
}

// Independent scenarios, each with its own stand-in and directory: run them side by side.
describe.concurrent('the failover script', () => {
  it('retries 422, 429 and 5xx with backoff, polls the action, and keeps the token off command lines', async () => {
    let leaks: string[] | undefined;
    let curlRunning = false;
    const api = await standIn({
      assign: [422, 429, 503],
      polls: ['in-progress'],
      duringFirstPost: () => {
        leaks = processesShowingToken();
        curlRunning = readdirSync('/proc').some((p) => {
          try { return readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'curl'; } catch { return false; }
        });
      },
    });
    const { dir, log } = renderScripts(api.port, api.port);
    const result = await run(join(dir, 'failover.sh'));
    expect(result.code, log()).toBe(0);
    expect(curlRunning).toBe(true);
    expect(leaks).toEqual([]);
    const posts = api.seen.filter((r) => r.method === 'POST');
    expect(posts).toHaveLength(4);
    for (const post of posts) expect(JSON.parse(post.body)).toEqual({ type: 'assign', droplet_id: DROPLET });
    expect(api.seen.filter((r) => r.path.startsWith('/v2/')).every((r) => r.auth)).toBe(true);
    expect(api.seen.filter((r) => r.method === 'GET' && r.path.endsWith('/actions/777'))).toHaveLength(2);
    const text = log();
    for (const step of [
      'started: moving 198.51.100.10 here', `droplet id is ${DROPLET}`, 'API answered 422', 'API answered 429', 'API answered 503',
      'retrying in 1s', 'retrying in 2s', 'retrying in 4s', 'assign action 777 accepted (201)', 'action 777 completed',
    ]) {
      expect(text).toContain(step);
    }
    for (const line of text.trim().split('\n')) expect(line).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ halb-failover\[\d+\]: /);
    expect(text).not.toContain(TOKEN);
    expect(existsSync(join(dir, 'run/failover.lock'))).toBe(false);
  });

  it('does nothing when this droplet already holds the reserved IP', async () => {
    const api = await standIn({ holds: true });
    const { dir, log } = renderScripts(api.port, api.port);
    expect((await run(join(dir, 'failover.sh'))).code).toBe(0);
    expect(api.seen.filter((r) => r.method === 'POST')).toHaveLength(0);
    expect(log()).toContain('already holds 198.51.100.10');
  });

  it('stops without retrying when the API refuses the token', async () => {
    const api = await standIn({ assign: [401] });
    const { dir, log } = renderScripts(api.port, api.port);
    expect((await run(join(dir, 'failover.sh'))).code).toBe(1);
    expect(api.seen.filter((r) => r.method === 'POST')).toHaveLength(1);
    expect(log()).toContain('API refused the assignment with 401');
  });

  it('gives up after its deadline when the API is unreachable', async () => {
    const metadata = await standIn({});
    const closed = await standIn({});
    servers.pop()!.close();
    const { dir, log } = renderScripts(closed.port, metadata.port, 3);
    const result = await run(join(dir, 'failover.sh'));
    expect(result.code).toBe(1);
    expect(result.ms).toBeLessThan(10_000);
    expect(log()).toMatch(/gave up after [3-9]s: API unreachable/);
  });

  it('stops when keepalived has left MASTER meanwhile', async () => {
    const api = await standIn({});
    const { dir, log } = renderScripts(api.port, api.port);
    await run(join(dir, 'notify.sh'), ['BACKUP']);
    expect((await run(join(dir, 'failover.sh'))).code).toBe(0);
    expect(api.seen.filter((r) => r.method === 'POST')).toHaveLength(0);
    expect(log()).toContain('no longer MASTER (BACKUP); stopped');
  });
});

describe('the notify script', () => {
  it('writes the state as one word, refuses unknown states, and runs the failover script on MASTER', async () => {
    const api = await standIn({});
    const { dir } = renderScripts(api.port, api.port);
    const state = () => readFileSync(join(dir, 'run/vrrp-state'), 'utf8');
    for (const word of ['BACKUP', 'FAULT', 'STOP']) {
      expect((await run(join(dir, 'notify.sh'), [word])).code).toBe(0);
      expect(state()).toBe(`${word}\n`);
    }
    expect((await run(join(dir, 'notify.sh'), ['MASTER; reboot'])).code).toBe(2);
    expect(state()).toBe('STOP\n');
    writeFileSync(join(dir, 'failover.sh'), `#!/bin/sh\necho ran > '${join(dir, 'ran')}'\n`);
    expect((await run(join(dir, 'notify.sh'), ['MASTER'])).code).toBe(0);
    expect(state()).toBe('MASTER\n');
    expect(readFileSync(join(dir, 'ran'), 'utf8')).toBe('ran\n');
  });
});

describe('the check script', () => {
  it('succeeds while HAProxy answers its health endpoint and fails at once when nothing listens', async () => {
    const healthy = await standIn({});
    const { dir } = renderScripts(healthy.port, healthy.port, 30, healthy.port);
    expect((await run(join(dir, 'check.sh'))).code).toBe(0);
    expect(healthy.seen.filter((r) => r.path === '/healthz')).toHaveLength(1);
    const dead = await standIn({});
    servers.pop()!.close();
    const { dir: deadDir } = renderScripts(healthy.port, healthy.port, 30, dead.port);
    const result = await run(join(deadDir, 'check.sh'));
    expect(result.code).not.toBe(0);
    expect(result.ms).toBeLessThan(1000);
  });
});

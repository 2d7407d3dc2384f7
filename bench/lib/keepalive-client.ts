// Long-lived connections through the load balancer: each of N keep-alive HTTP(S) connections
// sends a request every interval for the whole run, and counts how often the load balancer cut
// it (the next request needed a new connection) and how many requests failed. A reload cuts
// idle keep-alive connections (the old worker closes them); a runtime change must not.
// Run inside the client namespace:
//   node bench/lib/keepalive-client.ts <url> <connections> <seconds> [interval ms, default 200]
// Prints one JSON line: { connections, requests, failed, cut }, after <seconds> or on SIGTERM.
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';

interface Tally { requests: number; failed: number; cut: number }

function request(url: URL, agent: http.Agent): Promise<Socket> {
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.get(url, { agent, timeout: 5000, rejectUnauthorized: false }, (res) => {
      res.resume();
      res.once('end', () => (res.statusCode === 200 ? resolve(req.socket!) : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.once('timeout', () => req.destroy(new Error('timed out')));
    req.once('error', reject);
  });
}

/** One connection's life: the same socket every time, unless the other end closed it. */
async function connection(url: URL, until: () => number, intervalMs: number, tally: Tally): Promise<void> {
  const options = { keepAlive: true, maxSockets: 1, maxFreeSockets: 1, keepAliveMsecs: 1000 };
  const agent = url.protocol === 'https:' ? new https.Agent({ ...options, rejectUnauthorized: false }) : new http.Agent(options);
  let current: Socket | undefined;
  while (Date.now() < until()) {
    tally.requests++;
    try {
      const socket = await request(url, agent);
      if (current && socket !== current) tally.cut++;
      current = socket;
    } catch {
      tally.failed++;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  agent.destroy();
}

const [target, connections = '10', seconds = '10', interval = '200'] = process.argv.slice(2);
if (!target) {
  console.error('usage: node bench/lib/keepalive-client.ts <url> <connections> <seconds> [interval ms]');
  process.exit(2);
}
const tally: Tally = { requests: 0, failed: 0, cut: 0 };
let until = Date.now() + Number(seconds) * 1000;
// SIGTERM ends the run early: each connection finishes its request in flight, then the tally prints.
process.once('SIGTERM', () => { until = 0; });
const url = new URL(target);
await Promise.all(Array.from({ length: Number(connections) }, (_, i) =>
  // Spread over the first interval, so the requests do not all arrive together.
  new Promise((r) => setTimeout(r, (i * Number(interval)) / Number(connections))).then(() =>
    connection(url, () => until, Number(interval), tally))));
console.log(JSON.stringify({ connections: Number(connections), ...tally }));

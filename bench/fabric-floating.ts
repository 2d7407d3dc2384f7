// How fast a floating-IP re-point takes effect in the sandbox fabric: the time setFloatingIP
// takes (the nft transaction), and the time until the first new connection from the client
// namespace reaches the new holder. The target is 100 ms from the action completing.
// Run as root: npx node bench/fabric-floating.ts [rounds]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createFabric, destroyFabric } from '../src/sandbox/fabric/index.ts';

const rounds = Number(process.argv[2] ?? 20);
const prefix = `hftbench${process.pid % 100}`.slice(0, 10);
const stateDir = mkdtempSync(join(tmpdir(), 'hft-bench-'));
const logger = pino({ level: 'warn' });
const FIP = '198.51.100.50';
const droplets = [
  { name: 'a', id: 1, publicIPv4: '203.0.113.20', anchorIPv4: '10.17.0.20', privateIPv4: '10.10.2.20' },
  { name: 'b', id: 2, publicIPv4: '203.0.113.21', anchorIPv4: '10.17.0.21', privateIPv4: '10.10.2.21' },
];
const site = 'server { listen 80 default_server; location / { return 200 "$hostname\\n"; } }';

/**
 * A curl loop running inside the client namespace, printing "<answer> <epoch ns>" per request,
 * so the moment traffic moves is seen with the resolution of one request, not of a process spawn.
 */
function startProbe(ns: string, url: string) {
  const seen: Array<{ answer: string; atMs: number }> = [];
  const loop = `while :; do a=$(curl -s -m 1 ${url}); echo "$a $(date +%s%N)"; sleep 0.01; done`;
  const child = spawn('ip', ['netns', 'exec', ns, 'sh', '-c', loop], { stdio: ['ignore', 'pipe', 'ignore'] });
  let buf = '';
  child.stdout.on('data', (chunk: Buffer) => {
    buf += chunk.toString();
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const [answer = '', ns = '0'] = buf.slice(0, nl).trim().split(' ');
      buf = buf.slice(nl + 1);
      seen.push({ answer, atMs: Number(BigInt(ns) / 1000n) / 1000 });
    }
  });
  return { seen, stop: () => child.kill('SIGKILL') };
}

const nowMs = () => performance.timeOrigin + performance.now();

function stats(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return `median ${q(0.5).toFixed(1)} ms, p95 ${q(0.95).toFixed(1)} ms, max ${s.at(-1)!.toFixed(1)} ms`;
}

const fabric = await createFabric({ stateDir, prefix, hostLink: false, logger });
try {
  for (const d of droplets) {
    await fabric.addDroplet({ ...d, sshPublicKeys: [] });
    await fabric.waitForDroplet(d.name);
    await fabric.execInDroplet(d.name, ['sh', '-c', `echo '${site}' > /etc/nginx/sites-enabled/default && nginx`]);
  }
  await fabric.setFloatingIP(FIP, droplets[0]!.anchorIPv4);
  const probe = startProbe(fabric.clientNamespace, `http://${FIP}/`);
  const applied: number[] = [];
  const committed: number[] = [];
  const reached: number[] = [];
  try {
    for (let i = 1; i <= rounds; i++) {
      const to = droplets[i % 2]!;
      await new Promise((r) => setTimeout(r, 100));
      const t0 = nowMs();
      const { dnatChangedAt } = await fabric.setFloatingIP(FIP, to.anchorIPv4);
      applied.push(nowMs() - t0);
      committed.push(dnatChangedAt - t0);
      for (;;) {
        const hit = probe.seen.find((s) => s.atMs > t0 && s.answer === to.name);
        if (hit) {
          reached.push(hit.atMs - t0);
          break;
        }
        if (nowMs() - t0 > 5_000) throw new Error(`round ${i}: ${to.name} never answered`);
        await new Promise((r) => setTimeout(r, 5));
      }
      probe.seen.length = 0;
    }
  } finally {
    probe.stop();
  }
  console.log(`floating-IP re-point over ${rounds} rounds`);
  console.log(`  call start -> DNAT map committed in the kernel:      ${stats(committed)}`);
  console.log(`  setFloatingIP total (DNAT, then state and metadata):  ${stats(applied)}`);
  console.log(`  call start -> first answer from the new holder:     ${stats(reached)} (a curl loop in the client namespace)`);
} finally {
  await destroyFabric({ stateDir, prefix, logger });
  rmSync(stateDir, { recursive: true, force: true });
}

// How long the fabric takes to come up, to make droplets (until sshd answers), and to go away.
// Run as root: npx node bench/fabric-lifecycle.ts [droplets]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { allocateDropletAddresses, createFabric, destroyFabric } from '../src/sandbox/fabric/index.ts';

const count = Number(process.argv[2] ?? 4);
const prefix = `hftlife${process.pid % 100}`.slice(0, 10);
const stateDir = mkdtempSync(join(tmpdir(), 'hft-life-'));
const logger = pino({ level: 'warn' });
const ms = (t0: number) => `${(performance.now() - t0).toFixed(0)} ms`;

try {
  let t0 = performance.now();
  const fabric = await createFabric({ stateDir, prefix, hostLink: false, logger });
  console.log(`core + client up:                 ${ms(t0)}`);
  t0 = performance.now();
  await fabric.addBackend({ name: 'web-1', privateIPv4: '10.10.0.21' });
  console.log(`one backend (nginx):              ${ms(t0)}`);
  const each: number[] = [];
  t0 = performance.now();
  for (let i = 1; i <= count; i++) {
    const t = performance.now();
    await fabric.addDroplet({ name: `d${i}`, id: i, ...allocateDropletAddresses(fabric.usedIPv4s()), sshPublicKeys: [] });
    await fabric.waitForDroplet(`d${i}`);
    each.push(performance.now() - t);
  }
  console.log(`${count} droplets until sshd answers: ${ms(t0)} (each: ${each.map((x) => x.toFixed(0)).join(', ')} ms)`);
  t0 = performance.now();
  await fabric.removeDroplet('d1');
  console.log(`remove one droplet:               ${ms(t0)}`);
  t0 = performance.now();
  await fabric.destroy();
  console.log(`destroy everything:               ${ms(t0)}`);
} finally {
  await destroyFabric({ stateDir, prefix, logger });
  rmSync(stateDir, { recursive: true, force: true });
}

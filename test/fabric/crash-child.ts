// Builds a fabric with droplets and a backend, printing each step, until it is killed: the
// crash-half-way test kills it at various moments and checks that destroyFabric removes whatever it had made.
// Usage: node test/fabric/crash-child.ts <stateDir> <prefix> <publicKey> <hostLink 1|0>
import { pino } from 'pino';
import { createFabric } from '../../src/sandbox/fabric/index.ts';

const [stateDir, prefix, publicKey, hostLink] = process.argv.slice(2);
if (!stateDir || !prefix || !publicKey) throw new Error('usage: crash-child.ts <stateDir> <prefix> <publicKey>');
const fabric = await createFabric({ stateDir, prefix, hostLink: hostLink !== '0', logger: pino({ level: 'silent' }) });
process.stdout.write('core\n');
await fabric.addBackend({ name: 'web-1', privateIPv4: '10.10.0.21' });
process.stdout.write('web-1\n');
for (let i = 1; i <= 3; i++) {
  await fabric.addDroplet({
    name: `lb-${i}`, id: i, publicIPv4: `203.0.113.${20 + i}`, anchorIPv4: `10.17.0.${20 + i}`, privateIPv4: `10.10.1.${20 + i}`,
    sshPublicKeys: [publicKey],
  });
  process.stdout.write(`lb-${i}\n`);
  await fabric.setFloatingIP('198.51.100.9', `10.17.0.${20 + i}`);
}
process.stdout.write('complete\n');

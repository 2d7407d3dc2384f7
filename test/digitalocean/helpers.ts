// Shared set-up for the DigitalOcean tests: a simulator on a free port with short delays, and
// a provider pointed at it with short waits, so the suites run in seconds.
import { DigitalOceanProvider } from '../../src/digitalocean/provider.ts';
import type { ProviderOptions } from '../../src/digitalocean/provider.ts';
import { startDigitalOceanSimulator } from '../../src/sandbox/digitalocean/simulator.ts';
import type { DigitalOceanSimulator, SimulatorOptions } from '../../src/sandbox/digitalocean/simulator.ts';

export const FAST_DELAYS = { dropletActiveMs: 40, reservedIpActionMs: 60, dropletActionMs: 40 };

export function startSimulator(options: SimulatorOptions = {}): Promise<DigitalOceanSimulator> {
  return startDigitalOceanSimulator({ delays: FAST_DELAYS, ...options });
}

export function providerFor(sim: DigitalOceanSimulator, options: Partial<ProviderOptions> = {}): DigitalOceanProvider {
  return new DigitalOceanProvider({
    token: 'dop_v1_test',
    endpoint: sim.endpoint,
    requestTimeoutMs: 5000,
    backoff: { baseMs: 10, maxMs: 200 },
    rateLimitReserve: 0,
    wait: { intervalMs: 20, maxIntervalMs: 100, timeoutMs: 10_000 },
    ...options,
  });
}

export function sshPublicKey(seed: number): string {
  const blob = Buffer.concat([Buffer.from('\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20', 'latin1'), Buffer.alloc(32, seed)]);
  return `ssh-ed25519 ${blob.toString('base64')} test-${seed}`;
}

// Setting the fabric up with the sandbox's fixed parts (the contract's backends), for
// `halb sandbox up` and `halb sandbox fabric`.
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { createFabric, destroyFabric, openFabric, type Fabric, type FabricStatus } from './fabric.ts';

/** The contract's backends: nginx on the VPC, each answering with its own name. */
export const DEFAULT_BACKENDS: ReadonlyArray<{ name: string; privateIPv4: string }> = [
  { name: 'web-1', privateIPv4: '10.10.0.21' },
  { name: 'web-2', privateIPv4: '10.10.0.22' },
];

/** `.halb-sandbox/` unless HALB_SANDBOX_DIR is set. */
export function sandboxStateDir(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.HALB_SANDBOX_DIR || '.halb-sandbox');
}

export interface FabricUpOptions {
  stateDir?: string;
  /** Namespace prefix; by default derived from the state folder (`halb` for the default one). */
  prefix?: string;
  /** How many of DEFAULT_BACKENDS to start (default 2). */
  backends?: number;
  hostLink?: boolean;
  bootDelayMs?: number;
  logger?: Logger;
}

/** Builds the fabric (or finds it up) with its backends. Safe to run twice. */
export async function fabricUp(opts: FabricUpOptions = {}): Promise<Fabric> {
  const stateDir = opts.stateDir ?? sandboxStateDir();
  const fabric = await createFabric({
    stateDir, prefix: opts.prefix, hostLink: opts.hostLink, bootDelayMs: opts.bootDelayMs, logger: opts.logger,
  });
  const count = opts.backends ?? DEFAULT_BACKENDS.length;
  if (!Number.isInteger(count) || count < 0 || count > DEFAULT_BACKENDS.length) {
    throw new Error(`backends: ${count} must be 0..${DEFAULT_BACKENDS.length}`);
  }
  const present = new Set(fabric.status().hosts.map((h) => h.name));
  for (const b of DEFAULT_BACKENDS.slice(0, count)) if (!present.has(b.name)) await fabric.addBackend(b);
  return fabric;
}

/** Removes every namespace, process and file of the fabric in stateDir. Safe to run twice. */
export async function fabricDown(opts: { stateDir?: string; prefix?: string; logger?: Logger } = {}): Promise<void> {
  await destroyFabric({ stateDir: opts.stateDir ?? sandboxStateDir(), prefix: opts.prefix, logger: opts.logger });
}

/** The fabric's status for `status --json` (hosts with namespace, addresses and role), or null. */
export function fabricStatus(opts: { stateDir?: string; logger?: Logger } = {}): FabricStatus | null {
  return openFabric({ stateDir: opts.stateDir ?? sandboxStateDir(), logger: opts.logger })?.status() ?? null;
}


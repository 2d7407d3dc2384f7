// The fabric's record of everything it made, in <stateDir>/fabric/state.json. It is written
// before each namespace or link is created, so that a destroy after a crash half-way finds it.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DropletMetadata } from './metadata.ts';

export interface DropletRecord {
  name: string;
  id: number;
  namespace: string;
  role: 'loadbalancer' | 'backend';
  slot: number;
  publicIPv4: string;
  anchorIPv4: string;
  privateIPv4: string;
  sshPublicKeys: string[];
  metadata: DropletMetadata;
  bootDelayMs: number;
  /** Runs nginx answering its name on port 80 (a `web`-tagged backend droplet). */
  webServer?: boolean;
  /** The `unshare` process holding the droplet's PID namespace, and the droplet's PID 1. */
  unsharePid?: number;
  initPid?: number;
  hostKeyPublic?: string;
  /** The DigitalOcean image slug it was made with (this machine's binaries when unset). */
  image?: string;
  /** For a root-filesystem image: the cached tree its overlay is built on. */
  rootfs?: string;
}

export interface BackendRecord {
  name: string;
  namespace: string;
  slot: number;
  privateIPv4: string;
}

export interface HostLinkRecord {
  ifname: string;
  subnet: string;
  hostIPv4: string;
  coreIPv4: string;
}

export interface FabricState {
  version: 1;
  prefix: string;
  /** Every namespace this fabric has started to create and not yet removed. */
  namespaces: string[];
  hostLink: HostLinkRecord | null;
  /** Set once the core namespace is fully wired. */
  coreReady: boolean;
  droplets: Record<string, DropletRecord>;
  backends: Record<string, BackendRecord>;
  /** floating IP -> anchor IPv4 */
  floatingIPs: Record<string, string>;
}

export function fabricDir(stateDir: string): string {
  return join(stateDir, 'fabric');
}

export function stateFile(stateDir: string): string {
  return join(fabricDir(stateDir), 'state.json');
}

export function emptyState(prefix: string): FabricState {
  return { version: 1, prefix, namespaces: [], hostLink: null, coreReady: false, droplets: {}, backends: {}, floatingIPs: {} };
}

export function readState(stateDir: string): FabricState | undefined {
  const file = stateFile(stateDir);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
  const s = parsed as Partial<FabricState>;
  if (s === null || typeof s !== 'object' || s.version !== 1 || typeof s.prefix !== 'string' || !Array.isArray(s.namespaces)) {
    throw new Error(`${file}: not a fabric state file (version 1 with prefix and namespaces expected)`);
  }
  return { ...emptyState(s.prefix), ...s } as FabricState;
}

/** Atomic replace, so a crash never leaves half a state file. */
export function writeState(stateDir: string, state: FabricState): void {
  mkdirSync(fabricDir(stateDir), { recursive: true, mode: 0o700 });
  const file = stateFile(stateDir);
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, file);
}

// What each daemon version accepts. The operator reads the versions on the host over SSH and
// the renderer emits only what that version parses.
import { refuse } from './guard.ts';

export interface Version {
  major: number;
  minor: number;
  patch: number;
}

/** Parses "2.2.7", "v2.2.7", "Keepalived v2.2.7 (01/16,2022)" or "HAProxy version 2.6.12-1+deb12u4 ...". */
export function parseVersion(field: string, text: string): Version {
  const match = /(?:^|[\sv])(\d+)\.(\d+)(?:\.(\d+))?/.exec(` ${text}`);
  if (!match) refuse(field, `is not a version number: ${JSON.stringify(text)}`);
  return { major: Number(match[1]), minor: Number(match[2]), patch: Number(match[3] ?? 0) };
}

export function atLeast(v: Version, major: number, minor: number, patch = 0): boolean {
  if (v.major !== major) return v.major > major;
  if (v.minor !== minor) return v.minor > minor;
  return v.patch >= patch;
}

export function formatVersion(v: Version): string {
  return `${v.major}.${v.minor}.${v.patch}`;
}

export interface KeepalivedFeatures {
  version: Version;
  /** `no_virtual_ipaddress` (2.2.8+). Without it VRRPv3 demands a virtual address. */
  noVirtualIPAddress: boolean;
  /** Fractional `vrrp_script` interval and timeout (2.3.2+); older versions take whole seconds. */
  fractionalScriptInterval: boolean;
}

export interface HAProxyFeatures {
  version: Version;
  /** `add server` and `del server` on the admin socket without experimental mode (2.6+): servers come and go without a reload. */
  dynamicServers: boolean;
}

// Oldest versions the rendered files are written for: keepalived 2.2.7 is Debian 12's, and
// HAProxy 2.4 is the oldest with `http-check send`, `pathq` and the Prometheus exporter built in.
export const MIN_KEEPALIVED = '2.2.7';
export const MIN_HAPROXY = '2.4.0';

export function keepalivedFeatures(field: string, text: string): KeepalivedFeatures {
  const version = parseVersion(field, text);
  if (!atLeast(version, 2, 2, 7)) {
    refuse(field, `keepalived ${formatVersion(version)} is older than the oldest supported, ${MIN_KEEPALIVED}`);
  }
  return { version, noVirtualIPAddress: atLeast(version, 2, 2, 8), fractionalScriptInterval: atLeast(version, 2, 3, 2) };
}

export function haproxyFeatures(field: string, text: string): HAProxyFeatures {
  const version = parseVersion(field, text);
  if (!atLeast(version, 2, 4)) refuse(field, `HAProxy ${formatVersion(version)} is older than the oldest supported, ${MIN_HAPROXY}`);
  return { version, dynamicServers: atLeast(version, 2, 6) };
}

// Running system commands, and the system packages the fabric needs.
import { execFile, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs a command without a shell; rejects with the command line and its stderr on failure. */
export function run(cmd: string, args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = execFile(cmd, args, { timeout: opts.timeoutMs ?? 30_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        const detail = stderr.trim() || err.message;
        reject(new Error(`${[cmd, ...args].join(' ')} failed: ${detail}`));
      } else {
        resolvePromise({ stdout, stderr });
      }
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Like run, but resolves with the exit code instead of rejecting. */
export function runStatus(
  cmd: string, args: readonly string[], timeoutMs = 30_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolvePromise) => {
    execFile(cmd, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolvePromise({ code, stdout, stderr });
    });
  });
}

/** The binaries the fabric and the droplets' "image" use, and the Debian package of each. */
export const REQUIRED_BINARIES: ReadonlyArray<{ binary: string; pkg: string }> = [
  { binary: 'ip', pkg: 'iproute2' },
  { binary: 'nft', pkg: 'nftables' },
  { binary: 'sshd', pkg: 'openssh-server' },
  { binary: 'ssh-keygen', pkg: 'openssh-client' },
  { binary: 'nginx', pkg: 'nginx-light' },
  { binary: 'unshare', pkg: 'util-linux' },
  { binary: 'nsenter', pkg: 'util-linux' },
  { binary: 'curl', pkg: 'curl' },
  { binary: 'fuser', pkg: 'psmisc' },
  { binary: 'haproxy', pkg: 'haproxy' },
  { binary: 'keepalived', pkg: 'keepalived' },
  // The operator sends HAProxy runtime changes with it (perl-base is Essential: every droplet has it).
  { binary: 'perl', pkg: 'perl-base' },
];

const SEARCH_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

export function findBinary(binary: string, pathEnv = process.env.PATH ?? ''): string | undefined {
  for (const dir of [...pathEnv.split(delimiter).filter(Boolean), ...SEARCH_PATH]) {
    const candidate = join(dir, binary);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The packages whose binaries are missing, each once, in a stable order. */
export function missingPackages(find: (binary: string) => string | undefined = findBinary): string[] {
  const pkgs = REQUIRED_BINARIES.filter(({ binary }) => find(binary) === undefined).map(({ pkg }) => pkg);
  return [...new Set(pkgs)];
}

export function installLine(pkgs: readonly string[]): string {
  return `apt-get update && apt-get install -y --no-install-recommends ${pkgs.join(' ')}`;
}

export type PackageCheck =
  | { ok: true; installed: string[] }
  | { ok: false; missing: string[]; installLine: string; reason: string };

/**
 * Makes sure the needed system packages are present. As root, installs the missing ones with
 * apt-get (announcing them through `say`); otherwise returns the exact install line to run.
 */
export async function ensureSystemPackages(
  opts: { say?: (line: string) => void; isRoot?: boolean; find?: (binary: string) => string | undefined } = {},
): Promise<PackageCheck> {
  const say = opts.say ?? ((line: string) => process.stderr.write(`${line}\n`));
  const find = opts.find ?? findBinary;
  const missing = missingPackages(find);
  if (missing.length === 0) return { ok: true, installed: [] };
  const line = installLine(missing);
  const isRoot = opts.isRoot ?? process.getuid?.() === 0;
  if (!isRoot) return { ok: false, missing, installLine: line, reason: `missing packages: ${missing.join(', ')}; run as root: ${line}` };
  say(`installing missing packages with apt-get: ${missing.join(', ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [['update'], ['install', '-y', '--no-install-recommends', ...missing]]) {
    const code = await new Promise<number>((done) => {
      const child = spawn('apt-get', args, { stdio: ['ignore', 'inherit', 'inherit'], env });
      child.on('error', () => done(127));
      child.on('exit', (c) => done(c ?? 1));
    });
    if (code !== 0) return { ok: false, missing, installLine: line, reason: `apt-get ${args[0]} exited with ${code}` };
  }
  const still = missingPackages(find);
  if (still.length > 0) {
    return { ok: false, missing: still, installLine: installLine(still), reason: `still missing after apt-get: ${still.join(', ')}` };
  }
  return { ok: true, installed: missing };
}

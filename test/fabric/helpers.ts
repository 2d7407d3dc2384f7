// Helpers for the fabric's integration tests: real ssh, real curl, and leftover checks.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { Duplex } from 'node:stream';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NodeSSH } from 'node-ssh';

/** A fresh prefix within the `hft` family reserved for these tests (pids wrap; random does not repeat). */
export function testPrefix(tag: string): string {
  return `hft${tag}${Math.random().toString(36).slice(2, 8).padEnd(6, '0')}`.slice(0, 10);
}

export function makeKeyPair(path: string, comment: string): { privateKey: string; publicKey: string } {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path]);
  return { privateKey: readFileSync(path, 'utf8'), publicKey: readFileSync(`${path}.pub`, 'utf8').trim() };
}

let relayNamespace: string | null = null;

/**
 * Without the machine link (another sandbox holds the public ranges on this machine), SSH goes
 * through a byte relay running in this namespace (the client's) instead of a direct socket.
 */
export function relaySshThrough(ns: string | null): void {
  relayNamespace = ns;
}

function relaySocket(ns: string, host: string, port: number): Duplex {
  const script = `const s=require('net').connect(${port},${JSON.stringify(host)});process.stdin.pipe(s);s.pipe(process.stdout);` +
    `s.on('error',(e)=>{process.stderr.write(e.message);process.exit(1)});s.on('close',()=>process.exit(0));`;
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { stdio: ['pipe', 'pipe', 'ignore'] });
  const sock = Duplex.from({ readable: child.stdout, writable: child.stdin });
  sock.on('close', () => child.kill());
  child.on('exit', () => sock.destroy());
  return sock;
}

/** Connects as root; resolves with the session and the raw host key the server presented. */
export async function sshConnect(host: string, privateKey: string): Promise<{ ssh: NodeSSH; hostKey: Buffer }> {
  let hostKey: Buffer | undefined;
  const ssh = new NodeSSH();
  await ssh.connect({
    host, username: 'root', privateKey, readyTimeout: 10_000,
    ...(relayNamespace ? { sock: relaySocket(relayNamespace, host, 22) } : {}),
    hostVerifier: (key: Buffer) => {
      hostKey = key;
      return true;
    },
  });
  if (!hostKey) throw new Error('no host key seen');
  return { ssh, hostKey };
}

export async function sshRun(host: string, privateKey: string, command: string, stdin?: string): Promise<string> {
  const { ssh } = await sshConnect(host, privateKey);
  try {
    const r = await ssh.execCommand(command, stdin === undefined ? {} : { stdin });
    if (r.code !== 0) throw new Error(`ssh ${host} ${command}: exit ${r.code}: ${r.stderr}`);
    return r.stdout;
  } finally {
    ssh.dispose();
  }
}

/** curl from inside a namespace; resolves with the body, or rejects on any failure. */
export function curlIn(ns: string, url: string, maxTimeS = 2): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('ip', ['netns', 'exec', ns, 'curl', '-sS', '-f', '-m', String(maxTimeS), url], (err, stdout, stderr) => {
      if (err) reject(new Error(`curl ${url} in ${ns}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Everything a fabric with this prefix and state folder could have left behind. */
export function leftovers(prefix: string, stateDir: string): string[] {
  const found: string[] = [];
  const netns = execFileSync('ip', ['netns', 'list']).toString().split('\n').map((l) => l.split(' ')[0] ?? '');
  for (const ns of netns) if (ns.startsWith(`${prefix}-`)) found.push(`namespace ${ns}`);
  const links = JSON.parse(execFileSync('ip', ['-j', 'link', 'show']).toString()) as Array<{ ifname: string }>;
  for (const l of links) if (l.ifname.startsWith(`${prefix}-`)) found.push(`link ${l.ifname}`);
  const routes = JSON.parse(execFileSync('ip', ['-4', '-j', 'route', 'show', 'table', 'all']).toString()) as
    Array<{ dst: string; dev?: string }>;
  for (const r of routes) if (r.dev?.startsWith(`${prefix}-`)) found.push(`route ${r.dst} dev ${r.dev}`);
  const tables = execFileSync('nft', ['list', 'tables']).toString();
  for (const line of tables.split('\n')) if (line.includes(prefix)) found.push(`nft ${line}`);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ');
    } catch {
      continue;
    }
    if (cmdline.includes(stateDir) || cmdline.includes(`${prefix}-`)) found.push(`process ${entry}: ${cmdline.trim()}`);
  }
  if (existsSync(join(stateDir, 'fabric'))) {
    found.push(`files ${join(stateDir, 'fabric')}: ${readdirSync(join(stateDir, 'fabric')).join(', ')}`);
  }
  return found;
}

/** Whether a TCP port answers, probed from inside a namespace (bash's /dev/tcp). */
export function tcpProbe(ns: string, host: string, port: number): Promise<'open' | 'refused' | 'other'> {
  return new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', ns, 'timeout', '2', 'bash', '-c', `exec 3<>/dev/tcp/${host}/${port}`], (err, _stdout, stderr) => {
      if (!err) resolve('open');
      else resolve(/refused/i.test(stderr) ? 'refused' : 'other');
    });
  });
}

// A droplet's user_data acted on at first boot, for the image that runs this machine's own
// binaries (it has no cloud-init). The parts halb and its users rely on are applied as
// cloud-init applies them: write_files, ssh_keys (the host keys), ssh_pwauth (an sshd drop-in,
// where Ubuntu's cloud-init writes it) before sshd starts; runcmd after it started. Packages come
// from the image: nothing is installed or fetched. The Debian 13 image runs the real cloud-init
// on the same user_data instead.
import { parse } from 'yaml';
import { shellQuote } from './render.ts';

/** Where the droplet's own files live: the rest of its tree is this machine's, shared. */
const WRITABLE_ROOTS = ['/etc/', '/var/', '/root/', '/run/', '/tmp/'];

/** Ubuntu 24.04's cloud-init writes ssh_pwauth here. */
export const PWAUTH_DROP_IN = '/etc/ssh/sshd_config.d/50-cloud-init.conf';

const HOST_KEY_TYPES = ['ed25519', 'ecdsa', 'rsa'] as const;

export interface FirstBoot {
  /** Runs before sshd starts: files, host keys, the password setting. */
  beforeSsh: string;
  /** Runs once sshd answers: runcmd, or a user_data script. */
  afterSsh: string;
  /** The ed25519 host key's public line, when user_data gives one (ssh_keys). */
  hostKeyPublic?: string;
  /** Its private key (OpenSSH format), for a host that presents it without booting the files. */
  hostKeyPrivate?: string;
  /** What was not applied, and why: shown on the droplet's console. */
  skipped: string[];
}

interface WriteFile {
  path?: unknown;
  content?: unknown;
  encoding?: unknown;
  permissions?: unknown;
  append?: unknown;
}

function decode(file: WriteFile): Buffer {
  const content = typeof file.content === 'string' ? file.content : '';
  const encoding = typeof file.encoding === 'string' ? file.encoding.toLowerCase() : 'text/plain';
  if (['b64', 'base64'].includes(encoding)) return Buffer.from(content, 'base64');
  if (['text/plain', ''].includes(encoding)) return Buffer.from(content);
  throw new Error(`encoding ${encoding} is not supported by the sandbox (text/plain and base64 are)`);
}

/** A file written by printf of its base64, so no byte of it meets the shell's parser. */
function writeFileLines(path: string, content: Buffer, mode: string, append: boolean): string[] {
  const dir = path.slice(0, path.lastIndexOf('/')) || '/';
  return [
    `mkdir -p ${shellQuote(dir)}`,
    `printf '%s' '${content.toString('base64')}' | base64 -d ${append ? '>>' : '>'} ${shellQuote(path)}`,
    `chmod ${mode} ${shellQuote(path)}`,
  ];
}

function writableHere(path: string): boolean {
  return /^\/[A-Za-z0-9._/@+-]+$/.test(path) && !path.includes('..') && WRITABLE_ROOTS.some((root) => path.startsWith(root));
}

function runcmdLine(entry: unknown): string | undefined {
  if (typeof entry === 'string') return entry;
  if (Array.isArray(entry) && entry.every((w) => typeof w === 'string')) return entry.map((w) => shellQuote(w)).join(' ');
  return undefined;
}

/**
 * The first-boot programs for a droplet's user_data. A `#cloud-config` document is applied as
 * above; a `#!` script runs after sshd, as cloud-init runs it; anything else is left alone.
 */
export function firstBootFromUserData(userData: string | undefined): FirstBoot {
  const out: FirstBoot = { beforeSsh: '', afterSsh: '', skipped: [] };
  const text = userData ?? '';
  if (text.startsWith('#!')) {
    out.afterSsh = `${text}\n`;
    return out;
  }
  if (!text.startsWith('#cloud-config')) {
    if (text.trim() !== '') out.skipped.push('user_data: neither #cloud-config nor a #! script');
    return out;
  }
  let doc: Record<string, unknown>;
  try {
    const parsed: unknown = parse(text);
    doc = parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed as Record<string, unknown> : {};
  } catch (e) {
    out.skipped.push(`user_data: not valid YAML (${(e as Error).message.split('\n')[0]})`);
    return out;
  }
  const before: string[] = [];
  for (const [i, file] of (Array.isArray(doc.write_files) ? doc.write_files as WriteFile[] : []).entries()) {
    const path = typeof file?.path === 'string' ? file.path : '';
    if (!writableHere(path)) {
      out.skipped.push(`write_files[${i}]: ${JSON.stringify(path)} is outside the droplet's own folders (${WRITABLE_ROOTS.join(', ')})`);
      continue;
    }
    const mode = typeof file.permissions === 'string' && /^0?[0-7]{3,4}$/.test(file.permissions) ? file.permissions : '0644';
    try {
      before.push(...writeFileLines(path, decode(file), mode, file.append === true));
    } catch (e) {
      out.skipped.push(`write_files[${i}]: ${(e as Error).message}`);
    }
  }
  const keys = doc.ssh_keys !== null && typeof doc.ssh_keys === 'object' ? doc.ssh_keys as Record<string, unknown> : {};
  for (const type of HOST_KEY_TYPES) {
    const privateKey = keys[`${type}_private`];
    const publicKey = keys[`${type}_public`];
    if (typeof privateKey !== 'string' || typeof publicKey !== 'string') continue;
    const path = `/etc/ssh/ssh_host_${type}_key`;
    before.push(
      ...writeFileLines(path, Buffer.from(`${privateKey.trim()}\n`), '0600', false),
      ...writeFileLines(`${path}.pub`, Buffer.from(`${publicKey.trim()}\n`), '0644', false),
    );
    if (type === 'ed25519') {
      out.hostKeyPublic = publicKey.trim();
      out.hostKeyPrivate = `${privateKey.trim()}\n`;
    }
  }
  if (typeof doc.ssh_pwauth === 'boolean') {
    const content = `# written for ssh_pwauth at first boot, as cloud-init does\nPasswordAuthentication ${doc.ssh_pwauth ? 'yes' : 'no'}\n`;
    before.push(...writeFileLines(PWAUTH_DROP_IN, Buffer.from(content), '0600', false));
  }
  const after: string[] = [];
  for (const [i, entry] of (Array.isArray(doc.runcmd) ? doc.runcmd : []).entries()) {
    const line = runcmdLine(entry);
    if (line === undefined) out.skipped.push(`runcmd[${i}]: neither a string nor a list of strings`);
    else after.push(line);
  }
  if (Array.isArray(doc.packages) && doc.packages.length > 0) {
    before.push(`echo ${shellQuote(`packages from the image: ${doc.packages.map(String).join(', ')}`)}`);
  }
  // A failing step prints its own error and the next one still runs, as in cloud-init.
  out.beforeSsh = before.length ? `${before.join('\n')}\n` : '';
  // As cloud-init's runcmd: one sh script, a failing command does not stop the next.
  out.afterSsh = after.length ? `${after.join('\n')}\n` : '';
  return out;
}

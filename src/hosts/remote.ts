// The shell programs the host agent runs on a load-balancer node, built as pure functions so
// they can be read, tested and run anywhere `sh` runs. Each is sent on stdin (`sh -s`), never
// on a command line, so file contents and the failover token never show up in `ps`.
//
// Hosts may or may not run systemd: a real droplet does, a sandbox droplet does not. Daemons are
// driven through systemctl when systemd runs, else through their pid files; reloads never
// restart: HAProxy reloads its master-worker (SIGUSR2: the new workers take over the listeners
// and old connections finish), keepalived re-reads its config on SIGHUP without a VRRP
// transition.

import { NODE_PORTS } from '../api/derived.ts';
import { DEFAULT_PATHS } from '../render/render.ts';
import type { RuntimeCommand } from '../render/runtime.ts';

export interface RemoteFile {
  path: string;
  mode: number;
  content: string;
}

export interface DaemonPaths {
  haproxyConfig: string;
  keepalivedConfig: string;
  /** Where the agent records the hash of the files it applied. */
  hashFile: string;
  vrrpStateFile: string;
  haproxyPidFile: string;
  keepalivedPidFile: string;
  /** HAProxy's admin socket (its `stats socket ... level admin`), for runtime changes without a reload. */
  haproxyAdminSocket: string;
  /** HAProxy's master CLI, for reloads and process checks without systemd. */
  haproxyMasterSocket: string;
  /** HAProxy's log on hosts without systemd (with it, the journal: journalctl -u haproxy). */
  haproxyLogFile: string;
  /** The nftables host firewall (table inet halb), loaded with `nft -f` after every apply. */
  firewall: string;
  /** The sshd drop-in, checked with `sshd -t` before it is swapped in; sshd reloads after. */
  sshdConfig: string;
  /** root's authorized_keys, checked with `ssh-keygen -l` before it is swapped in. */
  authorizedKeys: string;
  sshdPidFile: string;
  /** Left by a swap that changed the sshd drop-in: the next start/reload reloads sshd. */
  sshdReloadMarker: string;
  /** keepalived's track_file: a number added to the node's priority (render's PRIORITY_OFFSET). */
  priorityOffset: string;
  /** What the failover script logs. */
  failoverLog: string;
}

/** Where the host agent finds things on a node: the rendered files where the renderer puts them
 *  (one table, DEFAULT_PATHS), and the agent's own runtime files. */
export const DEFAULT_DAEMON_PATHS: DaemonPaths = {
  haproxyConfig: DEFAULT_PATHS.haproxyConfig,
  keepalivedConfig: DEFAULT_PATHS.keepalivedConfig,
  vrrpStateFile: DEFAULT_PATHS.vrrpStateFile,
  firewall: DEFAULT_PATHS.firewall,
  sshdConfig: DEFAULT_PATHS.sshdConfig,
  authorizedKeys: DEFAULT_PATHS.authorizedKeys,
  hashFile: '/etc/halb/config-hash',
  haproxyPidFile: '/run/haproxy.pid',
  keepalivedPidFile: '/run/keepalived.pid',
  haproxyAdminSocket: DEFAULT_PATHS.haproxyAdminSocket,
  haproxyMasterSocket: '/run/haproxy-master.sock',
  haproxyLogFile: '/var/log/haproxy.log',
  sshdPidFile: '/run/sshd.pid',
  sshdReloadMarker: '/run/halb/sshd-changed',
  priorityOffset: '/etc/halb/priority-offset',
  failoverLog: '/var/log/halb-failover.log',
};

const dirOf = (path: string) => path.slice(0, path.lastIndexOf('/')) || '/';

const STAGED = '.halb-new';

/** Single-quotes a word for sh. Paths are checked by the renderer; this is defence in depth. */
export function shQuote(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`;
}

function checkPath(path: string): string {
  if (!/^\/[A-Za-z0-9._/-]+$/.test(path) || path.includes('..')) {
    throw new Error(`refusing to write to ${JSON.stringify(path)}: not a plain absolute path`);
  }
  return path;
}

/** Marks the lines of a program's output the agent parses. */
const MARK = 'halb:';

/** A staged file's twin that the daemons check: its paths point at the other staged files. */
const CHECK = '.halb-check';
/** The file a swap replaces, kept until every file is in place, to put back if one move fails. */
const PREVIOUS = '.halb-old';

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');

/**
 * A config as the daemon must check it before the swap: every path of another file in the same
 * batch (a PEM, a script) rewritten to that file's staged name, so `haproxy -c` loads the new
 * certificates and `keepalived -t` sees the new scripts, not the ones still in place.
 */
export function withStagedPaths(content: string, self: string, files: readonly RemoteFile[]): string {
  const others = files.map((f) => f.path).filter((p) => p !== self).sort((a, b) => b.length - a.length);
  if (!others.length) return content;
  const pathChar = '[A-Za-z0-9._/-]';
  const pattern = new RegExp(`(?<!${pathChar})(${others.map(escapeRegExp).join('|')})(?!${pathChar})`, 'g');
  return content.replace(pattern, (path) => path + STAGED);
}

/**
 * Stages every file next to its target, validates the whole staged set with the daemons and
 * tools themselves (nft, sshd, ssh-keygen, and HAProxy and keepalived on twins of their configs
 * that point at the staged certificates and scripts), and only then swaps all of them in. A
 * failed validation removes the staged files and changes nothing in place; the tool's own
 * message is printed after `halb:invalid <tool>`, exit 3. A move that fails mid-swap puts every
 * file back as it was (`halb:swap-failed`, exit 1). Exit 0 after a swap.
 */
export function stageValidateSwapScript(files: readonly RemoteFile[], hash: string, paths: DaemonPaths = DEFAULT_DAEMON_PATHS): string {
  const targets = files.map((f) => checkPath(f.path));
  const staged = (p: string) => shQuote(p + STAGED);
  const twin = (p: string) => shQuote(p + CHECK);
  const has = (path: string) => targets.includes(path);
  const checked = [paths.haproxyConfig, paths.keepalivedConfig].filter(has);
  const lines = ['set -u', 'umask 077', `trap 'rm -f ${[...targets.map(staged), ...checked.map(twin)].join(' ')}' EXIT`];
  const write = (target: string, content: string, mode: number, name: string) => lines.push(
    `mkdir -p ${shQuote(dirOf(target))}`,
    // base64 keeps every byte of the content out of the shell's parser.
    `printf '%s' '${Buffer.from(content).toString('base64')}' | base64 -d > ${name} || exit 1`,
    `chmod ${mode.toString(8)} ${name}`,
  );
  for (const file of files) write(file.path, file.content, file.mode, staged(file.path));
  for (const file of files.filter((f) => checked.includes(f.path))) {
    write(file.path, withStagedPaths(file.content, file.path, files), file.mode, twin(file.path));
  }

  // A check runs only when one of the files it reads changed: a file staged byte for byte as the
  // one in place was checked when it went in (each check forks a daemon; a server-only change
  // should not pay for sshd, nft and keepalived).
  const changedAny = (files: readonly string[]) => files.map((f) => `! cmp -s ${staged(f)} ${shQuote(f)}`).join(' || ');
  const refuse = (tool: string, command: string, reads: readonly string[], filter = '') =>
    `if { ${changedAny(reads)}; } && ! out=$(${command} 2>&1); then ` +
    `echo '${MARK}invalid ${tool}'; printf '%s\\n' "$out" | ${filter}head -20; exit 3; fi`;
  const under = (folder: string) => targets.filter((t) => t.startsWith(`${folder}/`));
  // The files that guard access to the host are checked like the rest: a firewall nft refuses,
  // an sshd drop-in sshd refuses or a broken authorized_keys could cut the operator off.
  if (has(paths.firewall)) lines.push(refuse('nft', `nft -c -f ${staged(paths.firewall)}`, [paths.firewall]));
  if (has(paths.sshdConfig)) {
    // The drop-in on its own, then the host's own config (which includes the current drop-ins).
    lines.push(
      `if ${changedAny([paths.sshdConfig])}; then`,
      'check=$(mktemp) && mkdir -p /run/sshd',
      `printf 'Include %s\\nInclude /etc/ssh/sshd_config\\n' ${staged(paths.sshdConfig)} > "$check"`,
      'if ! out=$(/usr/sbin/sshd -t -f "$check" 2>&1); then ' +
        `rm -f "$check"; echo '${MARK}invalid sshd'; printf '%s\\n' "$out" | head -20; exit 3; fi`,
      'rm -f "$check"',
      'fi',
    );
  }
  if (has(paths.authorizedKeys)) {
    lines.push(refuse('authorized_keys', `ssh-keygen -l -f ${staged(paths.authorizedKeys)}`, [paths.authorizedKeys]));
  }
  // HAProxy reads its certificates, keepalived its scripts: each is checked when any file of its
  // folder (its config among them) changed.
  if (has(paths.haproxyConfig)) {
    lines.push(refuse('haproxy', `haproxy -c -f ${twin(paths.haproxyConfig)}`, under(dirOf(paths.haproxyConfig)),
      "grep -E 'ALERT|ERROR|error' | "));
  }
  if (has(paths.keepalivedConfig)) {
    lines.push(refuse('keepalived', `keepalived -t -f ${twin(paths.keepalivedConfig)}`, under(dirOf(paths.keepalivedConfig))));
  }

  // Everything validated: swap all or nothing. Each target that exists is kept (a hard link,
  // else a copy) until every move succeeded; supporting files move before the configs naming them.
  const order = [...targets.filter((p) => !checked.includes(p)), ...checked];
  const previous = (p: string) => shQuote(p + PREVIOUS);
  lines.push(
    `restore() { for f in ${order.map(shQuote).join(' ')}; do ` +
      `if [ -e "$f${PREVIOUS}" ]; then mv -f "$f${PREVIOUS}" "$f"; else rm -f "$f"; fi; done; }`,
    ...order.map((p) => `rm -f ${previous(p)}; ` +
      `if [ -e ${shQuote(p)} ]; then ln -f ${shQuote(p)} ${previous(p)} 2>/dev/null || cp -p ${shQuote(p)} ${previous(p)} || exit 1; fi`),
  );
  // sshd reloads only when its drop-in changed: a reload briefly closes its listener.
  if (has(paths.sshdConfig)) {
    lines.push(`cmp -s ${staged(paths.sshdConfig)} ${shQuote(paths.sshdConfig)} || ` +
      `{ mkdir -p ${shQuote(dirOf(paths.sshdReloadMarker))} && : > ${shQuote(paths.sshdReloadMarker)}; }`);
  }
  for (const path of order) lines.push(`mv -f ${staged(path)} ${shQuote(path)} || { restore; echo '${MARK}swap-failed'; exit 1; }`);
  lines.push(
    `rm -f ${order.map(previous).join(' ')}`,
    `mkdir -p ${shQuote(dirOf(paths.hashFile))}`,
    `printf '%s\\n' ${shQuote(hash)} > ${shQuote(paths.hashFile)}`,
    `echo '${MARK}swapped'`,
  );
  return `${lines.join('\n')}\n`;
}

// Programs that speak to HAProxy's admin socket are Perl: perl-base is Essential on Debian and
// Ubuntu (every droplet has it, with IO::Socket::UNIX), and starts in about 20 ms where python3
// took 100-120 ms on the sandbox's droplets; socat and nc are not on every image.

/** Sends one command to HAProxy's admin socket (the first argument) and prints its answer; gives
 *  up after 1 s. */
const ADMIN_COMMAND_PROGRAM = `use IO::Socket::UNIX;
alarm 1;
my $socket = IO::Socket::UNIX->new(Peer => $ARGV[0]) or die "$!\\n";
print $socket "$ARGV[1]\\n";
local $/;
print <$socket>;
`;

/** The argv that runs one command on a node's HAProxy admin socket and prints the answer. */
export function haproxyAdminCommand(command: string, paths: DaemonPaths = DEFAULT_DAEMON_PATHS): string[] {
  return ['perl', '-e', ADMIN_COMMAND_PROGRAM, paths.haproxyAdminSocket, command];
}

/**
 * A reload returns before HAProxy's new worker has taken over (SIGUSR2, or systemd's reload,
 * which sends it): runtime commands sent meanwhile would reach the old worker and be lost with
 * it. The reload waits (up to 3 s) until the admin socket answers from another worker.
 */
function reloadWaitFunctions(paths: DaemonPaths): string {
  const showInfo = haproxyAdminCommand('show info', paths).map(shQuote).join(' ');
  return `haproxy_worker() { ${showInfo} 2>/dev/null | sed -n 's/^Pid: \\([0-9][0-9]*\\).*/\\1/p'; }
wait_reloaded() {
  [ -n "$1" ] || return 0
  for i in $(seq 60); do now=$(haproxy_worker); [ -n "$now" ] && [ "$now" != "$1" ] && return 0; sleep 0.05; done
  return 0
}
`;
}

/**
 * Starts HAProxy and keepalived if they are not running, reloads them if they are. Reloads do
 * not drop connections and do not cause a VRRP transition.
 * (A backslash at a line's end below is JavaScript's line continuation, as in readStateScript.)
 */
export function startOrReloadScript(paths: DaemonPaths = DEFAULT_DAEMON_PATHS): string {
  const haproxyPid = shQuote(paths.haproxyPidFile);
  const keepalivedPid = shQuote(paths.keepalivedPidFile);
  return `set -u
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
# A daemon started outside systemd (by hand, or before systemd was up) holds the pid file and
# the ports, and systemd's start then fails ("daemon is already running"): stop it first.
stop_stray() {
  alive "$2" || return 0
  pid=$(cat "$2")
  # Not a stray: the unit's own process (running, or still starting at boot), or another program
  # that got a stale file's pid.
  [ "$pid" = "$(systemctl show -p MainPID --value "$1" 2>/dev/null)" ] && return 0
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ] || return 0
  kill "$pid"
  for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.05; done
  kill -9 "$pid" 2>/dev/null || true
}
${reloadWaitFunctions(paths)}mkdir -p /run/haproxy ${shQuote(dirOf(paths.vrrpStateFile))}
if [ -d /run/systemd/system ]; then
  # Enabling runs Debian's SysV helper, over a second each time even when nothing changes: only when needed.
  { systemctl is-enabled -q haproxy && systemctl is-enabled -q keepalived; } 2>/dev/null || \
systemctl enable -q haproxy keepalived 2>/dev/null || true
  stop_stray haproxy ${haproxyPid}
  stop_stray keepalived ${keepalivedPid}
  if systemctl is-active -q haproxy; then old=$(haproxy_worker); systemctl reload haproxy && wait_reloaded "$old"; \
else systemctl restart haproxy; fi || exit 1
  if systemctl is-active -q keepalived; then systemctl reload keepalived; else systemctl restart keepalived; fi || exit 1
  echo '${MARK}systemd'
${hostAccessScript(paths)}  exit 0
fi
if alive ${haproxyPid}; then
  old=$(haproxy_worker)
  kill -USR2 "$(cat ${haproxyPid})" && wait_reloaded "$old" && echo '${MARK}reloaded haproxy'
else
  # In the foreground of its own session rather than -D, so that its log (to stdout) reaches
  # ${paths.haproxyLogFile}, as the journal receives it under systemd.
  rm -f ${haproxyPid}
  setsid haproxy -W -p ${haproxyPid} -S ${shQuote(paths.haproxyMasterSocket)} -f ${shQuote(paths.haproxyConfig)} \
>>${shQuote(paths.haproxyLogFile)} 2>&1 </dev/null &
  for i in $(seq 100); do alive ${haproxyPid} && break; sleep 0.05; done
  alive ${haproxyPid} || { tail -5 ${shQuote(paths.haproxyLogFile)}; exit 1; }
  echo '${MARK}started haproxy'
fi
if alive ${keepalivedPid}; then
  kill -HUP "$(cat ${keepalivedPid})" && echo '${MARK}reloaded keepalived'
else
  keepalived -p ${keepalivedPid} -f ${shQuote(paths.keepalivedConfig)} || exit 1
  echo '${MARK}started keepalived'
fi
${hostAccessScript(paths)}`;
}

/**
 * Loads the host firewall (one nft transaction) and, when its drop-in changed, makes sshd
 * re-read its config. A reload leaves open sessions alone, this one included.
 */
function hostAccessScript(paths: DaemonPaths): string {
  const firewall = shQuote(paths.firewall);
  return `if [ -f ${firewall} ]; then
  nft -f ${firewall} || exit 1
  echo '${MARK}loaded firewall'
  # Its unit is reloaded and enabled when new or changed, not on every pass (a daemon-reload costs a quarter second).
  if [ -d /run/systemd/system ] && { [ "$(systemctl show -p NeedDaemonReload --value halb-firewall.service 2>/dev/null)" != no ] || \
! systemctl is-enabled -q halb-firewall.service 2>/dev/null; }; then
    systemctl daemon-reload && systemctl enable -q halb-firewall.service 2>/dev/null || true
  fi
fi
if [ -f ${shQuote(paths.sshdReloadMarker)} ]; then
  if [ -d /run/systemd/system ]; then systemctl reload ssh 2>/dev/null || systemctl reload sshd 2>/dev/null || true
  elif [ -s ${shQuote(paths.sshdPidFile)} ]; then kill -HUP "$(cat ${shQuote(paths.sshdPidFile)})" 2>/dev/null || true
  fi
  rm -f ${shQuote(paths.sshdReloadMarker)}
  echo '${MARK}reloaded sshd'
fi
`;
}

/**
 * One round trip for an apply: stage, validate and swap the files, then start or reload the
 * daemons. A refused validation (exit 3) or a failed swap ends the program before the reload.
 */
export function applyScript(files: readonly RemoteFile[], hash: string, paths: DaemonPaths = DEFAULT_DAEMON_PATHS): string {
  return `${stageValidateSwapScript(files, hash, paths)}${startOrReloadScript(paths)}`;
}

/** The first line of the runtime part of an apply program (the SSH stand-in splits on it). */
export const RUNTIME_BEGIN = '# halb: HAProxy runtime changes, else a reload';

/**
 * Sends HAProxy runtime commands to its admin socket, one connection each (the socket's
 * non-interactive mode), and checks each answer, in Perl (see ADMIN_COMMAND_PROGRAM). Each
 * command's four fields come as hex arguments (no quoting to get wrong; pack is built in).
 * Success ends the program (exit 0, `halb:runtime haproxy N commands`); a failed command or a
 * socket that does not answer print why (`halb:runtime-failed ...`) and fall through to what
 * follows, a reload.
 */
const RUNTIME_PROGRAM = `use IO::Socket::UNIX;
my $path = shift @ARGV;
my $count = 0;
while (@ARGV) {
  my ($command, $payload, $expect, $optional) = map { pack "H*", $_ } splice @ARGV, 0, 4;
  my $answer = eval {
    local $SIG{ALRM} = sub { die "timed out\\n" };
    alarm 5;
    my $socket = IO::Socket::UNIX->new(Peer => $path) or die "socket: $!\\n";
    print $socket $command, "\\n", length $payload ? "$payload\\n\\n" : "";
    local $/;
    my $out = <$socket>;
    alarm 0;
    defined $out ? $out : "";
  };
  $answer = $@ unless defined $answer;
  $answer =~ s/^\\s+|\\s+$//g;
  $count++;
  next if ($expect eq "" ? $answer eq "" : index($answer, $expect) >= 0) || $optional;
  (my $flat = $answer) =~ s/\\s+/ /g;
  print "${MARK}runtime-failed $command: ", substr($flat, 0, 300), "\\n";
  exit 4;
}
print "${MARK}runtime haproxy $count commands\\n";
`;

function runtimePart(commands: readonly RuntimeCommand[], paths: DaemonPaths): string {
  const hex = (text: string) => Buffer.from(text).toString('hex');
  const fields = commands.map((c) => [c.command, c.payload ?? '', c.expect, c.optional ? '1' : ''].map((f) => `'${hex(f)}'`).join(' '));
  return `${RUNTIME_BEGIN}
if command -v perl >/dev/null 2>&1; then
  perl -e ${shQuote(RUNTIME_PROGRAM)} ${shQuote(paths.haproxyAdminSocket)} ${fields.join(' ')} && exit 0
else
  echo '${MARK}runtime-failed no perl'
fi
`;
}

/**
 * An apply that HAProxy takes at runtime: stage, validate and swap the files as ever (so a later
 * reload starts in the same state), then the commands; should one fail, a reload after all.
 */
export function runtimeApplyScript(
  files: readonly RemoteFile[], hash: string, commands: readonly RuntimeCommand[], paths: DaemonPaths = DEFAULT_DAEMON_PATHS,
): string {
  return `${stageValidateSwapScript(files, hash, paths)}${runtimePart(commands, paths)}${startOrReloadScript(paths)}`;
}

/**
 * Follows keepalived's state as its notify script records it: prints the state now, then each
 * new one the moment the script renames the file into place (tail follows the name, with
 * inotify). Runs as long as the operator's session does; sshd ends it with the session.
 */
export function watchVrrpScript(paths: DaemonPaths = DEFAULT_DAEMON_PATHS): string {
  // GNU tail follows a renamed file at once through inotify on its directory, but polls when the
  // directory is missing (keepalived has not written its state yet), and a poll noticed a rename
  // only every 5th second: make the directory first, and poll often should it poll anyway.
  return `mkdir -p ${shQuote(dirOf(paths.vrrpStateFile))}
exec tail -n 1 -F -s 0.2 --max-unchanged-stats=1 ${shQuote(paths.vrrpStateFile)} 2>/dev/null
`;
}

/** Stops keepalived (SIGTERM: it leaves MASTER with a priority-0 advert) and waits for it to exit. */
export function stopKeepalivedScript(paths: DaemonPaths = DEFAULT_DAEMON_PATHS): string {
  const keepalivedPid = shQuote(paths.keepalivedPidFile);
  return `set -u
if [ -d /run/systemd/system ]; then systemctl stop keepalived; exit $?; fi
[ -s ${keepalivedPid} ] || exit 0
pid=$(cat ${keepalivedPid})
kill -TERM "$pid" 2>/dev/null || exit 0
i=0
while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
! kill -0 "$pid" 2>/dev/null
`;
}

/**
 * Writes the number keepalived adds to the node's priority (its track_file), whole and renamed
 * so keepalived never reads a partial one. keepalived notices the change at once (inotify): a
 * MASTER given the hand-over value leaves with a priority-0 advert, and no daemon reloads.
 */
export function writePriorityOffsetScript(offset: number, paths: DaemonPaths = DEFAULT_DAEMON_PATHS): string {
  if (!Number.isInteger(offset) || offset < -254 || offset > 254) {
    throw new Error(`a priority offset is a whole number from -254 to 254, got ${offset}`);
  }
  const file = shQuote(paths.priorityOffset);
  return `set -eu
mkdir -p ${shQuote(dirOf(paths.priorityOffset))}
printf '%s\n' '${offset}' > ${shQuote(paths.priorityOffset + STAGED)}
mv -f ${shQuote(paths.priorityOffset + STAGED)} ${file}
echo "${MARK}priority-offset $(cat ${file})"
`;
}

/**
 * The last lines of the failover script's log and of HAProxy's (the journal under systemd, else
 * its log file), each after a marker line, for `kubectl halb logs`.
 */
export function readLogsScript(lines: number, paths: DaemonPaths = DEFAULT_DAEMON_PATHS): string {
  if (!Number.isInteger(lines) || lines < 1 || lines > 10_000) {
    throw new Error(`lines must be a whole number from 1 to 10000, got ${lines}`);
  }
  return `set -u
echo '${MARK}log failover ${paths.failoverLog}'
tail -n ${lines} ${shQuote(paths.failoverLog)} 2>/dev/null || true
if [ -d /run/systemd/system ]; then
  echo '${MARK}log haproxy journalctl -u haproxy'
  journalctl -u haproxy -n ${lines} --no-pager -o short-iso 2>/dev/null || true
else
  echo '${MARK}log haproxy ${paths.haproxyLogFile}'
  tail -n ${lines} ${shQuote(paths.haproxyLogFile)} 2>/dev/null || true
fi
`;
}

/** readLogsScript's output, as the log name → its source and lines. */
export function parseLogs(output: string): { name: string; source: string; lines: string[] }[] {
  const logs: { name: string; source: string; lines: string[] }[] = [];
  for (const line of output.split('\n')) {
    const mark = line.startsWith(`${MARK}log `) ? line.slice(MARK.length + 4) : undefined;
    if (mark !== undefined) {
      const space = mark.indexOf(' ');
      logs.push({ name: mark.slice(0, space), source: mark.slice(space + 1), lines: [] });
    } else if (line !== '' && logs.length) {
      logs.at(-1)!.lines.push(line);
    }
  }
  return logs;
}

/**
 * Filters `sshd -T` down to the settings that decide who may log in, as `name=value,` pairs with
 * the names lower-cased: OpenSSH 10.6 and later print them in mixed case (`PasswordAuthentication`).
 */
export const SSHD_ACCESS_SETTINGS =
  `awk 'tolower($1) ~ /^(passwordauthentication|kbdinteractiveauthentication|permitrootlogin)$/ { printf "%s=%s,", tolower($1), $2 }'`;

/**
 * Picks keepalived's version line out of `keepalived --version`: keepalived 2.3 prints a notice
 * ("Unable to read build config options file") first when its config-opts file is missing.
 */
export const KEEPALIVED_VERSION_LINE = `grep -m1 '^Keepalived v'`;

/**
 * Facts of a node that stay put while it runs: daemon versions, the droplet's id and addresses
 * from the metadata service. A session reads them once; later reads pass the private address
 * they found (for HAProxy's stats) and skip the rest.
 */
export interface KnownFacts {
  privateIPv4: string;
}

/**
 * Reads everything the operator reports about a node, in one round trip. Server states come
 * from HAProxy's stats CSV on the VPC address (field 18 is a server's status: UP, DOWN, MAINT,
 * no check ...), as `backend/server=STATUS` pairs. A backslash at a line's end in the template is
 * JavaScript's line continuation: the script gets the two pieces as one line.
 */
export function readStateScript(
  paths: DaemonPaths = DEFAULT_DAEMON_PATHS, metadataBaseURL = 'http://169.254.169.254', metricsPort: number = NODE_PORTS.metrics,
  known?: KnownFacts,
): string {
  const md = (path: string) => `curl -fsS --max-time 2 ${shQuote(`${metadataBaseURL}/metadata/v1/${path}`)} 2>/dev/null`;
  const facts = known ? `priv=${shQuote(known.privateIPv4)}` : `\
echo "${MARK}keepalived-version $(keepalived --version 2>&1 | ${KEEPALIVED_VERSION_LINE})"
echo "${MARK}haproxy-version $(haproxy -v 2>&1 | head -1)"
echo "${MARK}anchor $(${md('interfaces/public/0/anchor_ipv4/address')})"
priv=$(${md('interfaces/private/0/ipv4/address')})
echo "${MARK}private $priv"
echo "${MARK}droplet-id $(${md('id')})"`;
  return `set -u
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
echo "${MARK}vrrp $(cat ${shQuote(paths.vrrpStateFile)} 2>/dev/null | head -c 16)"
echo "${MARK}hash $(cat ${shQuote(paths.hashFile)} 2>/dev/null | head -c 80)"
echo "${MARK}config-applied $(stat -c %Y ${shQuote(paths.hashFile)} 2>/dev/null)"
${facts}
[ -n "$priv" ] && echo "${MARK}servers $(curl -fsS --max-time 2 "http://$priv:${metricsPort}/stats;csv" 2>/dev/null | \
awk -F, '$1 !~ /^#/ && $1 !~ /^halb_/ && $2 != "FRONTEND" && $2 != "BACKEND" && NF > 18 { printf "%s/%s=%s,", $1, $2, $18 }')"
echo "${MARK}priority-offset $(head -c 16 ${shQuote(paths.priorityOffset)} 2>/dev/null)"
# DigitalOcean's metadata reference gives /v1/maintenance_event; if that fails, the read tries /metadata/v1/, beside the other keys.
echo "${MARK}maintenance-event $({ curl -fsS --max-time 2 ${shQuote(`${metadataBaseURL}/v1/maintenance_event`)} 2>/dev/null || \
${md('maintenance_event')}; } | head -c 64 | tr -cd 'a-z_')"
if [ -d /run/systemd/system ]; then
  systemctl is-active -q haproxy && echo "${MARK}haproxy-running yes" || echo "${MARK}haproxy-running no"
  systemctl is-active -q keepalived && echo "${MARK}keepalived-running yes" || echo "${MARK}keepalived-running no"
else
  alive ${shQuote(paths.haproxyPidFile)} && echo "${MARK}haproxy-running yes" || echo "${MARK}haproxy-running no"
  alive ${shQuote(paths.keepalivedPidFile)} && echo "${MARK}keepalived-running yes" || echo "${MARK}keepalived-running no"
fi
nft list table inet halb >/dev/null 2>&1 && echo "${MARK}firewall yes" || echo "${MARK}firewall no"
echo "${MARK}ssh-client \${SSH_CONNECTION%% *}"
echo "${MARK}sshd $(/usr/sbin/sshd -T 2>/dev/null | ${SSHD_ACCESS_SETTINGS})"
if [ -f /var/lib/cloud/instance/boot-finished ] || ! command -v cloud-init >/dev/null 2>&1; then \
echo "${MARK}booted yes"; else echo "${MARK}booted no"; fi
`;
}

/** The `halb:key value` lines of a program's output, as a map. */
export function parseMarked(output: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of output.split('\n')) {
    if (!line.startsWith(MARK)) continue;
    const rest = line.slice(MARK.length);
    const space = rest.indexOf(' ');
    out.set(space < 0 ? rest : rest.slice(0, space), space < 0 ? '' : rest.slice(space + 1).trim());
  }
  return out;
}

/** "web/s1=UP,web/s2=DOWN," → { 'web/s1': 'UP', 'web/s2': 'DOWN' }: HAProxy's server states,
 *  and sshd's settings the same way. */
export function parsePairs(value: string | undefined): Record<string, string> | undefined {
  if (!value) return undefined;
  const out: Record<string, string> = {};
  for (const pair of value.split(',')) {
    const eq = pair.indexOf('=');
    if (eq > 0) out[pair.slice(0, eq)] = pair.slice(eq + 1).trim();
  }
  return Object.keys(out).length ? out : undefined;
}

/** "Keepalived v2.2.7 (01/16,2022)" → "2.2.7"; "HAProxy version 2.6.12-1+deb12u1 2023/…" → "2.6.12". */
export function parseVersion(line: string | undefined): string | undefined {
  return line?.match(/v?(\d+\.\d+(?:\.\d+)?)/)?.[1];
}

// HAProxy's admin socket on a node, as the benchmarks and tests read it: one command run with
// Perl inside the node (as the operator's own runtime program speaks to it: perl-base is on
// every droplet, and a poll that starts in 20 ms rather than python3's 100 ms times an edit more
// closely), and the answers they read parsed: the worker's pid and a backend's servers.
import { DEFAULT_PATHS } from '../../src/render/render.ts';

const PROGRAM = `use IO::Socket::UNIX; my $s = IO::Socket::UNIX->new(Peer => ${JSON.stringify(DEFAULT_PATHS.haproxyAdminSocket)}) ` +
  'or die "$!\\n"; print $s "$ARGV[0]\\n"; local $/; print <$s>;';

/** The argv that runs one admin-socket command on a node and prints its answer. */
export function haproxyCommand(command: string): string[] {
  return ['perl', '-e', PROGRAM, command];
}

/** The worker's pid in `show info`'s answer (a reload forks a new worker). */
export function workerPid(showInfo: string): string | undefined {
  return /^Pid: (\d+)$/m.exec(showInfo)?.[1];
}

export interface RuntimeServer { name: string; address: string; port: string; weight: string }

/** A backend's servers in `show servers state <backend>`'s answer, as HAProxy holds them now. */
export function runtimeServers(showServersState: string, backend: string): RuntimeServer[] {
  return showServersState.split('\n').map((line) => line.split(' ')).filter((f) => /^\d+$/.test(f[0] ?? '') && f[1] === backend)
    .map((f) => ({ name: f[3]!, address: f[4]!, weight: f[7]!, port: f[18]! }));
}

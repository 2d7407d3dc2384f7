// HAProxy's admin socket on a node, as the benchmarks and tests read it: one command run with
// python3 inside the node (as the operator's own runtime program speaks to it), and the answers
// they read parsed: the worker's pid and a backend's servers.
import { DEFAULT_PATHS } from '../../src/render/render.ts';

const PROGRAM = `import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect(${JSON.stringify(DEFAULT_PATHS.haproxyAdminSocket)})\n` +
  's.sendall(sys.argv[1].encode()+b"\\n")\nprint(b"".join(iter(lambda: s.recv(65536), b"")).decode())';

/** The argv that runs one admin-socket command on a node and prints its answer. */
export function haproxyCommand(command: string): string[] {
  return ['python3', '-c', PROGRAM, command];
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

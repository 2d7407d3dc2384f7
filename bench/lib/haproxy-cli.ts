// HAProxy's admin socket on a node, as the benchmarks and tests read its answers (they run a
// command with the operator's own program, haproxyAdminCommand in src/hosts/remote.ts): the
// worker's pid and a backend's servers.
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

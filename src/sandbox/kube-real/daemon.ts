// One control-plane process (etcd, kube-apiserver, kube-controller-manager): started with its
// output in a log file, stopped with SIGTERM and then SIGKILL. setpriv gives it a parent-death
// signal, so a test process that dies without cleaning up does not leave it running.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';

export class Daemon {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  readonly name: string;
  readonly logFile: string;
  private readonly binary: string;
  private readonly args: string[];

  constructor(name: string, binary: string, args: string[], logFile: string) {
    this.name = name;
    this.binary = binary;
    this.args = args;
    this.logFile = logFile;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  start(): void {
    if (this.running) return;
    const log = openSync(this.logFile, 'a');
    const child = spawn('setpriv', ['--pdeathsig', 'TERM', '--', this.binary, ...this.args], { stdio: ['ignore', log, log] });
    closeSync(log);
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    this.child = child;
  }

  /** Throws, with the end of its log, when the process has exited. */
  assertRunning(): void {
    if (this.running) return;
    throw new Error(`${this.name} exited (${this.child?.exitCode ?? this.child?.signalCode}); ${this.logFile} ends:\n${this.tail()}`);
  }

  tail(lines = 15): string {
    try {
      return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  async stop(graceMs = 10_000): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    child.kill('SIGTERM');
    const killed = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(killed);
  }
}

// A long-lived `nft -i` in the core namespace, so a floating-IP move costs one write and one
// kernel transaction (about a millisecond) instead of starting nft (tens of milliseconds on a
// busy machine). Each line written is one nft transaction; it ends by replacing the element of
// the `ack` set with a counter, whose echo (-e) says the whole line was committed.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';

export class NftSessionError extends Error {}

export class NftSession {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly table: string;
  private counter = 0;
  private pending: { id: number; resolve: () => void; reject: (e: Error) => void; errors: string[]; timer: NodeJS.Timeout } | undefined;
  private dead: string | undefined;

  constructor(namespace: string, table: string) {
    this.table = table;
    // stdbuf: nft writes its echo through stdio, which a pipe would otherwise hold back.
    this.child = spawn('ip', ['netns', 'exec', namespace, 'stdbuf', '-oL', '-eL', 'nft', '-e', '-i'], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.unref();
    for (const s of [this.child.stdin, this.child.stdout, this.child.stderr]) (s as unknown as { unref?: () => void }).unref?.();
    this.child.on('error', (e) => this.fail(`nft session failed: ${e.message}`));
    this.child.on('exit', (code, signal) => this.fail(`nft session exited (${signal ?? code})`));
    this.child.stdin.on('error', () => undefined);
    createInterface({ input: this.child.stdout }).on('line', (line) => this.onOut(line));
    createInterface({ input: this.child.stderr }).on('line', (line) => this.onErr(line));
  }

  get alive(): boolean {
    return this.dead === undefined;
  }

  private fail(reason: string): void {
    this.dead ??= reason;
    const p = this.pending;
    this.pending = undefined;
    if (p) {
      clearTimeout(p.timer);
      p.reject(new NftSessionError(reason));
    }
  }

  private onOut(line: string): void {
    const p = this.pending;
    if (p && line.trim() === `add element ip ${this.table} ack { ${p.id} }`) {
      this.pending = undefined;
      clearTimeout(p.timer);
      p.resolve();
    }
  }

  private onErr(line: string): void {
    const p = this.pending;
    if (!p) return;
    p.errors.push(line);
    // nft prints the error, the offending line and a caret: report once all three are in.
    if (p.errors.length === 1) {
      setTimeout(() => {
        if (this.pending !== p) return;
        this.pending = undefined;
        clearTimeout(p.timer);
        p.reject(new Error(`nft rejected the change: ${p.errors.join(' | ')}`));
      }, 20);
    }
  }

  /** Applies the commands as one transaction. Rejects with NftSessionError if the session broke. */
  apply(commands: readonly string[], timeoutMs = 3_000): Promise<void> {
    if (this.dead) return Promise.reject(new NftSessionError(this.dead));
    if (this.pending) return Promise.reject(new Error('nft session: one change at a time'));
    this.counter = (this.counter % 65_000) + 1;
    const id = this.counter;
    const line = [...commands, `flush set ip ${this.table} ack`, `add element ip ${this.table} ack { ${id} }`].join('; ');
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(`nft session: no answer within ${timeoutMs} ms`);
        this.child.kill('SIGKILL');
      }, timeoutMs);
      this.pending = { id, resolve, reject, errors: [], timer };
      this.child.stdin.write(`${line}\n`);
    });
  }

  close(): void {
    this.fail('nft session closed');
    this.child.stdin.end();
    this.child.kill('SIGTERM');
  }
}

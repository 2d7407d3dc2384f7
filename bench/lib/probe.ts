// Starts probe-client.ts inside a network namespace and keeps what it reports.
import { spawn } from 'node:child_process';

export interface ProbeSample {
  /** When the request was sent (epoch ms, sub-ms). */
  sentMs: number;
  ok: boolean;
  detail: string;
}

export interface Probe {
  samples: ProbeSample[];
  stop(): Promise<void>;
}

const CLIENT = new URL('./probe-client.ts', import.meta.url).pathname;

export function startProbe(namespace: string, url: string, periodMs = 20, timeoutMs = 1000): Probe {
  const child = spawn('ip', ['netns', 'exec', namespace, process.execPath, CLIENT, url, String(periodMs), String(timeoutMs)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const samples: ProbeSample[] = [];
  let buf = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    buf += chunk;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const [sent = '0', result = 'fail', detail = ''] = buf.slice(0, nl).split(' ');
      buf = buf.slice(nl + 1);
      samples.push({ sentMs: Number(sent), ok: result === 'ok', detail });
    }
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    samples,
    async stop() {
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Samples sent in [fromMs, toMs), in send order (answers arrive out of order). */
export function sentBetween(samples: readonly ProbeSample[], fromMs: number, toMs: number): ProbeSample[] {
  return samples.filter((s) => s.sentMs >= fromMs && s.sentMs < toMs).sort((a, b) => a.sentMs - b.sentMs);
}

/**
 * The outage a client saw in `samples`: from the first failed send to the first successful
 * send after the last failure (`endMs`: when the client was served again, or the last failure
 * if nothing succeeded after it; undefined when nothing failed). 0 when nothing failed.
 */
export function outageMs(samples: readonly ProbeSample[]): { outageMs: number; failed: number; sent: number; endMs?: number } {
  const sorted = [...samples].sort((a, b) => a.sentMs - b.sentMs);
  const firstFail = sorted.findIndex((s) => !s.ok);
  if (firstFail < 0) return { outageMs: 0, failed: 0, sent: sorted.length };
  let lastFail = firstFail;
  sorted.forEach((s, i) => { if (!s.ok) lastFail = i; });
  const recovered = sorted[lastFail + 1];
  const end = recovered ? recovered.sentMs : sorted[lastFail]!.sentMs;
  return {
    outageMs: end - sorted[firstFail]!.sentMs, failed: sorted.filter((s) => !s.ok).length, sent: sorted.length, endMs: end,
  };
}

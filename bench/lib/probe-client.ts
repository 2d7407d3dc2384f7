// The client of the failover and reload benchmarks, run inside the client namespace
// (`ip netns exec <client> node probe-client.ts <url> <periodMs>`): one request every periodMs
// on a new connection, whatever the previous ones are doing, one line per finished request:
// "<sent epoch ms> <ok|fail> <answer or error>". Sending on a fixed clock, not after the
// previous answer, keeps the resolution at periodMs even while requests time out.
import http from 'node:http';

const [url = '', periodArg = '20', timeoutArg = '1000'] = process.argv.slice(2);
const periodMs = Number(periodArg);
const timeoutMs = Number(timeoutArg);
const now = () => performance.timeOrigin + performance.now();

function send(): void {
  const sent = now();
  let done = false;
  const finish = (ok: boolean, detail: string) => {
    if (done) return;
    done = true;
    process.stdout.write(`${sent.toFixed(1)} ${ok ? 'ok' : 'fail'} ${detail.replace(/\s+/g, '_') || '-'}\n`);
  };
  const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (c: string) => { body += c; });
    res.on('end', () => finish(res.statusCode === 200, res.statusCode === 200 ? body.trim() : `http${res.statusCode}`));
    res.on('error', (e) => finish(false, e.message));
  });
  req.on('timeout', () => { req.destroy(new Error('timeout')); });
  req.on('error', (e: NodeJS.ErrnoException) => finish(false, e.code ?? e.message));
}

setInterval(send, periodMs);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));

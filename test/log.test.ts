import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, readableDestination, readableLine } from '../src/log.ts';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({ write(chunk, _enc, done) { lines.push(String(chunk)); done(); } });
  return { log: createLogger({ level: 'debug' }, stream), lines };
}

const pem = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----';
const token = 'dop_v1_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef';

describe('logs', () => {
  it('redact tokens, keys and Secret data at any depth, and in messages', () => {
    const { log, lines } = capture();
    log.info({
      object: { metadata: { name: 'do-api' }, data: { token } }, request: { headers: { Authorization: `Bearer ${token}` } },
      node: 'web-1', nested: { deeper: { password: 'hunter22' } },
    }, 'read secret');
    log.warn({ err: new Error(`auth failed for ${token}`) }, `connected with key ${pem}`);
    log.debug({ stdin: `printf '%s' ${token} > /etc/keepalived/halb-failover.token` }, 'ran script');
    const out = lines.join('');
    expect(out).not.toContain(token);
    expect(out).not.toContain('b3BlbnNzaC1rZXktdjEAAAAA');
    expect(out).not.toContain('hunter22');
    const first = JSON.parse(lines[0]!);
    expect(first).toMatchObject({ msg: 'read secret', node: 'web-1', object: { metadata: { name: 'do-api' }, data: '[redacted]' } });
    expect(JSON.parse(lines[1]!).msg).toBe('connected with key [redacted]');
  });

  it('keep ordinary fields as they are', () => {
    const { log, lines } = capture();
    log.info({ node: 'web-0', hash: 'sha256:ab', droplets: [1, 2] }, 'applied config');
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 30, msg: 'applied config', node: 'web-0', hash: 'sha256:ab', droplets: [1, 2] });
  });

  it('read as lines for people where a person runs the command, secrets still redacted', () => {
    const out: string[] = [];
    const log = createLogger({ level: 'info' }, readableDestination({ write: (text: string) => out.push(text) }));
    log.warn({ node: 'basic-1', started: ['haproxy'], err: new Error(`refused ${token}`) }, 'restarted stopped daemons');
    expect(out).toHaveLength(1);
    expect(out[0]).toMatch(/^\d\d:\d\d:\d\d warn restarted stopped daemons node=basic-1 started=\["haproxy"\] err=\{.*\[redacted\].*\}\n$/);
    expect(out[0]).not.toContain('{"level"');
    expect(readableLine('not json')).toBe('not json');
  });
});

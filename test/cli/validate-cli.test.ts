import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url).pathname;
// The shipped entry point, run as `npx halb` runs it.
const halb = (...args: string[]) => spawnSync(process.execPath, [`${root}bin/halb.mjs`, ...args], { cwd: root, encoding: 'utf8' });

describe('halb validate', () => {
  it('exits 0 on every example, with files given after one -f as a shell glob leaves them', () => {
    const examples = readdirSync(`${root}examples`).filter((f) => f.endsWith('.yaml')).map((f) => `examples/${f}`);
    const r = halb('validate', '-f', ...examples);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(examples.length);
  });

  it('exits 1 with one line per problem: file, object, field path, reason', () => {
    const r = halb('validate', '-f', 'test/fixtures/invalid/duplicate-ports.yaml', '-f', 'test/fixtures/invalid/tls-on-tcp.yaml');
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([
      'test/fixtures/invalid/duplicate-ports.yaml:2: HALoadBalancer/web: spec.frontends: ' +
        'port 80 is used more than once: every frontend port and TLS port must differ',
      'test/fixtures/invalid/tls-on-tcp.yaml:2: HALoadBalancer/web: spec.frontends[0].tls: TLS termination needs protocol http',
    ]);
  });

  it('never prints a stack trace, whatever the input', () => {
    const r = halb('validate', '-f', 'test/fixtures/invalid/not-yaml.bin', '-f', 'test/fixtures/invalid/alias-bomb.yaml',
      '-f', 'test/fixtures/invalid/syntax-error.yaml', '-f', '/');
    expect(r.status).toBe(1);
    expect(r.stderr).not.toMatch(/^\s+at /m);
    expect(r.stderr).toContain('/: not a regular file');
  });

  it('exits 2 on a usage error', () => {
    expect(halb('validate').status).toBe(2);
    const r = halb('validate', '--frobnicate');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("Unknown option '--frobnicate'");
  });
});

describe('halb', () => {
  it.each(['validate', 'version'])('%s --help prints its usage and exits 0', (command) => {
    const r = halb(command, '--help');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`Usage: halb ${command}`);
  });

  it('prints its version', () => {
    const r = halb('version');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^halb \d+\.\d+\.\d+ \(API halb\.dev\/v1alpha1, node 22\./);
  });

  it('refuses an unknown command', () => {
    const r = halb('frobnicate');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('unknown command "frobnicate"');
  });
});

describe('what the CLI prints back of what was typed', () => {
  it.each([['validate', '--x\u001b[2J\u202e'], ['\u001b[31mred\nhalb: forged']])('is escaped: %j', (...argv) => {
    const r = halb(...argv);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('\\u001b');
    expect(r.stderr).not.toMatch(/[\u001b\u202e]|^halb: forged/m);
  });
});

describe('halb with an unknown command', () => {
  it.each(['constructor', '__proto__', 'frobnicate'])('%s exits 2 with the usage, no stack trace', (name) => {
    const r = halb(name);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`halb: unknown command ${JSON.stringify(name)}`);
    expect(r.stderr).toContain('Usage: halb <command>');
    expect(r.stderr).not.toMatch(/is not a function|^\s+at /m);
  });
});

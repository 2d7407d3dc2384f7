// `halb render`: argument handling, errors, and the files it writes for the seed tutorial.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { renderCommand } from '../../src/cli/render.ts';

const dir = mkdtempSync(join(tmpdir(), 'hrt-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => { out.push(a.join(' ')); });
  const error = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => { err.push(a.join(' ')); });
  try {
    return { code: await renderCommand(argv), out: out.join('\n'), err: err.join('\n') };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

describe('halb render', () => {
  it('prints help and refuses missing arguments', async () => {
    expect((await run(['--help']))).toMatchObject({ code: 0, out: expect.stringContaining('Usage: halb render -f FILE') });
    expect(await run(['--out', dir])).toMatchObject({ code: 2, err: expect.stringContaining('at least one -f FILE is required') });
    expect(await run(['-f', 'examples/basic.yaml'])).toMatchObject({ code: 2, err: expect.stringContaining('--out DIR is required') });
    expect(await run(['-f', 'examples/basic.yaml', '--bogus'])).toMatchObject({ code: 2 });
  });

  it('reports invalid manifests and facts files by name', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'apiVersion: halb.dev/v1alpha1\nkind: HALoadBalancer\nmetadata: {name: x}\nspec: {region: nyc3}\n');
    expect(await run(['-f', bad, '--out', join(dir, 'o1')])).toMatchObject({ code: 1, err: expect.stringContaining(bad) });
    const facts = join(dir, 'facts.json');
    writeFileSync(facts, '{"floatingIP": "198.51.100.5", "nodes": [{"name": "basic-0"}]}');
    expect(await run(['-f', 'examples/basic.yaml', '--out', join(dir, 'o2'), '--observed', facts]))
      .toMatchObject({ code: 1, err: expect.stringContaining(`${facts}: nodes[0].privateIPv4`) });
    writeFileSync(facts,
      '{"floatingIP": "198.51.100.5", "nodes": [{"name": "basic-0", "privateIPv4": "10.0.0.1", "anchorIPv4": "10.1.0.1"}]}');
    expect(await run(['-f', 'examples/basic.yaml', '--out', join(dir, 'o3'), '--observed', facts]))
      .toMatchObject({ code: 1, err: expect.stringContaining('observed.nodes[basic-1]') });
    expect(await run(['-f', 'examples/basic.yaml', '--out', join(dir, 'o4'), '--keepalived-version', '1.3.5']))
      .toMatchObject({ code: 1, err: expect.stringContaining('settings.defaultVersions.keepalived') });
    expect(await run(['-f', 'examples/basic.yaml', '--out', join(dir, 'o5'), '--do-endpoint', "http://x/'y"]))
      .toMatchObject({ code: 1, err: expect.stringContaining('settings.apiBaseURL') });
  });

  it('writes the seed tutorial\'s files laid out as on the host, with every feature present', async () => {
    const out = join(dir, 'seed');
    const facts = join(dir, 'seed-facts.json');
    writeFileSync(facts, JSON.stringify({ floatingIP: '198.51.100.20', nodes: [
      { name: 'seed-0', dropletID: 11, publicIPv4: '203.0.113.21', privateIPv4: '10.116.0.2', anchorIPv4: '10.17.0.5' },
      { name: 'seed-1', dropletID: 12, publicIPv4: '203.0.113.22', privateIPv4: '10.116.0.3', anchorIPv4: '10.17.0.6' },
    ] }));
    const result = await run([
      '-f', 'examples/seed-tutorial.yaml', '--out', out, '--observed', facts, '--do-endpoint', 'http://10.9.0.1:8080',
    ]);
    expect(result.code, result.err).toBe(0);
    expect(result.out).toMatch(/^seed-0\tsha256:[0-9a-f]{64}\t/m);
    expect(result.out).toMatch(/^seed-1\tsha256:[0-9a-f]{64}\t/m);
    const mode = (p: string) => (statSync(join(out, 'seed-1', p)).mode & 0o777).toString(8);
    expect(mode('etc/haproxy/haproxy.cfg')).toBe('644');
    expect(mode('etc/haproxy/certs/www.pem')).toBe('600');
    expect(mode('etc/keepalived/keepalived.conf')).toBe('600');
    expect(mode('etc/keepalived/halb-failover.token')).toBe('600');
    expect(mode('etc/keepalived/halb-failover.sh')).toBe('755');
    expect(mode('etc/keepalived/halb-notify.sh')).toBe('755');
    const read = (p: string) => readFileSync(join(out, 'seed-1', p), 'utf8');
    const haproxy = read('etc/haproxy/haproxy.cfg');
    for (const text of [
      'bind 10.17.0.6:80', 'bind 10.17.0.6:443 ssl crt /etc/haproxy/certs/www.pem', 'redirect scheme https',
      'use_backend api if { path_beg /api/ }',
      'default_backend web', 'balance roundrobin', 'default-server check inter 2s rise 2 fall 3 maxconn 20', 'server server1 10.10.0.21:80',
      'bind 10.116.0.3:8404',
    ]) {
      expect(haproxy).toContain(text);
    }
    const keepalived = read('etc/keepalived/keepalived.conf');
    for (const text of [
      'unicast_src_ip 10.116.0.3', 'unicast_peer {\n        10.116.0.2\n    }', 'priority 190', 'auth_type PASS', 'auth_pass ChangeMe',
      'version 2', 'advert_int 1', 'no_virtual_ipaddress',
    ]) {
      expect(keepalived).toContain(text);
    }
    const failover = read('etc/keepalived/halb-failover.sh');
    expect(failover).toContain("API_BASE='http://10.9.0.1:8080'");
    expect(failover).toContain("RESERVED_IP='198.51.100.20'");
    expect(read('etc/keepalived/halb-failover.token')).toBe('REPLACE_WITH_A_RESERVED_IP_SCOPED_TOKEN\n');
  });

  it('renders without facts using placeholder addresses, and warns about a missing token Secret', async () => {
    const out = join(dir, 'basic');
    const result = await run(['-f', 'examples/basic.yaml', '--out', out]);
    expect(result.code).toBe(0);
    expect(result.err).toContain('Secret do-api (key token) is not in the files');
    const haproxy = readFileSync(join(out, 'basic-0/etc/haproxy/haproxy.cfg'), 'utf8');
    expect(haproxy).toContain('bind 10.20.0.11:80');
    expect(readFileSync(join(out, 'basic-0/etc/keepalived/halb-failover.sh'), 'utf8')).toContain("RESERVED_IP='198.51.100.10'");
  });
});

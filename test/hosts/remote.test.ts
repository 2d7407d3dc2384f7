// The agent's host programs, run with sh against a scratch directory and the real HAProxy and
// keepalived validators (`haproxy -c`, `keepalived -t`); nothing is started.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_DAEMON_PATHS, parseLogs, parseMarked, parsePairs, parseVersion, readLogsScript, readStateScript, shQuote,
  stageValidateSwapScript, withStagedPaths,
  writePriorityOffsetScript, type DaemonPaths,
} from '../../src/hosts/remote.ts';

const root = mkdtempSync(join(tmpdir(), 'halb-remote-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const paths: DaemonPaths = {
  ...DEFAULT_DAEMON_PATHS,
  haproxyConfig: join(root, 'etc/haproxy/haproxy.cfg'),
  keepalivedConfig: join(root, 'etc/keepalived/keepalived.conf'),
  hashFile: join(root, 'etc/halb/config-hash'),
  firewall: join(root, 'etc/halb/firewall.nft'),
  sshdConfig: join(root, 'etc/ssh/sshd_config.d/00-halb.conf'),
  authorizedKeys: join(root, 'root/.ssh/authorized_keys'),
  sshdReloadMarker: join(root, 'run/halb/sshd-changed'),
  priorityOffset: join(root, 'etc/halb/priority-offset'),
  failoverLog: join(root, 'var/log/halb-failover.log'),
  haproxyLogFile: join(root, 'var/log/haproxy.log'),
};

const haproxyCfg = (port: number) => 'global\n  maxconn 100\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n' +
  `  timeout server 30s\nfrontend www\n  bind 127.0.0.1:${port}\n  default_backend web\nbackend web\n  server s1 127.0.0.1:9 check\n`;
// keepalived -t wants an interface that exists and is not loopback; it only reads it.
const iface = readdirSync('/sys/class/net').find((n) => n !== 'lo') ?? 'eth0';
const keepalivedCfg = 'global_defs {\n  enable_script_security\n  script_user root\n}\n' +
  `vrrp_instance VI_1 {\n  state BACKUP\n  interface ${iface}\n  virtual_router_id 51\n  priority 100\n  advert_int 1\n` +
  '  virtual_ipaddress {\n    192.0.0.8/32\n  }\n}\n';

function run(script: string) {
  return spawnSync('sh', ['-s'], { input: script, encoding: 'utf8' });
}

describe('stageValidateSwapScript', () => {
  it('writes files with their modes and the hash when both daemons accept the configs', () => {
    const files = [
      { path: paths.haproxyConfig, mode: 0o644, content: haproxyCfg(18080) },
      { path: paths.keepalivedConfig, mode: 0o644, content: keepalivedCfg },
      { path: join(root, 'etc/haproxy/certs/www.pem'), mode: 0o600, content: "secret 'quoted' $(not run) `nor this`\n" },
    ];
    const r = run(stageValidateSwapScript(files, 'sha256:one', paths));
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(parseMarked(r.stdout).has('swapped')).toBe(true);
    expect(readFileSync(paths.haproxyConfig, 'utf8')).toBe(haproxyCfg(18080));
    expect(readFileSync(files[2]!.path, 'utf8')).toBe(files[2]!.content);
    expect(statSync(files[2]!.path).mode & 0o777).toBe(0o600);
    expect(readFileSync(paths.hashFile, 'utf8').trim()).toBe('sha256:one');
  });

  it('keeps the running config and reports the daemon message when validation fails', () => {
    const broken = haproxyCfg(18081).replace('default_backend web', 'default_backend nowhere');
    const r = run(stageValidateSwapScript([
      { path: paths.haproxyConfig, mode: 0o644, content: broken },
      { path: paths.keepalivedConfig, mode: 0o644, content: keepalivedCfg },
    ], 'sha256:two', paths));
    expect(r.status).toBe(3);
    expect(parseMarked(r.stdout).get('invalid')).toBe('haproxy');
    expect(r.stdout).toMatch(/nowhere/);
    expect(readFileSync(paths.haproxyConfig, 'utf8')).toBe(haproxyCfg(18080));
    expect(readFileSync(paths.hashFile, 'utf8').trim()).toBe('sha256:one');
    expect(readdirSync(join(root, 'etc/haproxy')).filter((f) => f.endsWith('.halb-new'))).toEqual([]);
  });

  it('refuses a keepalived config keepalived rejects', () => {
    const r = run(stageValidateSwapScript([
      { path: paths.keepalivedConfig, mode: 0o644, content: keepalivedCfg.replace('virtual_router_id 51', 'virtual_router_id 999') },
    ], 'sha256:three', paths));
    expect(r.status).toBe(3);
    expect(parseMarked(r.stdout).get('invalid')).toBe('keepalived');
    expect(readFileSync(paths.keepalivedConfig, 'utf8')).toBe(keepalivedCfg);
  });

  // Checked before anything is swapped in: a valid haproxy.cfg in the same batch stays staged.
  it.each([
    ['nft', 'firewall',
      'table inet halb {\n  chain input {\n    type filter hook input priority filter; policy drop;\n' +
        '    tcp dport 22 ip saddr 203.0.113.0/33 accept\n  }\n}\n'],
    ['sshd', 'sshdConfig', 'PasswordAuthentication maybe\n'],
    ['authorized_keys', 'authorizedKeys', 'not a key\n'],
  ] as const)('refuses what %s refuses, before swapping anything', (tool, key, content) => {
    const r = run(stageValidateSwapScript([
      { path: paths.haproxyConfig, mode: 0o644, content: haproxyCfg(18082) },
      { path: paths[key], mode: 0o600, content },
    ], 'sha256:four', paths));
    expect(r.status).toBe(3);
    expect(parseMarked(r.stdout).get('invalid')).toBe(tool);
    expect(readFileSync(paths.haproxyConfig, 'utf8')).toBe(haproxyCfg(18080));
    expect(() => statSync(paths[key])).toThrow();
  });

  // Each check forks its daemon: a file byte for byte the one in place (checked when it went in) is not checked again.
  it.each([
    ['nft', 'firewall', 'table inet halb {\n  chain input {\n    tcp dport 22 ip saddr 203.0.113.0/33 accept\n  }\n}\n'],
    ['sshd', 'sshdConfig', 'PasswordAuthentication maybe\n'],
    ['authorized_keys', 'authorizedKeys', 'not a key\n'],
  ] as const)('checks with %s only a file that changed', (tool, key, refused) => {
    mkdirSync(dirname(paths[key]), { recursive: true });
    // In place by other means (the tool would refuse it): the same bytes again pass unchecked.
    writeFileSync(paths[key], refused);
    const same = run(stageValidateSwapScript([{ path: paths[key], mode: 0o600, content: refused }], 'sha256:same', paths));
    expect(same.stdout).toContain('halb:swapped');
    const other = run(stageValidateSwapScript([{ path: paths[key], mode: 0o600, content: `${refused}# changed\n` }], 'sha256:x', paths));
    expect(parseMarked(other.stdout).get('invalid')).toBe(tool);
    rmSync(paths[key]);
  });

  it('swaps in a firewall nft accepts, an sshd drop-in sshd accepts and a valid authorized_keys', () => {
    const key = spawnSync('sh', ['-c', `ssh-keygen -q -t ed25519 -N '' -f ${join(root, 'k')} && cat ${join(root, 'k.pub')}`], {
      encoding: 'utf8',
    }).stdout;
    const files = [
      {
        path: paths.firewall, mode: 0o644,
        content: 'table inet halb\ndelete table inet halb\ntable inet halb {\n  chain input {\n' +
          '    type filter hook input priority filter; policy drop;\n    tcp dport 22 ip saddr 203.0.113.0/24 accept\n  }\n}\n',
      },
      { path: paths.sshdConfig, mode: 0o644, content: 'PasswordAuthentication no\n' },
      { path: paths.authorizedKeys, mode: 0o600, content: key },
    ];
    const r = run(stageValidateSwapScript(files, 'sha256:five', paths));
    expect(r.stdout + r.stderr).toContain('halb:swapped');
    for (const f of files) expect(readFileSync(f.path, 'utf8')).toBe(f.content);
    // A changed sshd drop-in leaves the marker that makes the reload step reload sshd; the same
    // drop-in again does not (a reload briefly closes sshd's listener).
    expect(statSync(paths.sshdReloadMarker).isFile()).toBe(true);
    rmSync(paths.sshdReloadMarker);
    expect(run(stageValidateSwapScript(files, 'sha256:six', paths)).stdout).toContain('halb:swapped');
    expect(() => statSync(paths.sshdReloadMarker)).toThrow();
  });

  // A certificate HAProxy refuses (a 1024-bit RSA key, below OpenSSL 3's default security
  // level) must not replace the working one: haproxy -c checks a twin of the staged config that
  // loads the staged PEM, and nothing moves until every check passed.
  it('keeps the working certificate in place when HAProxy refuses the new one', () => {
    const tls = (name: string) => readFileSync(new URL(`../fixtures/tls/${name}`, import.meta.url), 'utf8');
    const pem = join(root, 'etc/haproxy/certs/tls.pem');
    const withTLS = `${haproxyCfg(18083)}frontend tls\n  bind 127.0.0.1:18443 ssl crt ${pem}\n  default_backend web\n`;
    const batch = (cert: string, key: string, hash: string) => stageValidateSwapScript([
      { path: paths.haproxyConfig, mode: 0o644, content: withTLS },
      { path: paths.keepalivedConfig, mode: 0o644, content: keepalivedCfg },
      { path: pem, mode: 0o600, content: `${tls(cert)}${tls(key)}` },
      { path: join(root, 'etc/keepalived/halb-failover.token'), mode: 0o600, content: `${hash}\n` },
    ], hash, paths);
    const good = run(batch('rsa2048.crt', 'rsa2048.key', 'sha256:tls-good'));
    expect(good.stdout + good.stderr).toContain('halb:swapped');
    const before = readFileSync(pem, 'utf8');

    const refused = run(batch('rsa1024.crt', 'rsa1024.key', 'sha256:tls-weak'));
    expect(refused.status).toBe(3);
    expect(parseMarked(refused.stdout).get('invalid')).toBe('haproxy');
    expect(refused.stdout).toContain('tls.pem.halb-new');
    // Nothing of the refused batch is in place: the certificate, the token and the hash are the old ones.
    expect(readFileSync(pem, 'utf8')).toBe(before);
    expect(readFileSync(join(root, 'etc/keepalived/halb-failover.token'), 'utf8')).toBe('sha256:tls-good\n');
    expect(readFileSync(paths.hashFile, 'utf8').trim()).toBe('sha256:tls-good');
    expect(spawnSync('haproxy', ['-c', '-f', paths.haproxyConfig]).status).toBe(0); // the next start still works
    for (const sub of ['etc/haproxy', 'etc/haproxy/certs', 'etc/keepalived']) {
      expect(readdirSync(join(root, sub)).filter((f) => /\.halb-(new|check|old)$/.test(f))).toEqual([]);
    }
  });

  it('points the checked twin of a config at the staged files, whole paths only', () => {
    const files = [
      { path: '/etc/haproxy/certs/www.pem', mode: 0o600, content: '' }, { path: '/etc/keepalived/halb-check.sh', mode: 0o755, content: '' },
    ];
    expect(withStagedPaths(
      'bind :443 ssl crt /etc/haproxy/certs/www.pem alpn h2\nx /etc/haproxy/certs/www.pem2 /etc/haproxy/certs/www.pem.bak',
      '/etc/haproxy/haproxy.cfg', files))
      .toBe('bind :443 ssl crt /etc/haproxy/certs/www.pem.halb-new alpn h2\nx /etc/haproxy/certs/www.pem2 /etc/haproxy/certs/www.pem.bak');
    expect(withStagedPaths('script "/etc/keepalived/halb-check.sh"', '/etc/keepalived/keepalived.conf', files))
      .toBe('script "/etc/keepalived/halb-check.sh.halb-new"');
  });

  it('refuses paths that are not plain absolute paths', () => {
    expect(() => stageValidateSwapScript([{ path: '/etc/x; rm -rf /', mode: 0o600, content: '' }], 'h', paths))
      .toThrow(/plain absolute path/);
    expect(() => stageValidateSwapScript([{ path: '/etc/../root/x', mode: 0o600, content: '' }], 'h', paths))
      .toThrow(/plain absolute path/);
  });
});

// Newer daemons print what the read must still understand: OpenSSH 10.6+ prints `sshd -T` names
// in mixed case (D1), keepalived 2.3 prints a notice before its version line (D3). The real read
// script runs with stand-ins for sshd and keepalived bound over the real ones, in private mount
// and network namespaces (the metadata reads fail at once there).
describe('readStateScript on newer daemons', () => {
  function readWith(sshdOutput: string, keepalivedOutput: string): Map<string, string> {
    const dir = mkdtempSync(join(root, 'newer-'));
    const standIn = (name: string, output: string) => {
      writeFileSync(join(dir, name), `#!/bin/sh\nprintf '%s' ${shQuote(output)}\n`);
      chmodSync(join(dir, name), 0o755);
      return join(dir, name);
    };
    const keepalived = spawnSync('sh', ['-c', 'command -v keepalived'], { encoding: 'utf8' }).stdout.trim();
    const binds = `mount --bind ${standIn('sshd', sshdOutput)} /usr/sbin/sshd && ` +
      `mount --bind ${standIn('keepalived', keepalivedOutput)} ${keepalived}`;
    const r = spawnSync('unshare', ['--net', '--mount', '--propagation', 'private', 'sh', '-c', `${binds} && sh -s`], {
      input: readStateScript(paths, 'http://127.0.0.1:9'), encoding: 'utf8',
      // As sshd sets it for the session the script runs in.
      env: { ...process.env, SSH_CONNECTION: '203.0.113.253 40000 203.0.113.10 22' },
    });
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    return parseMarked(r.stdout);
  }

  it('reads sshd settings printed in mixed case with lower-case names', () => {
    const m = readWith(
      'Port 22\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nUsePAM yes\n',
      'Keepalived v2.2.7\n');
    expect(parsePairs(m.get('sshd')))
      .toEqual({ passwordauthentication: 'yes', kbdinteractiveauthentication: 'no', permitrootlogin: 'prohibit-password' });
  });

  it('reads the keepalived version after a notice line', () => {
    const m = readWith('passwordauthentication no\n',
      'Unable to read build config options file\nKeepalived v2.3.3 (03/30,2025)\n\nCopyright(C) 2001-2025 Alexandre Cassen\n');
    expect(parseVersion(m.get('keepalived-version'))).toBe('2.3.3');
  });
});

describe('the priority offset and the logs', () => {
  it('writes the offset whole and reads it back; refuses what keepalived would not take', () => {
    const r = run(writePriorityOffsetScript(-253, paths));
    expect(r.status).toBe(0);
    expect(parseMarked(r.stdout).get('priority-offset')).toBe('-253');
    expect(readFileSync(paths.priorityOffset, 'utf8')).toBe('-253\n');
    expect(() => writePriorityOffsetScript(-255, paths)).toThrow(/-254 to 254/);
    expect(() => writePriorityOffsetScript(1.5, paths)).toThrow(/whole number/);
  });

  it('prints the failover log and HAProxy\'s, each after its marker', () => {
    run(`mkdir -p ${shQuote(join(root, 'var/log'))} && printf 'a\\nb\\nc\\n' > ${shQuote(paths.failoverLog)} && ` +
      `printf 'h1\\n' > ${shQuote(paths.haproxyLogFile)}`);
    const logs = parseLogs(run(readLogsScript(2, paths)).stdout);
    expect(logs).toEqual([
      { name: 'failover', source: paths.failoverLog, lines: ['b', 'c'] },
      { name: 'haproxy', source: paths.haproxyLogFile, lines: ['h1'] },
    ]);
  });
});

describe('helpers', () => {
  it.each([
    ['Keepalived v2.2.7 (01/16,2022)', '2.2.7'],
    ['HAProxy version 2.6.12-1+deb12u1 2023/12/16 - https://haproxy.org/', '2.6.12'],
    ['HA-Proxy version 2.8.16-0ubuntu0.24.04.1 2025/06/25', '2.8.16'],
    [undefined, undefined],
  ])('parseVersion(%j) = %j', (line, version) => {
    expect(parseVersion(line)).toBe(version);
  });

  it('shQuote survives a round trip through sh', () => {
    const nasty = `it's "x" $HOME \`id\` \\ ;|&`;
    expect(spawnSync('sh', ['-c', `printf '%s' ${shQuote(nasty)}`], { encoding: 'utf8' }).stdout).toBe(nasty);
  });

  it('parsePairs reads backend/server=STATUS pairs', () => {
    expect(parsePairs('web/s1=UP,web/s2=DOWN,api/a=MAINT,')).toEqual({ 'web/s1': 'UP', 'web/s2': 'DOWN', 'api/a': 'MAINT' });
    expect(parsePairs('')).toBeUndefined();
  });

  it('parseMarked reads only marked lines', () => {
    expect([...parseMarked('noise\nhalb:vrrp MASTER\nhalb:hash sha256:x\nhalb:swapped\n')])
      .toEqual([['vrrp', 'MASTER'], ['hash', 'sha256:x'], ['swapped', '']]);
  });
});


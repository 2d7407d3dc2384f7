// Pure decision logic: error typing, scopes, backoff, pacing, the rolling window, tag scheme,
// address pools, metadata paths.
import { describe, expect, it } from 'vitest';
import { classifyError, requiredScope } from '../../src/digitalocean/errors.ts';
import type { HttpErrorLike } from '../../src/digitalocean/errors.ts';
import { backoffDelay } from '../../src/backoff.ts';
import { RateLimitPacer, parseRetryAfter } from '../../src/digitalocean/pacing.ts';
import { COMMON_TAG, dropletTags, hostKeyTag, nodeName, parseHostKeyTag, parseNodeTags, uidTag } from '../../src/digitalocean/naming.ts';
import { nextPage, toNodeDroplet } from '../../src/digitalocean/droplets.ts';
import { desiredFirewall, firewallMatches } from '../../src/digitalocean/firewalls.ts';
import { cloudInit, newHostKey } from '../../src/digitalocean/cloud-init.ts';
import { parse as parseYaml } from 'yaml';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AddressPool } from '../../src/sandbox/digitalocean/addresses.ts';
import { RollingRateLimiter } from '../../src/sandbox/digitalocean/ratelimit.ts';
import { metadataResponse } from '../../src/sandbox/digitalocean/metadata.ts';

const axiosError = (method: string, url: string, status?: number, body?: unknown, code?: string): HttpErrorLike => ({
  isAxiosError: true,
  ...(code ? { code } : {}),
  config: { method, url },
  ...(status === undefined ? {} : { response: { status, data: body ?? {}, headers: {} } }),
});

describe('classifyError', () => {
  const cases: { name: string; err: HttpErrorLike; kind: 'transient' | 'terminal'; scope?: string; message: RegExp }[] = [
    {
      name: '429', err: axiosError('get', '/droplets', 429, { id: 'too_many_requests', message: 'API Rate limit exceeded.' }),
      kind: 'transient', message: /GET \/droplets failed \(429\)/,
    },
    { name: '500', err: axiosError('get', '/account', 500), kind: 'transient', message: /\(500\)/ },
    { name: '503', err: axiosError('post', '/reserved_ips/198.51.100.10/actions', 503), kind: 'transient', message: /\(503\)/ },
    { name: 'timeout', err: axiosError('get', '/droplets', undefined, undefined, 'ECONNABORTED'), kind: 'transient', message: /timed out/ },
    { name: 'reset', err: axiosError('get', '/droplets', undefined, undefined, 'ECONNRESET'), kind: 'transient', message: /ECONNRESET/ },
    {
      name: '422 pending',
      err: axiosError('post', '/reserved_ips/1.2.3.4/actions', 422, {
        id: 'unprocessable_entity', message: 'The reserved IP already has a pending event.',
      }),
      kind: 'transient', message: /must wait/,
    },
    {
      name: '422 validation',
      err: axiosError('post', '/droplets', 422, { id: 'unprocessable_entity', message: 'You specified an invalid name' }),
      kind: 'terminal', message: /invalid name/,
    },
    {
      name: '404',
      err: axiosError('get', '/droplets/1', 404, { id: 'not_found', message: 'The resource you were accessing could not be found.' }),
      kind: 'terminal', message: /\(404\)/,
    },
    {
      name: '401', err: axiosError('get', '/droplets', 401, { id: 'unauthorized', message: 'Unable to authenticate you.' }),
      kind: 'terminal', message: /token is missing, invalid or revoked/,
    },
    {
      name: '403 reserved IP assign', err: axiosError('post', '/reserved_ips/1.2.3.4/actions', 403, { id: 'forbidden', message: 'no' }),
      kind: 'terminal', scope: 'reserved_ip:update', message: /lacks the "reserved_ip:update" scope/,
    },
    {
      name: '403 droplet create', err: axiosError('post', '/droplets', 403), kind: 'terminal', scope: 'droplet:create',
      message: /"droplet:create"/,
    },
    {
      name: '403 list by tag', err: axiosError('get', '/droplets?tag_name=halb', 403), kind: 'terminal', scope: 'droplet:read',
      message: /"droplet:read"/,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const e = classifyError(c.err);
      expect(e.kind).toBe(c.kind);
      expect(e.details.scope).toBe(c.scope);
      expect(e.message).toMatch(c.message);
    });
  }

  it('maps absolute and relative paths to scopes', () => {
    expect(requiredScope('GET', 'http://127.0.0.1:1/v2/reserved_ips/1.2.3.4')).toBe('reserved_ip:read');
    expect(requiredScope('DELETE', '/droplets/5')).toBe('droplet:delete');
    expect(requiredScope('PATCH', '/droplets/5')).toBeUndefined();
  });
});

describe('backoff and retry-after', () => {
  it('grows exponentially, is capped, and jitters over the whole range', () => {
    const s = { baseMs: 100, maxMs: 1000 };
    expect([0, 1, 2, 3, 4, 10].map((a) => backoffDelay(a, s, () => 1))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(backoffDelay(3, s, () => 0)).toBe(0);
    expect(backoffDelay(3, s, () => 0.5)).toBe(400);
  });
  it('parses seconds and HTTP dates', () => {
    expect(parseRetryAfter('3', 0)).toBe(3000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4000)).toBe(6000);
    expect(parseRetryAfter(undefined, 0)).toBeUndefined();
    expect(parseRetryAfter('soon', 0)).toBeUndefined();
  });
});

describe('RateLimitPacer', () => {
  it('sends one probe while the budget is unknown, then spends the budget, then waits for the reset', () => {
    const p = new RateLimitPacer({ reserve: 1, marginMs: 0 });
    expect(p.reserveSlot(0)).toBe(0); // probe
    expect(p.reserveSlot(0)).toBeGreaterThan(0); // waits for the probe's answer
    p.finished({ 'ratelimit-remaining': '3', 'ratelimit-reset': '10' });
    expect(p.reserveSlot(0)).toBe(0);
    expect(p.reserveSlot(0)).toBe(0);
    expect(p.reserveSlot(0)).toBe(10_000); // 3 - 2 sent = 1 = the reserve
    expect(p.reserveSlot(10_000)).toBe(0); // reset passed: one probe
    expect(p.reserveSlot(10_000)).toBeGreaterThan(0);
  });
  it('keeps the burst limit itself, since the headers do not report it', () => {
    const p = new RateLimitPacer({ reserve: 0, marginMs: 0, burst: { limit: 2, windowMs: 1000 } });
    p.finished({ 'ratelimit-remaining': '100', 'ratelimit-reset': '3600' });
    expect(p.reserveSlot(0)).toBe(0);
    expect(p.reserveSlot(10)).toBe(0);
    expect(p.reserveSlot(20)).toBe(981);
    expect(p.reserveSlot(1001)).toBe(0);
    const margin = new RateLimitPacer({ reserve: 0, marginMs: 100, burst: { limit: 1, windowMs: 1000 } });
    margin.finished({ 'ratelimit-remaining': '100', 'ratelimit-reset': '3600' });
    expect(margin.reserveSlot(0)).toBe(0);
    expect(margin.reserveSlot(1000)).toBe(101); // a margin for the trip to the server
  });
  it('holds everything after a 429 with retry-after', () => {
    const p = new RateLimitPacer({ reserve: 0, marginMs: 0 });
    p.finished({ 'ratelimit-remaining': '100', 'ratelimit-reset': '1' });
    p.pauseUntil(5000);
    expect(p.reserveSlot(1000)).toBe(4000);
    expect(p.reserveSlot(5000)).toBe(0);
    expect(p.reserveSlot(5000)).toBe(0); // the hourly budget still stands
  });
});

describe('RollingRateLimiter', () => {
  it('refuses past the limit of each window, reports the hourly window, and frees slots as they age out', () => {
    const l = new RollingRateLimiter([
      { limit: 5, windowMs: 10_000 },
      { limit: 2, windowMs: 1000 },
    ]);
    expect(l.take(0)).toMatchObject({
      allowed: true, headers: { 'ratelimit-remaining': '4', 'ratelimit-limit': '5', 'ratelimit-reset': '10' },
    });
    expect(l.take(100).allowed).toBe(true);
    // The burst window refuses: the headers still describe the hourly one; retry-after says when.
    expect(l.take(200)).toMatchObject({ allowed: false, retryAfterSeconds: 1, headers: { 'ratelimit-remaining': '3' } });
    expect(l.take(1000)).toMatchObject({ allowed: true, headers: { 'ratelimit-remaining': '2' } }); // 0 left the 1 s window
    expect(l.take(1150).allowed).toBe(true);
    expect(l.take(2100)).toMatchObject({ allowed: true, headers: { 'ratelimit-remaining': '0' } });
    const hourly = l.take(3200);
    expect(hourly).toMatchObject({ allowed: false, headers: { 'ratelimit-remaining': '0', 'ratelimit-reset': '10' } });
    expect(hourly.retryAfterSeconds).toBeUndefined(); // the hourly window: no retry-after
    expect(l.take(10_000).allowed).toBe(true); // the request at 0 left the hour
  });
  it('measures the most requests in any window', () => {
    expect(RollingRateLimiter.maxInAnyWindow([0, 10, 20, 1000, 1005, 1010, 1020], 100)).toBe(4);
    expect(RollingRateLimiter.maxInAnyWindow([], 100)).toBe(0);
  });
  it('rejects bad windows', () => {
    expect(() => new RollingRateLimiter([])).toThrow(/at least one window/);
    expect(() => new RollingRateLimiter([{ limit: 0, windowMs: 1 }])).toThrow(/invalid rate-limit window/);
  });
});

describe('tag scheme', () => {
  it('tags, names and parses nodes', () => {
    const uid = '6a1f0c3e-0d6b-4b8e-9d2c-1f2e3d4c5b6a';
    expect(dropletTags(uid, 1, ['env:prod'])).toEqual([COMMON_TAG, `halb-uid-${uid}`, 'halb-node-1', 'env:prod']);
    expect(nodeName('web', 1)).toBe('web-1');
    expect(parseNodeTags(dropletTags(uid, 3))).toEqual({ uid, index: 3 });
  });
  const invalid: [string, string[], RegExp][] = [
    ['bad extra tag', ['a b'], /spec\.droplets\.tags: "a b" is not a valid/],
    ['reserved extra tag', ['halb-node-9'], /reserved for halb/],
    ['reserved host key tag', ['halb-hostkey-00'], /reserved for halb/],
  ];
  for (const [name, extra, message] of invalid) it(name, () => expect(() => dropletTags('u', 0, extra)).toThrow(message));
  it('ignores droplets that are not complete halb nodes', () => {
    expect(parseNodeTags(['halb-uid-x', 'halb-node-0'])).toBeUndefined();
    expect(parseNodeTags(['halb', 'halb-uid-x'])).toBeUndefined();
    expect(parseNodeTags(['halb', 'halb-uid-x', 'halb-uid-y', 'halb-node-0'])).toBeUndefined();
    expect(() => uidTag('has space')).toThrow(/cannot be put in a DigitalOcean tag/);
  });
});

describe('host key pin', () => {
  it('is a tag that gives the fingerprint back, set with the node tags', () => {
    const key = newHostKey('web-0');
    const tags = dropletTags('u', 0, ['env:prod'], key.fingerprint);
    expect(tags).toContain(hostKeyTag(key.fingerprint));
    expect(hostKeyTag(key.fingerprint)).toMatch(/^halb-hostkey-[0-9a-f]{64}$/);
    expect(parseHostKeyTag(tags)).toBe(key.fingerprint);
    expect(toNodeDroplet({ id: 1, name: 'web-0', status: 'new', tags, created_at: '', region: 'nyc3', networks: { v4: [] } })?.hostKeyPin)
      .toBe(key.fingerprint);
  });

  it('reads no pin from no tag, two tags or a malformed one', () => {
    expect(parseHostKeyTag(dropletTags('u', 0))).toBeUndefined();
    expect(parseHostKeyTag([`halb-hostkey-${'a'.repeat(64)}`, `halb-hostkey-${'b'.repeat(64)}`])).toBeUndefined();
    expect(parseHostKeyTag(['halb-hostkey-xyz'])).toBeUndefined();
    expect(() => hostKeyTag('MD5:aa:bb')).toThrow(/not an OpenSSH SHA256 fingerprint/);
  });

  // The key the operator makes is one OpenSSH loads, and its fingerprint is the one ssh-keygen prints.
  it('makes an ed25519 key OpenSSH reads, with the fingerprint ssh-keygen prints', () => {
    const key = newHostKey('web-0');
    const dir = mkdtempSync(join(tmpdir(), 'halb-hostkey-'));
    try {
      writeFileSync(join(dir, 'key'), key.privateKey, { mode: 0o600 });
      const publicKey = execFileSync('ssh-keygen', ['-y', '-f', join(dir, 'key')], { encoding: 'utf8' });
      expect(publicKey.trim().split(' ').slice(0, 2)).toEqual(key.publicKey.split(' ').slice(0, 2));
      const fingerprint = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', join(dir, 'key')], { encoding: 'utf8' });
      expect(fingerprint.split(' ')[1]).toBe(key.fingerprint);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('goes to cloud-init as ssh_keys, replacing the keys the image would make', () => {
    const key = newHostKey('web-0');
    const doc = parseYaml(cloudInit({ objectName: 'web', nodeName: 'web-0', hostKey: key })) as Record<string, unknown>;
    expect(doc.ssh_keys).toEqual({ ed25519_private: key.privateKey, ed25519_public: key.publicKey });
    expect(doc.ssh_deletekeys).toBe(true);
    expect(parseYaml(cloudInit({ objectName: 'web', nodeName: 'web-0' })).ssh_keys).toBeUndefined();
  });
});

describe('droplet reading', () => {
  it('tells the own public address from a reserved IP and reads the private one', () => {
    const d = {
      id: 1,
      name: 'web-0',
      status: 'active',
      tags: dropletTags('u', 0),
      created_at: '2026-01-01T00:00:00Z',
      region: { slug: 'nyc3' },
      networks: {
        v4: [
          { ip_address: '10.10.0.11', type: 'private' },
          { ip_address: '198.51.100.10', type: 'public' },
          { ip_address: '203.0.113.10', type: 'public' },
        ],
      },
    };
    expect(toNodeDroplet(d, new Set(['198.51.100.10']))).toMatchObject({
      publicIPv4: '203.0.113.10', privateIPv4: '10.10.0.11', index: 0, uid: 'u', region: 'nyc3',
    });
  });
  it('follows next links by page number', () => {
    expect(nextPage({ pages: { next: 'https://api.digitalocean.com/v2/droplets?page=3&per_page=200' } })).toBe(3);
    expect(nextPage({ pages: {} })).toBeUndefined();
    expect(nextPage(undefined)).toBeUndefined();
  });
});

describe('firewall comparison', () => {
  it('ignores order and null-for-empty, notices changed ports', () => {
    const want = desiredFirewall({ uid: 'u', backend: 'web', backendTag: 'web', port: 80 });
    const got = { ...want, droplet_ids: null, outbound_rules: [...want.outbound_rules].reverse() };
    expect(firewallMatches(got, want)).toBe(true);
    expect(firewallMatches(desiredFirewall({ uid: 'u', backend: 'web', backendTag: 'web', port: 81 }), want)).toBe(false);
  });
});

describe('cloud-init', () => {
  it('installs haproxy, keepalived and curl, and allows non-local binds', () => {
    const text = cloudInit({ objectName: 'web', nodeName: 'web-0' });
    expect(text.startsWith('#cloud-config\n')).toBe(true);
    expect(text).toMatch(/- haproxy\n\s+- keepalived\n\s+- curl/);
    expect(text).toContain('net.ipv4.ip_nonlocal_bind = 1');
  });

  it('turns password logins off from the first boot with the operator\'s sshd drop-in', () => {
    const text = cloudInit({
      objectName: 'web', nodeName: 'web-0',
      sshdDropIn: { path: '/etc/ssh/sshd_config.d/00-halb.conf', content: 'PasswordAuthentication no\n' },
    });
    expect(text).toContain('ssh_pwauth: false');
    expect(text).toMatch(/path: \/etc\/ssh\/sshd_config.d\/00-halb.conf\n\s+content: \|\n\s+PasswordAuthentication no/);
    expect(text).toMatch(/- nftables/);
  });
});

describe('AddressPool', () => {
  it('skips network, gateway and claimed addresses, reuses freed ones, and says when it is full', () => {
    const pool = new AddressPool('203.0.113.0/29');
    pool.claim('203.0.113.3');
    expect([pool.allocate(), pool.allocate()]).toEqual(['203.0.113.2', '203.0.113.4']);
    pool.release('203.0.113.2');
    expect(pool.allocate()).toBe('203.0.113.2');
    pool.allocate();
    pool.allocate();
    expect(() => pool.allocate()).toThrow(/203\.0\.113\.0\/29 is exhausted/);
    expect(pool.netmask).toBe('255.255.255.248');
  });
});

describe('metadata documents', () => {
  const input = {
    droplet: {
      id: 7,
      name: 'web-0',
      region: 'nyc3',
      tags: ['halb', 'x'],
      status: 'active' as const,
      userData: '#cloud-config\n',
      vpcUuid: 'v',
      publicIPv4: '203.0.113.10',
      privateIPv4: '10.10.0.11',
      anchorIPv4: '10.20.0.5',
      sshPublicKeys: ['ssh-ed25519 AAAA a'], image: 'ubuntu-24-04-x64',
    },
    reservedIPv4: '198.51.100.10',
    publicNet: { netmask: '255.255.255.0', gateway: '203.0.113.1' },
    anchorNet: { netmask: '255.255.0.0', gateway: '10.20.0.1' },
    privateNet: { netmask: '255.255.0.0', gateway: '' },
  };
  const cases: [string, number, string][] = [
    ['/metadata/v1/id', 200, '7'],
    ['/metadata/v1/hostname', 200, 'web-0'],
    ['/metadata/v1/interfaces/public/0/anchor_ipv4/address', 200, '10.20.0.5'],
    ['/metadata/v1/interfaces/public/0/anchor_ipv4/gateway', 200, '10.20.0.1'],
    ['/metadata/v1/interfaces/private/0/ipv4/address', 200, '10.10.0.11'],
    ['/metadata/v1/reserved_ip/ipv4/active', 200, 'true'],
    ['/metadata/v1/reserved_ip/ipv4/ip_address', 200, '198.51.100.10'],
    ['/metadata/v1/floating_ip/ipv4/ip_address', 200, '198.51.100.10'],
    ['/metadata/v1/tags/', 200, '0\n1'],
    ['/metadata/v1/interfaces/', 200, 'public/\nprivate/'],
    ['/metadata/v1/interfaces', 301, ''],
    ['/metadata/v1/nope', 404, 'not found\n'],
  ];
  for (const [path, status, body] of cases) {
    it(path, () => expect(metadataResponse(input, path)).toMatchObject({ status, body }));
  }
  it('serves v1.json', () => {
    const json = JSON.parse(metadataResponse(input, '/metadata/v1.json').body) as
      { droplet_id: number; reserved_ip: unknown; interfaces: { public: { anchor_ipv4: { ip_address: string } }[] } };
    expect(json.droplet_id).toBe(7);
    expect(json.reserved_ip).toEqual({ ipv4: { active: true, ip_address: '198.51.100.10' }, ipv6: { active: false } });
    expect(json.interfaces.public[0]!.anchor_ipv4.ip_address).toBe('10.20.0.5');
  });
});

// Which changes HAProxy takes through its runtime API, and which reload: rendered node files
// before and after a spec edit, through the real renderer, and the commands planned.
import { describe, expect, it } from 'vitest';
import { defaultSettings, renderNodes } from '../../src/render/index.ts';
import { appliedFiles, planRuntimeChanges, type RuntimePlan } from '../../src/render/runtime.ts';
import { DEFAULT_PATHS } from '../../src/render/render.ts';
import { baseSecrets, makeLB, tlsPair } from './helpers.ts';

const CONFIG = DEFAULT_PATHS.haproxyConfig;
const observed = {
  floatingIP: '198.51.100.7',
  nodes: [
    { name: 'web-0', privateIPv4: '10.10.0.11', anchorIPv4: '10.17.0.11' },
    { name: 'web-1', privateIPv4: '10.10.0.12', anchorIPv4: '10.17.0.12' },
  ],
};
const versions = { keepalived: '2.2.8', haproxy: '2.8.5' };

type Server = { name: string; address: string; port?: number; weight?: number; drain?: boolean };
interface Variant { servers?: Server[]; backend?: Record<string, unknown>; tls?: boolean; secrets?: ReturnType<typeof baseSecrets> }

const S1 = { name: 's1', address: '10.10.0.21' };
const S2 = { name: 's2', address: '10.10.0.22' };

function files({ servers = [S1, S2], backend = {}, tls = false, secrets = baseSecrets() }: Variant = {}) {
  const lb = makeLB('web', {
    frontends: [{
      name: 'www', port: 80, protocol: 'http', defaultBackend: 'web',
      ...(tls ? { tls: { port: 443, secretRef: { name: 'www-tls' } } } : {}),
    }],
    backends: [{ name: 'web', port: 8080, servers, ...backend }],
  });
  return renderNodes({ lb, secrets, observed, settings: defaultSettings({ defaultVersions: versions }) })[0]!.files;
}

function plan(before: Variant, after: Variant, dynamicServers = true): RuntimePlan {
  return planRuntimeChanges(appliedFiles(files(before), CONFIG), files(after), CONFIG, { dynamicServers });
}

const commands = (p: RuntimePlan) => (p.kind === 'runtime' ? p.commands.map((c) => c.command) : p.reason);

/** The Secret rotated: the same pair with other whitespace is another file to HAProxy (the planner compares files). */
function rotatedSecrets() {
  const { cert, key } = tlsPair();
  const data = { 'tls.crt': `${cert.trim()}\n`, 'tls.key': `${key.trim()}\n\n` };
  return baseSecrets().map((s) => (s.name === 'www-tls' ? { ...s, data } : s));
}

describe('planRuntimeChanges', () => {
  it.each<[string, Variant, Variant, string[] | string]>([
    ['nothing changed', {}, {}, []],
    ['a server added', { servers: [S1] }, {}, ['add server web/s2 10.10.0.22:8080 check inter 2s rise 2 fall 3', 'enable health web/s2',
      'enable server web/s2']],
    ['a server removed: maintenance (no new connections), then deleted', {}, { servers: [S1] },
      ['set server web/s2 state maint', 'del server web/s2']],
    ['a server re-weighted', {}, { servers: [S1, { ...S2, weight: 7 }] }, ['set weight web/s2 7']],
    ['a weight removed goes back to 1', { servers: [S1, { ...S2, weight: 7 }] }, {}, ['set weight web/s2 1']],
    ['a server drained', {}, { servers: [S1, { ...S2, drain: true }] }, ['set weight web/s2 0']],
    ['a server moved to another address and port', {}, { servers: [S1, { ...S2, address: '10.10.0.23', port: 9090 }] },
      ['set server web/s2 addr 10.10.0.23 port 9090']],
    ['a server added with its own weight', { servers: [S1] }, { servers: [S1, { ...S2, weight: 3 }] },
      ['add server web/s2 10.10.0.22:8080 check inter 2s rise 2 fall 3 weight 3', 'enable health web/s2', 'enable server web/s2']],
    ['a certificate rotated', { tls: true }, { tls: true, secrets: rotatedSecrets() },
      ['set ssl cert /etc/haproxy/certs/www.pem <<', 'commit ssl cert /etc/haproxy/certs/www.pem']],
    // Reloads, each with its reason.
    ['the servers\' defaults changed', {}, { backend: { maxconnPerServer: 10 } }, 'haproxy.cfg changed more than its servers'],
    ['the balance changed', {}, { backend: { balance: 'leastconn' } }, 'haproxy.cfg changed more than its servers'],
    ['a server added under a static algorithm', { servers: [S1], backend: { balance: 'source' } }, { backend: { balance: 'source' } },
      'backend web balances with source, whose servers are fixed at start'],
    ['a server added with a cookie (sticky sessions)', { servers: [S1], backend: { stickySessions: true } },
      { backend: { stickySessions: true } }, 'server web/s2 has cookie, which HAProxy cannot add at runtime'],
    ['a server moved to a DNS name', {}, { servers: [S1, { ...S2, address: 'app.internal' }] },
      'server web/s2 changed more than its address and weight'],
    ['TLS turned on', {}, { tls: true }, 'files were added or removed'],
  ])('%s', (_name, before, after, expected) => {
    expect(commands(plan(before, after))).toEqual(expected);
  });

  it('reloads to add or remove a server where HAProxy is older than 2.6, and still re-weights at runtime', () => {
    expect(commands(plan({ servers: [S1] }, {}, false))).toBe('adding or removing a server at runtime needs HAProxy 2.6 or later');
    expect(commands(plan({}, { servers: [S1, { ...S2, weight: 2 }] }, false))).toEqual(['set weight web/s2 2']);
  });

  it('sends the new PEM as the payload, with no empty line (which would end it early), and says what success looks like', () => {
    const p = plan({ tls: true }, { tls: true, secrets: rotatedSecrets() });
    expect(p.kind).toBe('runtime');
    const [set, commit] = p.kind === 'runtime' ? p.commands : [];
    const pem = /^-----BEGIN CERTIFICATE-----\n[\s\S]+-----END .*PRIVATE KEY-----$/;
    expect(set).toMatchObject({ expect: 'Transaction', payload: expect.stringMatching(pem) });
    expect(set!.payload).not.toMatch(/\n\n/);
    expect(commit).toMatchObject({ expect: 'Success' });
  });

  it('keeps a removed server whose connections are still open (the delete may fail) but not a failed add', () => {
    const removed = plan({}, { servers: [S1] });
    const added = plan({ servers: [S1] }, {});
    expect(removed.kind === 'runtime' && removed.commands.map((c) => c.optional ?? false)).toEqual([false, true]);
    expect(added.kind === 'runtime' && added.commands.every((c) => !c.optional)).toBe(true);
  });
});

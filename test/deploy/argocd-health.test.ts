// The Argo CD health check for HALoadBalancer, run by the real Lua 5.1 interpreter: the cases
// of deploy/argocd/health_test.yaml (Argo CD's own test format), then objects whose status the
// operator's own status code computed. The script runs as Argo CD runs it: `obj` is a global
// and the string, io and os libraries are out of reach.
import { execFile } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { validateHALoadBalancer } from '../../src/api/validate.ts';
import type { HALoadBalancer } from '../../src/api/types.ts';
import type { Observed, ObservedHost } from '../../src/controller/observed.ts';
import { planDayTwo } from '../../src/controller/handover.ts';
import { computeStatus, stalledStatus } from '../../src/controller/status.ts';

const LUA = process.env.LUA ?? '/usr/bin/lua5.1';
const DIR = join(import.meta.dirname, '../../deploy/argocd');
const SCRIPT = readFileSync(join(DIR, 'health.lua'), 'utf8');

interface Health { status: string; message: string }

/** A JSON value as a Lua table constructor; arrays become 1-based sequences, null is nil. */
export function toLua(value: unknown): string {
  if (value === null || value === undefined) return 'nil';
  if (typeof value === 'boolean' || typeof value === 'number') return String(value);
  if (typeof value === 'string') {
    const escape = (c: string) => `\\${c.codePointAt(0)! < 256 ? c.codePointAt(0) : '?'}`;
    return `"${[...value].map((c) => (/[\w .,:;/()\-+=*#@!?'[\]{}<>|~^&%$]/.test(c) ? c : escape(c))).join('')}"`;
  }
  if (Array.isArray(value)) return `{${value.map(toLua).join(', ')}}`;
  return `{${Object.entries(value as Record<string, unknown>).map(([k, v]) => `[${toLua(k)}] = ${toLua(v)}`).join(', ')}}`;
}

// The script runs in an environment holding only what Argo CD's VM opens for health checks
// (base functions and table); it returns {status, message}, printed on two lines.
const HARNESS = `
local src = io.read("*a")
local sep = src:find("\\n----SCRIPT----\\n", 1, true)
local objChunk = assert(loadstring(src:sub(1, sep - 1), "obj"))
local script = assert(loadstring(src:sub(sep + 16), "health.lua"))
local env = { ipairs = ipairs, pairs = pairs, next = next, type = type, tostring = tostring, tonumber = tonumber,
  error = error, pcall = pcall, select = select, unpack = unpack, table = table, obj = objChunk() }
setfenv(script, env)
local hs = script()
io.write(tostring(hs.status), "\\n", tostring(hs.message))
`;

function requireLua(): void {
  try {
    accessSync(LUA, constants.X_OK);
  } catch {
    throw new Error(`lua5.1 not found at ${LUA}: apt-get install lua5.1 (or set LUA)`);
  }
}

function health(obj: unknown): Promise<Health> {
  requireLua();
  return new Promise((resolve, reject) => {
    const child = execFile(LUA, ['-e', HARNESS], { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`lua5.1 failed: ${stderr || err.message}`));
      const [status = '', ...message] = stdout.split('\n');
      resolve({ status, message: message.join('\n') });
    });
    child.stdin!.end(`return ${toLua(obj)}\n----SCRIPT----\n${SCRIPT}`);
  });
}

describe('deploy/argocd/health.lua with Lua 5.1', () => {
  const cases = (parse(readFileSync(join(DIR, 'health_test.yaml'), 'utf8')) as
    { tests: { healthStatus: Health; inputPath: string }[] }).tests;

  it('has the cases the health table names', () => {
    expect(cases.map((c) => c.healthStatus.status).sort()).toEqual(expect.arrayContaining(['Degraded', 'Healthy', 'Progressing']));
    expect(cases.length).toBeGreaterThanOrEqual(10);
  });

  for (const c of cases) {
    it(`${c.inputPath} is ${c.healthStatus.status}`, async () => {
      const obj = parse(readFileSync(join(DIR, c.inputPath), 'utf8')) as unknown;
      expect(await health(obj)).toEqual(c.healthStatus);
    });
  }

  it('is the script the argocd-cm patch carries, under the key Argo CD looks up', () => {
    const cm = parse(readFileSync(join(DIR, 'argocd-cm-patch.yaml'), 'utf8')) as
      { metadata: { name: string }; data: Record<string, string> };
    expect(cm.metadata.name).toBe('argocd-cm');
    expect(Object.keys(cm.data)).toEqual(['resource.customizations.health.halb.dev_HALoadBalancer']);
    expect(cm.data['resource.customizations.health.halb.dev_HALoadBalancer']).toBe(SCRIPT);
  });

  it('fails loudly, not silently, when the script reaches for a library Argo CD does not open', async () => {
    const broken = SCRIPT.replace('local hs =', 'local _ = string.lower("X")\nlocal hs =');
    requireLua();
    const err = await new Promise<string>((resolve) => {
      const child = execFile(LUA, ['-e', HARNESS], (e, _o, stderr) => resolve(e ? stderr : ''));
      child.stdin!.end(`return {}\n----SCRIPT----\n${broken}`);
    });
    expect(err).toMatch(/attempt to index global 'string'/);
  });
});

describe('health of statuses the operator computes', () => {
  const now = '2026-11-24T10:00:00Z';
  function object(generation: number): HALoadBalancer {
    const { object: o, problems } = validateHALoadBalancer({
      apiVersion: 'halb.dev/v1alpha1', kind: 'HALoadBalancer', metadata: { name: 'web', namespace: 'default', generation },
      spec: {
        region: 'nyc3',
        credentials: { tokenSecretRef: { name: 'do-api', key: 'token' }, sshKeySecretRef: { name: 'halb-ssh', key: 'ssh-privatekey' } },
        frontends: [{ name: 'www', port: 80, defaultBackend: 'web' }],
        backends: [{ name: 'web', servers: [{ name: 's1', address: '10.10.0.21' }] }],
        access: { sshSourceCIDRs: ['203.0.113.0/24'] },
      },
    });
    expect(problems).toEqual([]);
    return { ...o!, metadata: { ...o!.metadata, generation } };
  }
  const host = (vrrpState: ObservedHost['vrrpState']): ObservedHost =>
    ({ reachable: true, vrrpState, configHash: 'sha256:aa', anchorIPv4: '10.20.0.5', privateIPv4: '10.10.0.11' });
  const observed = (hosts: (ObservedHost | undefined)[], holder: number | null = 101): Observed => ({
    droplets: hosts.map((_, i) =>
      ({ id: 101 + i, name: `web-${i}`, index: i, status: 'active', createdAt: now, publicIPv4: `203.0.113.${11 + i}` })),
    reservedIP: { ip: '198.51.100.10', dropletId: holder, locked: false },
    hosts: Object.fromEntries(hosts.flatMap((h, i) => (h ? [[`web-${i}`, h]] : []))),
  });
  const hashes = { 'web-0': 'sha256:aa', 'web-1': 'sha256:aa' };
  const withStatus = (generation: number, status: HALoadBalancer['status']) => ({ ...object(generation), status });

  it('a converged pair is Healthy', async () => {
    const status = computeStatus({ object: object(1), observed: observed([host('MASTER'), host('BACKUP')]), desiredHashes: hashes, now });
    expect(await health(withStatus(1, status))).toEqual({ status: 'Healthy', message: 'the load balancer is serving' });
  });

  it('a pair still being created is Progressing', async () => {
    const status = computeStatus({ object: object(1), observed: { droplets: [], hosts: {} }, desiredHashes: {}, now });
    expect((await health(withStatus(1, status))).status).toBe('Progressing');
  });

  it('two MASTERs are Degraded', async () => {
    const status = computeStatus({ object: object(1), observed: observed([host('MASTER'), host('MASTER')]), desiredHashes: hashes, now });
    expect(await health(withStatus(1, status))).toEqual({ status: 'Degraded', message: 'SplitBrain: more than one MASTER: web-0, web-1' });
  });

  it('the reserved IP on a BACKUP is Degraded even while Ready', async () => {
    const status = computeStatus({
      object: object(1), observed: observed([host('MASTER'), host('BACKUP')], 102), desiredHashes: hashes, now,
    });
    expect(status.conditions!.find((c) => c.type === 'Degraded')!.status).toBe('True');
    expect((await health(withStatus(1, status))).status).toBe('Degraded');
  });

  it('InvalidSpec, SecretNotFound and CloudRequestRefused are Degraded', async () => {
    const invalid = stalledStatus(object(1), [{ path: 'spec.frontends[0].defaultBackend', message: 'backend "api" does not exist' }],
      now, 'InvalidSpec');
    expect(await health(withStatus(1, invalid)))
      .toEqual({ status: 'Degraded', message: 'InvalidSpec: spec.frontends[0].defaultBackend: backend "api" does not exist' });
    const missing = stalledStatus(object(1), [{ path: 'spec', message: 'Secret "do-api" not found in namespace default' }],
      now, 'SecretNotFound');
    expect((await health(withStatus(1, missing))).status).toBe('Degraded');
    const refused = stalledStatus(object(1), [{ path: '', message: 'DigitalOcean refused: the token lacks the "droplet:create" scope' }],
      now, 'CloudRequestRefused');
    expect((await health(withStatus(1, refused))).status).toBe('Degraded');
  });

  it('a planned failover under way is Progressing, the MASTER handing over being FAULT on purpose', async () => {
    const base = object(1);
    const planning = { ...base, metadata: { ...base.metadata, annotations: { 'halb.dev/preferred-node': 'web-1' } } };
    const running = { keepalivedRunning: true, haproxyRunning: true };
    const seen = observed([{ ...host('FAULT'), ...running, priorityOffset: -254 }, { ...host('BACKUP'), ...running, priorityOffset: 50 }]);
    const previous = { plannedFailover: { from: 'web-0', to: 'web-1', reason: 'PreferredNode' as const, requested: now } };
    const input = { object: { ...planning, status: previous }, observed: seen, desiredHashes: hashes, now: new Date(now) };
    const status = computeStatus({ ...input, now, dayTwo: planDayTwo(input, previous.plannedFailover, new Map()) });
    expect(status.conditions!.find((c) => c.type === 'Degraded')!.status).toBe('False');
    expect(await health(withStatus(1, status))).toEqual({
      status: 'Progressing', message: 'FailoverRequested: moving MASTER from web-0 to web-1: halb.dev/preferred-node names it',
    });
  });

  it('a node in maintenance that is powered off leaves the pair Healthy, saying so', async () => {
    const base = object(1);
    const resting = { ...base, metadata: { ...base.metadata, annotations: { 'maintenance.halb.dev/web-1': 'kernel update' } } };
    const seen = observed([host('MASTER'), undefined]);
    seen.droplets[1]!.status = 'off';
    const input = { object: resting, observed: seen, desiredHashes: hashes, now: new Date(now) };
    const status = computeStatus({ ...input, now, dayTwo: planDayTwo(input, undefined, new Map()) });
    const condition = (type: string) => status.conditions!.find((c) => c.type === type)!;
    expect(condition('Degraded')).toMatchObject({ status: 'False', reason: 'NodeInMaintenance' });
    expect(condition('NodeInMaintenance')).toMatchObject({ status: 'True', message: 'web-1: in maintenance (kernel update)' });
    expect(await health(withStatus(1, status))).toEqual({ status: 'Healthy', message: 'the load balancer is serving' });
  });

  it('a Healthy status written for an older generation is Progressing after an edit', async () => {
    const status = computeStatus({ object: object(1), observed: observed([host('MASTER'), host('BACKUP')]), desiredHashes: hashes, now });
    expect(await health(withStatus(2, status)))
      .toEqual({ status: 'Progressing', message: 'Waiting for the halb operator to observe generation 2' });
  });
});

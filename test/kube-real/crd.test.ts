// The CRD on the real kube-apiserver, next to the emulator: the real server accepts
// crds/haloadbalancer.yaml and every example (kubectl apply, no warning), fills the same defaults
// the emulator fills, and refuses every invalid fixture the schema (and its CEL rules) should
// catch with the same status, reason and fields as the emulator, naming the field
// test/fixtures/invalid/index.yaml expects. A fixture the emulator accepts (a semantic rule only
// the operator checks) must be accepted by the real server too.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKubeEmulator, type KubeEmulator } from '../../src/sandbox/kube/index.ts';
import { KUBECTL, realKubeBuilt, ROOT, run, SKIP_REASON, startControlPlane, type ControlPlane } from './helpers.ts';
import { rawClient, type Answer, type RawClient } from './http.ts';

const built = realKubeBuilt();
if (!built) console.log(`skipped: ${SKIP_REASON}`);

const INVALID = join(ROOT, 'test/fixtures/invalid');
const EXAMPLES = join(ROOT, 'examples');
const index = parse(readFileSync(join(INVALID, 'index.yaml'), 'utf8')) as Record<string, { expect: string; why: string }>;

interface Doc { apiVersion: string; kind: string; metadata?: { name?: string; namespace?: string } }

/** The collection path kubectl would POST a document to, or undefined for kinds not served here. */
function collection(doc: Doc): string | undefined {
  const namespace = doc.metadata?.namespace ?? 'default';
  if (doc.kind === 'Secret' && doc.apiVersion === 'v1') return `/api/v1/namespaces/${namespace}/secrets`;
  if (doc.kind === 'HALoadBalancer' && typeof doc.apiVersion === 'string' && doc.apiVersion.includes('/')) {
    return `/apis/${doc.apiVersion}/namespaces/${namespace}/haloadbalancers`;
  }
  return undefined;
}

/** The documents of a fixture as kubectl would send them; undefined when kubectl itself refuses the file. */
function documents(file: string): Doc[] | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  if (text.includes('\u0000')) return undefined;
  const docs = parseAllDocuments(text, { uniqueKeys: true });
  if (!Array.isArray(docs) || docs.some((d) => d.errors.length)) return undefined;
  let values: unknown[];
  try {
    // kubectl's YAML reader refuses excessive aliasing too.
    values = docs.map((d) => d.toJS({ maxAliasCount: 100 }) as unknown).filter((v) => v !== null && v !== undefined);
  } catch {
    return undefined;
  }
  if (!values.length || values.some((v) => typeof v !== 'object' || Array.isArray(v))) return undefined;
  // kubectl cannot send a NaN or an infinity: JSON has neither.
  const nonFinite = (v: unknown) =>
    JSON.stringify(v, (_k, x: unknown) => (typeof x === 'number' && !Number.isFinite(x) ? '\u0000' : x)).includes('\\u0000');
  if (values.some(nonFinite)) return undefined;
  return values as Doc[];
}

/** What a client reads from a refusal: status code, reason, message and the fields named. */
function refusal(a: Answer): { status: number; reason?: string; message?: string; fields: string[] } {
  const s = a.json as { reason?: string; message?: string; details?: { causes?: { field?: string }[] } } | undefined;
  return {
    status: a.status,
    ...(s?.reason ? { reason: s.reason } : {}),
    ...(s?.message ? { message: s.message } : {}),
    fields: [...new Set((s?.details?.causes ?? []).map((c) => c.field ?? ''))].sort(),
  };
}

describe.skipIf(!built)('the CRD on the real kube-apiserver, and the emulator beside it', () => {
  let cp: ControlPlane;
  let emulator: KubeEmulator;
  let real: RawClient;
  let emulated: RawClient;
  let emulatorHome: string;
  let crdApplied: { code: number; stdout: string; stderr: string };

  beforeAll(async () => {
    cp = await startControlPlane();
    emulator = await startKubeEmulator({ host: '127.0.0.1', port: 0 });
    real = rawClient(cp.kube.url, cp.kube);
    emulated = rawClient(emulator.url);
    emulatorHome = mkdtempSync(join(tmpdir(), 'halb-crd-emulator-'));
    emulator.writeKubeconfig(join(emulatorHome, 'kubeconfig'));
    // Every test below needs the CRD; the first one looks at how it went in.
    crdApplied = await cp.kubectl(['apply', '-f', join(ROOT, 'crds/haloadbalancer.yaml')]);
    await kubectlEmulator(['apply', '-f', join(ROOT, 'crds/haloadbalancer.yaml')]);
  }, 180_000);
  afterAll(async () => {
    await emulator?.close();
    await cp?.close();
    if (emulatorHome) rmSync(emulatorHome, { recursive: true, force: true });
  }, 60_000);

  function kubectlEmulator(args: string[]) {
    return run(KUBECTL, [`--cache-dir=${join(emulatorHome, 'cache')}`, ...args], {
      ...process.env, HOME: emulatorHome, KUBECONFIG: join(emulatorHome, 'kubeconfig'),
    });
  }
  it('accepts crds/haloadbalancer.yaml from kubectl apply, without a warning, and establishes it', async () => {
    expect(crdApplied.stderr).toBe('');
    expect(crdApplied.stdout).toContain('customresourcedefinition.apiextensions.k8s.io/haloadbalancers.halb.dev created');
    const wait = await cp.kubectl(['wait', '--for=condition=Established', 'crd/haloadbalancers.halb.dev', '--timeout=60s']);
    expect(wait.code, wait.stderr).toBe(0);
    // Discovery knows the kind at once: kubectl maps the short name.
    await expect.poll(async () => (await cp.kubectl(['get', 'halb'])).stderr, { timeout: 30_000 }).toMatch(/No resources found/);
  }, 90_000);

  const examples = readdirSync(EXAMPLES, { recursive: true }).map(String).filter((f) => f.endsWith('.yaml')).sort();
  it.each(examples)('accepts examples/%s from kubectl apply, with the defaults the emulator fills', async (file) => {
    const path = join(EXAMPLES, file);
    const onReal = await cp.kubectl(['apply', '-f', path]);
    expect(onReal.stderr).toBe('');
    expect(onReal.code).toBe(0);
    const onEmulator = await kubectlEmulator(['apply', '-f', path]);
    expect(onEmulator.code, onEmulator.stderr).toBe(0);
    for (const doc of documents(path)!.filter((d) => d.kind === 'HALoadBalancer')) {
      const get = (answer: Answer) => (answer.json as { spec: unknown }).spec;
      const p = `${collection(doc)}/${doc.metadata!.name}`;
      expect(get(await emulated.send({ method: 'GET', path: p })), `${doc.metadata!.name}: spec after defaulting`)
        .toEqual(get(await real.send({ method: 'GET', path: p })));
    }
    await cp.kubectl(['delete', '-f', path, '--wait=false']);
    await kubectlEmulator(['delete', '-f', path, '--wait=false']);
  }, 60_000);

  const fixtures = Object.keys(index).sort();
  it.each(fixtures)('%s: the real server answers as the emulator does', async (file) => {
    const docs = documents(join(INVALID, file));
    if (!docs) return; // kubectl refuses the file itself (YAML errors, binary, not an object)
    const created: { client: RawClient; path: string }[] = [];
    try {
      for (const doc of docs) {
        const path = collection(doc);
        if (!path) continue;
        // As kubectl sends a create: strict field validation.
        const req = {
          method: 'POST', path: `${path}?fieldManager=kubectl-client-side-apply&fieldValidation=Strict`,
          headers: { 'content-type': 'application/json' }, body: JSON.stringify(doc),
        };
        const [fromReal, fromEmulator] = [await real.send(req), await emulated.send(req)];
        if (fromReal.status < 300) created.push({ client: real, path: `${path}/${doc.metadata?.name}` });
        if (fromEmulator.status < 300) created.push({ client: emulated, path: `${path}/${doc.metadata?.name}` });
        const what = `${file}: ${doc.kind} ${doc.metadata?.name ?? ''}`;
        expect(refusal(fromEmulator), `${what}: the emulator's answer (left) against the real server's`).toEqual(refusal(fromReal));
        // A schema refusal names the field halb validate names (or the list item holding it: the
        // server names a duplicate list-map key by its item).
        if (fromReal.status === 422 && doc.kind === 'HALoadBalancer') {
          const expected = index[file]!.expect;
          const named = refusal(fromReal).fields;
          expect(named.some((f) => expected.startsWith(f) || f.startsWith(expected)),
            `${what}: the real server names ${expected} (it named ${named.join(', ')})`).toBe(true);
        }
      }
    } finally {
      for (const { client, path } of created) await client.send({ method: 'DELETE', path });
    }
  });

  it('decoding errors: bad base64 in a Secret, a wrongly typed metadata field, answered alike', async () => {
    const secret = (value: unknown) => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'decoding' }, data: { k: value } });
    const tcpExample = () =>
      readFileSync(join(EXAMPLES, 'tcp.yaml'), 'utf8').split(/^---$/m).find((d) => d.includes('kind: HALoadBalancer'))!;
    const object = (metadata: Record<string, unknown>) =>
      ({ ...parse(tcpExample()) as object, metadata: { name: 'decoding', ...metadata } });
    const cases: [string, unknown][] = [
      ...['czNjcjM', 'abc', 'a', 'ab=c', 'YQ==YQ==', 'YQ=', 'Y!==', 'YQ\n==', '====', 'YWJj\nZA=', 42]
        .map((v): [string, unknown] => ['/api/v1/namespaces/default/secrets', secret(v)]),
      ...[{ uid: 1 }, { generation: '1' }, { labels: { a: 1 } }, { labels: [] }, { finalizers: 'x' }, { annotations: { a: true } }]
        .map((m): [string, unknown] => ['/apis/halb.dev/v1alpha1/namespaces/default/haloadbalancers', object(m)]),
    ];
    for (const [path, body] of cases) {
      const req = { method: 'POST', path, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
      const [fromReal, fromEmulator] = [await real.send(req), await emulated.send(req)];
      for (const [client, answer] of [[real, fromReal], [emulated, fromEmulator]] as const) {
        if (answer.status < 300) await client.send({ method: 'DELETE', path: `${path}/decoding` });
      }
      expect(refusal(fromEmulator), JSON.stringify(body)).toEqual(refusal(fromReal));
    }
  });

  it('kubectl shows the real server\'s refusal naming the field', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'halb-crd-'));
    try {
      const file = join(dir, 'port.yaml');
      writeFileSync(file, readFileSync(join(INVALID, 'wrong-type-port.yaml')));
      const refused = await cp.kubectl(['apply', '-f', file]);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain('spec.frontends[0].port');
      expect(refused.stderr).toContain('The HALoadBalancer "web" is invalid');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

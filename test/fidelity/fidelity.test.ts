// The emulator's fidelity, measured against the real kube-apiserver.
//
// 1. Record: an end-to-end run in the sandbox on the real server, with the real kubectl flows of
//    the e2e suite (apply, wait, get in every output, describe, events, patch, label, diff,
//    server-side apply, a refused apply, a missing object, delete with its finalizer) and the
//    operator (as its ServiceAccount) reconciling to Ready and cleaning up; every exchange goes
//    through a recording proxy.
// 2. Replay the exchanges, in order, against a fresh emulator and a fresh real server.
// 3. Compare what clients read (compare.ts). Every divergence must be listed in accepted.yaml
//    with the reason neither kubectl nor the operator notices it; the others are bugs to fix in
//    src/sandbox/kube.
//
// HALB_FIDELITY_DOC=1 rewrites the figures in docs/sandbox-fidelity.md from this run. Each run
// keeps its recording in the temporary folder (the path is printed);
// HALB_FIDELITY_REPLAY=<that file> replays it again without recording (no sandbox, no root).
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { buildCRD } from '../../src/api/crd.ts';
import { startKubeEmulator, type KubeEmulator } from '../../src/sandbox/kube/index.ts';
import { ROOT, startE2E, waitFor, type E2E } from '../e2e/helpers.ts';
import {
  realKubeBuilt, run, KUBECTL, SKIP_REASON, startControlPlane, startOperatorProcess, type ControlPlane,
} from '../kube-real/helpers.ts';
import { rawClient, type RawClient } from '../kube-real/http.ts';
import { divergences, route, usedResources, view, type Divergence } from './compare.ts';
import { startRecordingProxy, type Exchange, type RecordingProxy } from './record.ts';
import { replay } from './replay.ts';

const built = realKubeBuilt();
if (!built) console.log(`skipped: ${SKIP_REASON}`);

const ACCEPTED = join(import.meta.dirname, 'accepted.yaml');
const DOC = join(ROOT, 'docs/sandbox-fidelity.md');

interface Accepted { route: string; aspect: string; method?: string; why: string }

/** Whether an accepted entry covers a divergence: same route and aspect (a trailing * matches a prefix). */
const matches = (a: Accepted, d: Divergence) => (a.method ?? d.method) === d.method
  && (a.route.endsWith('*') ? d.route.startsWith(a.route.slice(0, -1)) : a.route === d.route)
  && (a.aspect.endsWith('*') ? d.aspect.startsWith(a.aspect.slice(0, -1)) : a.aspect === d.aspect);

const SEED = [
  buildCRD() as unknown as Record<string, unknown>,
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'halb-system' } },
  {
    apiVersion: 'v1', kind: 'Secret', metadata: { name: 'do-api', namespace: 'default' }, type: 'Opaque',
    stringData: { token: 'dop_v1_sandbox' },
  },
  {
    apiVersion: 'v1', kind: 'Secret', metadata: { name: 'halb-ssh', namespace: 'default' }, type: 'kubernetes.io/ssh-auth',
    stringData: { 'ssh-privatekey': 'replayed' },
  },
];

/** Creates the objects the recorded sandbox began with, through the server's API. */
async function seed(client: RawClient): Promise<void> {
  for (const object of SEED) {
    const plural = `${String(object.kind).toLowerCase()}s`;
    const path = object.kind === 'CustomResourceDefinition' ? '/apis/apiextensions.k8s.io/v1/customresourcedefinitions'
      : object.kind === 'Namespace' ? '/api/v1/namespaces' : `/api/v1/namespaces/default/${plural}`;
    const answer = await client.send({
      method: 'POST', path, headers: { 'content-type': 'application/json' }, body: JSON.stringify(object),
    });
    if (answer.status >= 300 && answer.status !== 409) throw new Error(`seeding ${path}: ${answer.status} ${answer.text}`);
  }
  await waitFor('the CRD served', async () =>
    (await client.send({ method: 'GET', path: '/apis/halb.dev/v1alpha1/namespaces/default/haloadbalancers' })).status === 200 || undefined,
  60_000, 200);
  // The real server publishes a new CRD's OpenAPI a few seconds after serving it; the recording
  // began long after.
  await waitFor('the CRD in OpenAPI v3', async () => {
    const root = (await client.send({ method: 'GET', path: '/openapi/v3' })).json as { paths?: Record<string, unknown> } | undefined;
    return root?.paths?.['apis/halb.dev/v1alpha1'] !== undefined || undefined;
  }, 60_000, 250);
}

describe.skipIf(!built)('the emulator against the real kube-apiserver, exchange by exchange', () => {
  let e2e: E2E | undefined;
  let proxy: RecordingProxy | undefined;
  let emulator: KubeEmulator | undefined;
  let real: ControlPlane | undefined;
  let exchanges: Exchange[] = [];
  afterAll(async () => {
    await proxy?.close();
    await e2e?.close();
    await emulator?.close();
    await real?.close();
  }, 120_000);

  it('records the kubectl flows and the operator in an end-to-end run on the real server', async () => {
    if (process.env.HALB_FIDELITY_REPLAY) {
      exchanges = JSON.parse(readFileSync(process.env.HALB_FIDELITY_REPLAY, 'utf8')) as Exchange[];
      return;
    }
    e2e = await startE2E({ operator: false, kube: 'real' });
    const kube = e2e.sandbox.kube;
    proxy = await startRecordingProxy(kube.url, kube.real);
    // kubectl and the operator reach the server through the proxy: kubectl as the admin (the
    // proxy presents the admin's certificate), the operator with its ServiceAccount token.
    const kubeconfig = join(e2e.stateDir, 'recorded.kubeconfig');
    writeFileSync(kubeconfig, stringify({
      apiVersion: 'v1', kind: 'Config',
      clusters: [{ name: 'proxy', cluster: { server: proxy.url, 'insecure-skip-tls-verify': true } }],
      users: [
        { name: 'admin', user: {} },
        { name: 'operator', user: { token: readFileSync(join(kube.operatorIdentity!.tokenDir, 'token'), 'utf8') } },
      ],
      contexts: [
        { name: 'admin', context: { cluster: 'proxy', user: 'admin', namespace: 'default' } },
        { name: 'operator', context: { cluster: 'proxy', user: 'operator' } },
      ],
      'current-context': 'admin',
    }), { mode: 0o600 });
    const operatorKubeconfig = join(e2e.stateDir, 'recorded-operator.kubeconfig');
    writeFileSync(operatorKubeconfig, readFileSync(kubeconfig, 'utf8').replace('current-context: admin', 'current-context: operator'), {
      mode: 0o600,
    });
    const kubectl = (args: string[], stdin?: string) => run(KUBECTL, [`--cache-dir=${join(e2e!.stateDir, 'recorded-cache')}`, ...args], {
      ...process.env, HOME: e2e!.stateDir, KUBECONFIG: kubeconfig,
    }, stdin, 150_000);
    const operator = startOperatorProcess({
      kubeconfig: operatorKubeconfig, leaseNamespace: kube.operatorIdentity!.namespace,
      doEndpoint: e2e.sandbox.status.digitalocean.endpoint,
      logLevel: process.env.HALB_FIDELITY_OPERATOR_LOG ?? 'warn',
    });
    try {
      expect((await kubectl(['apply', '-f', `${ROOT}examples/basic.yaml`])).code).toBe(0);
      const wait = await kubectl(['wait', '--for=condition=Ready', 'halb/basic', '--timeout=120s']);
      const conditions = (await kubectl(['get', 'halb', 'basic', '-o', 'jsonpath={.status.conditions}'])).stdout;
      expect(wait.stdout + wait.stderr, `conditions: ${conditions}\nthe operator said:\n${operator.output().slice(-3000)}`)
        .toContain('condition met');
      for (const args of [
        ['get', 'halb'], ['get', 'halb', '-o', 'wide'], ['get', 'halb', 'basic', '-o', 'jsonpath={.status.floatingIP}'],
        ['get', 'halb', 'basic', '-o', 'yaml'],
        ['describe', 'halb', 'basic'], ['get', 'events', '--field-selector', 'involvedObject.name=basic'], ['get', 'secrets'],
        ['get', 'lease', '-n', 'halb-system'],
        ['get', 'halb', 'nope'], ['diff', '-f', `${ROOT}examples/basic.yaml`], ['apply', '-f', `${ROOT}examples/basic.yaml`],
        ['label', 'halb', 'basic', 'team=web'], ['annotate', 'halb', 'basic', 'note=recorded'],
        ['apply', '--server-side', '-f', `${ROOT}examples/basic.yaml`],
        ['apply', '--server-side', '--force-conflicts', '-f', `${ROOT}examples/basic.yaml`],
      ]) {
        await kubectl(args);
      }
      const bad = readFileSync(`${ROOT}test/fixtures/invalid/wrong-type-port.yaml`, 'utf8').replace('name: web', 'name: badport');
      expect((await kubectl(['apply', '-f', '-'], bad)).code).not.toBe(0);
      expect((await kubectl(['patch', 'halb', 'basic', '--type=merge', '-p',
        '{"spec":{"backends":[{"name":"web","balance":"leastconn","port":80,"healthCheck":{"protocol":"http","path":"/"},' +
        '"servers":[{"name":"web-1","address":"10.10.0.21"},{"name":"web-2","address":"10.10.0.22"}]}]}}'])).code).toBe(0);
      await kubectl(['wait', '--for=condition=Ready', 'halb/basic', '--timeout=120s']);
      expect((await kubectl(['delete', 'halb', 'basic', '--timeout=90s'])).code).toBe(0);
    } finally {
      await operator.stop();
    }
    // Closing the proxy records the watches still open as they stand.
    await proxy.close();
    exchanges = proxy.exchanges();
    proxy = undefined;
    const kept = join(tmpdir(), `halb-fidelity-exchanges-${process.pid}.json`);
    writeFileSync(kept, JSON.stringify(exchanges));
    console.log(`fidelity: recording kept in ${kept}`);
    await e2e.close();
    e2e = undefined;
    expect(exchanges.length).toBeGreaterThan(100);
    expect(new Set(exchanges.map((x) => x.client.split(' ')[0]))).toEqual(new Set(['kubectl', 'operator']));
  }, 600_000);

  it('replays them on a fresh emulator and a fresh real server: every divergence is understood', async () => {
    expect(exchanges.length).toBeGreaterThan(0);
    emulator = await startKubeEmulator({ host: '127.0.0.1', port: 0 });
    real = await startControlPlane();
    const emulated = rawClient(emulator.url);
    const reference = rawClient(real.kube.url, real.kube);
    const fromEmulator = await replay(exchanges, emulated, () => seed(emulated));
    const fromReal = await replay(exchanges, reference, () => seed(reference));
    const used = usedResources(exchanges);
    const found: Divergence[] = [];
    const views: Record<number, unknown> = {};
    let reproduced = 0;
    for (let i = 0; i < exchanges.length; i++) {
      const e = fromEmulator[i]!;
      const r = fromReal[i]!;
      expect(e.exchange.seq).toBe(r.exchange.seq);
      const here = divergences(e.exchange, view(e.exchange, e.answer, used), view(r.exchange, r.answer, used));
      if (here.length) {
        views[e.exchange.seq] = {
          request: `${e.exchange.method} ${e.exchange.path}`,
          emulator: view(e.exchange, e.answer, used),
          real: view(r.exchange, r.answer, used),
        };
      }
      found.push(...here);
      const recorded = {
        status: r.exchange.status,
        headers: {
          'content-type': r.exchange.responseHeaders['content-type'],
          ...(r.exchange.responseHeaders.warning ? { warning: r.exchange.responseHeaders.warning } : {}),
        },
        text: r.exchange.responseBody,
        json: (() => { try { return JSON.parse(r.exchange.responseBody); } catch { return undefined; } })(),
      };
      if (!divergences(r.exchange, view(r.exchange, r.answer, used), view(r.exchange, recorded, used)).length) reproduced++;
    }
    const accepted = (parse(readFileSync(ACCEPTED, 'utf8')) as { accepted?: Accepted[] } | null)?.accepted ?? [];
    const unexplained = found.filter((d) => !accepted.some((a) => matches(a, d)));
    const report = {
      exchanges: exchanges.length,
      byClient: Object.fromEntries([...new Set(exchanges.map((x) => x.client))].sort()
        .map((c) => [c, exchanges.filter((x) => x.client === c).length])),
      routes: new Set(exchanges.map((x) => `${x.method} ${route(x)}`)).size,
      realReplayReproducedRecording: reproduced,
      divergentExchanges: new Set(found.map((d) => d.seq)).size,
      divergences: found,
      views,
    };
    const out = join(real.dir, '..', `halb-fidelity-${process.pid}.json`);
    writeFileSync(out, JSON.stringify(report, null, 2));
    console.log(`fidelity: ${report.exchanges} exchanges (${report.routes} routes) compared; ` +
      `${report.divergentExchanges} differ; report ${out}`);
    if (process.env.HALB_FIDELITY_DOC === '1') writeDoc(report, accepted);
    expect(unexplained.map((d) => `#${d.seq} ${d.client}: ${d.method} ${d.route}: ${d.aspect}: emulator ${d.emulator}, real ${d.real}`))
      .toEqual([]);
  }, 600_000);
});

interface Report {
  views?: unknown; exchanges: number; byClient: Record<string, number>; routes: number; realReplayReproducedRecording: number;
  divergentExchanges: number; divergences: Divergence[];
}

/** Rewrites the generated part of docs/sandbox-fidelity.md (between its markers) from a run. */
function writeDoc(report: Report, accepted: Accepted[]): void {
  const begin = '<!-- figures: written by HALB_FIDELITY_DOC=1 npx vitest run test/fidelity -->';
  const end = '<!-- end of figures -->';
  const grouped = new Map<string, { d: Divergence; count: number; why: string }>();
  for (const d of report.divergences) {
    const key = `${d.method} ${d.route} ${d.aspect}`;
    const entry = grouped.get(key) ?? { d, count: 0, why: accepted.find((a) => matches(a, d))?.why ?? '**not accepted: a bug to fix**' };
    entry.count++;
    grouped.set(key, entry);
  }
  const lines = [
    begin,
    '',
    `- Exchanges recorded and replayed: **${report.exchanges}** ` +
      `(${Object.entries(report.byClient).map(([c, n]) => `${c}: ${n}`).join('; ')}), over ${report.routes} distinct routes.`,
    `- The real server's replay reproduced the recording (as clients read it) for ${report.realReplayReproducedRecording} of them; ` +
      'the rest differ only by timing (which Event or status write a watch or list caught).',
    `- Exchanges where the emulator's answer differs from the real server's: **${report.divergentExchanges}**; the differences, grouped:`,
    '',
    '| request | where | count | emulator | real server | why it is accepted |',
    '|---|---|---|---|---|---|',
    ...[...grouped.values()].map(({ d, count, why }) => `| \`${d.method} ${d.route}\` | ${d.aspect.replaceAll('|', '\\|')} | ${count} | ` +
      `\`${d.emulator.replaceAll('|', '\\|').slice(0, 120)}\` | \`${d.real.replaceAll('|', '\\|').slice(0, 120)}\` | ${why} |`),
    '',
    end,
  ];
  const doc = readFileSync(DOC, 'utf8');
  const a = doc.indexOf(begin);
  const b = doc.indexOf(end);
  if (a < 0 || b < 0) throw new Error(`${DOC} lacks the figures markers`);
  writeFileSync(DOC, `${doc.slice(0, a)}${lines.join('\n')}${doc.slice(b + end.length)}`);
}

// Figures for the Kubernetes API emulator: write throughput with full CR admission, list and
// Table latency, and watch delivery latency. Run: npx node bench/kube.ts [objects]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { startKubeEmulator } from '../src/sandbox/kube/index.ts';

const N = Number(process.argv[2] ?? 500);
const root = join(import.meta.dirname, '..');
const crd = parse(readFileSync(join(root, 'crds/haloadbalancer.yaml'), 'utf8')) as object;
const web = parse(readFileSync(join(root, 'test/kube/fixtures/web.yaml'), 'utf8')) as Record<string, unknown>;
const CRS = '/apis/halb.dev/v1alpha1/namespaces/default/haloadbalancers';

const emu = await startKubeEmulator({ port: 0 });
const req = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> => {
  const res = await fetch(emu.url + path, {
    method, body: body === undefined ? undefined : JSON.stringify(body), headers: { 'Content-Type': 'application/json', ...headers },
  });
  await res.arrayBuffer();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status}`);
  return res;
};
const time = async (fn: () => Promise<unknown>): Promise<number> => {
  const t = performance.now();
  await fn();
  return performance.now() - t;
};

try {
  await req('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
  const createMs = await time(async () => {
    for (let i = 0; i < N; i++) await req('POST', CRS, { ...web, metadata: { name: `lb-${i}` } });
  });
  console.log(`create (prune+default+validate+managedFields): ${N} objects in ${createMs.toFixed(0)} ms = ` +
    `${(N / (createMs / 1000)).toFixed(0)}/s`);
  const listMs = await time(() => req('GET', CRS));
  console.log(`list ${N} objects (JSON): ${listMs.toFixed(1)} ms`);
  const tableMs = await time(() => req('GET', CRS, undefined, { Accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' }));
  console.log(`list ${N} objects (Table, JSONPath columns): ${tableMs.toFixed(1)} ms`);

  // Watch delivery: time from sending a status patch to its event arriving on an open watch.
  const ac = new AbortController();
  const watchURL = `${emu.url}${CRS}?watch=true&resourceVersion=${emu.api.store.currentRV()}&fieldSelector=metadata.name%3Dlb-0`;
  const res = await fetch(watchURL, { signal: ac.signal });
  const reader = res.body!.getReader();
  const patches = 200;
  const lat: number[] = [];
  for (let i = 0; i < patches; i++) {
    const t = performance.now();
    void req('PATCH', `${CRS}/lb-0/status`, { status: { floatingIP: `198.51.100.${i % 250}` } }, {
      'Content-Type': 'application/merge-patch+json',
    });
    let got = '';
    while (!got.includes('\n')) got += Buffer.from((await reader.read()).value!).toString();
    lat.push(performance.now() - t);
  }
  ac.abort();
  lat.sort((a, b) => a - b);
  console.log(`watch delivery over ${patches} status patches: ` +
    `p50 ${lat[Math.floor(patches / 2)]!.toFixed(2)} ms, p99 ${lat[Math.floor(patches * 0.99)]!.toFixed(2)} ms`);
} finally {
  await emu.close();
}

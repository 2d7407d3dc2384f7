// The Helm chart deploy/helm/halb, checked by the real helm (built from the Go module proxy by
// test/upstream/build.sh): `helm lint`, and `helm template` renders what kustomize renders from
// deploy/ (the base and both overlays), object for object, apart from Helm's own labels. The
// monitoring switches render the Prometheus Operator objects, with the rules and dashboard of
// deploy/prometheus and deploy/grafana.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KUBECTL, requireKubectl } from '../kube/helpers.ts';
import { upstreamTool } from './upstream.ts';

const ROOT = join(import.meta.dirname, '../..');
const CHART = join(ROOT, 'deploy/helm/halb');
const NODE = join(ROOT, 'node_modules/node/bin/node');

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; [key: string]: unknown };
  [key: string]: unknown;
}
interface Container { image: string; imagePullPolicy?: string; args: string[]; resources: unknown }
interface Monitor extends Obj {
  spec: {
    selector: { matchLabels: Record<string, string> };
    namespaceSelector: unknown;
    endpoints: { port: string; honorLabels?: boolean }[];
  };
}
interface Rule { alert?: string; expr: string; labels?: Record<string, string> }

function run(file: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd: ROOT, timeout: 60_000, maxBuffer: 1 << 24 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

const parseObjects = (text: string): Obj[] =>
  parseAllDocuments(text).map((d) => d.toJSON() as Obj | null).filter((o): o is Obj => o !== null);

let helm: string;
beforeAll(async () => {
  helm = await upstreamTool('helm');
});

async function template(namespace: string, sets: string[] = []): Promise<Obj[]> {
  const r = await run(helm, ['template', 'halb', CHART, '--namespace', namespace, '--include-crds', ...sets.flatMap((s) => ['--set', s])]);
  expect(r.stderr, `helm template ${sets.join(' ')}`).toBe('');
  expect(r.code).toBe(0);
  return parseObjects(r.stdout);
}

async function kustomize(path: string): Promise<Obj[]> {
  requireKubectl();
  const r = await run(KUBECTL, ['kustomize', join(ROOT, path)]);
  expect(r.code, r.stderr).toBe(0);
  return parseObjects(r.stdout);
}

/** Labels Helm adds to what it renders; the rest of each object must equal kustomize's. */
const HELM_LABELS = ['app.kubernetes.io/instance', 'app.kubernetes.io/managed-by', 'app.kubernetes.io/version', 'helm.sh/chart'];

function withoutHelmLabels(o: Obj): Obj {
  const labels = Object.fromEntries(Object.entries(o.metadata.labels ?? {}).filter(([k]) => !HELM_LABELS.includes(k)));
  // Helm installs crds/ verbatim; kustomize labels the CRD like everything else.
  const keep = o.kind !== 'CustomResourceDefinition' && Object.keys(labels).length > 0;
  const { labels: _dropped, ...metadata } = o.metadata;
  return { ...o, metadata: keep ? { ...metadata, labels } : metadata };
}

const keyOf = (o: Obj) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
const byKey = (objs: Obj[]) => Object.fromEntries(objs.map((o) => [keyOf(o), withoutHelmLabels(o)]));

function expectSameObjects(chart: Obj[], kustomized: Obj[]): void {
  expect(chart.map(keyOf).sort()).toEqual(kustomized.map(keyOf).sort());
  const want = byKey(kustomized);
  for (const [key, got] of Object.entries(byKey(chart))) expect(got, key).toEqual(want[key]);
}

describe('helm lint', () => {
  it('passes with the defaults and with every switch on', async () => {
    const everything = ['metrics.serviceMonitor.enabled=true', 'metrics.nodeServiceMonitor.enabled=true',
      'metrics.prometheusRule.enabled=true', 'dashboard.enabled=true', 'watchNamespace=apps'];
    for (const sets of [[], everything]) {
      const r = await run(helm, ['lint', '--strict', CHART, ...sets.flatMap((s) => ['--set', s])]);
      expect(r.stdout + r.stderr, sets.join(' ')).toContain('1 chart(s) linted, 0 chart(s) failed');
      expect(r.code).toBe(0);
    }
  });
});

describe('helm template renders what kustomize renders', () => {
  it('the defaults: deploy/ (deploy/base), resource for resource', async () => {
    const chart = await template('halb-system');
    expect(chart.map(keyOf)).toContain('Namespace//halb-system');
    expectSameObjects(chart, await kustomize('deploy'));
    // Helm's labels are there, on every object but the CRD.
    for (const o of chart.filter((c) => c.kind !== 'CustomResourceDefinition')) {
      expect(o.metadata.labels, keyOf(o)).toMatchObject({ 'app.kubernetes.io/managed-by': 'Helm', 'app.kubernetes.io/instance': 'halb' });
    }
  });

  it('watchNamespace: deploy/overlays/namespaced', async () => {
    expectSameObjects(await template('halb-system', ['watchNamespace=apps']), await kustomize('deploy/overlays/namespaced'));
  });

  it('createNamespace=false: deploy/overlays/existing-namespace', async () => {
    expectSameObjects(await template('platform', ['createNamespace=false']), await kustomize('deploy/overlays/existing-namespace'));
  });

  it('the CRD is crds/haloadbalancer.yaml', async () => {
    const crd = (await template('halb-system')).find((o) => o.kind === 'CustomResourceDefinition');
    expect(crd).toEqual(parse(readFileSync(join(ROOT, 'crds/haloadbalancer.yaml'), 'utf8')));
  });
});

describe('values', () => {
  const deployment = (objs: Obj[]) => objs.find((o) => o.kind === 'Deployment') as Obj & {
    spec: { replicas: number; template: { spec: { containers: Container[] } } };
  };

  it('image, replicas and resources', async () => {
    const d = deployment(await template('halb-system', [
      'image.repository=registry.example.com/halb', 'image.tag=0.2.0', 'image.pullPolicy=Always', 'replicas=3',
      'resources.limits.memory=512Mi',
    ]));
    expect(d.spec.replicas).toBe(3);
    const c = d.spec.template.spec.containers[0]!;
    expect(c.image).toBe('registry.example.com/halb:0.2.0');
    expect(c.imagePullPolicy).toBe('Always');
    expect(c.resources).toEqual({ requests: { cpu: '50m', memory: '128Mi' }, limits: { cpu: '500m', memory: '512Mi' } });
  });

  it('operator flags become arguments that `halb operator --help` lists', async () => {
    const sets = ['operator.resync=10', 'operator.backstopGrace=45', 'operator.concurrency=8', 'operator.logLevel=debug',
      'operator.metricsPort=9090', 'operator.extraArgs={--lease-namespace=halb-system}'];
    const d = deployment(await template('halb-system', sets));
    const args = d.spec.template.spec.containers[0]!.args;
    expect(args).toEqual(['operator', '--metrics-port=9090', '--resync=10', '--backstop-grace=45', '--concurrency=8', '--log-level=debug',
      '--lease-namespace=halb-system']);
    const help = await run(NODE, ['src/cli/main.ts', 'operator', '--help']);
    for (const a of args.slice(1)) expect(help.stdout, a).toContain(`  ${a.split('=')[0]}`);
  });

  it('the Service class is passed only when set (the Service controller of issue 19 takes it)', async () => {
    const none = deployment(await template('halb-system')).spec.template.spec.containers[0]!.args;
    expect(none.some((a) => a.startsWith('--load-balancer-class'))).toBe(false);
    const withClass = await template('halb-system', ['operator.loadBalancerClass=halb.dev/haproxy']);
    const set = deployment(withClass).spec.template.spec.containers[0]!.args;
    expect(set).toContain('--load-balancer-class=halb.dev/haproxy');
  });
});

describe('monitoring switches', () => {
  let scratch: string;
  beforeAll(() => { scratch = mkdtempSync(join(tmpdir(), 'halb-helm-')); });
  afterAll(() => { rmSync(scratch, { recursive: true, force: true }); });

  const ALL_ON = ['metrics.serviceMonitor.enabled=true', 'metrics.podMonitor.enabled=true', 'metrics.nodeServiceMonitor.enabled=true',
    'metrics.prometheusRule.enabled=true', 'dashboard.enabled=true', 'metrics.labels.release=kube-prometheus-stack'];

  it('off by default: no monitoring.coreos.com object, no dashboard', async () => {
    const objs = await template('halb-system');
    expect(objs.filter((o) => o.apiVersion.startsWith('monitoring.coreos.com/') || o.kind === 'ConfigMap')).toEqual([]);
  });

  it('ServiceMonitor and PodMonitor for the operator, a ServiceMonitor for the nodes, with the given labels', async () => {
    const objs = await template('halb-system', ALL_ON);
    const monitors = objs.filter((o) => o.kind === 'ServiceMonitor' || o.kind === 'PodMonitor');
    expect(monitors.map((o) => `${o.kind}/${o.metadata.name}`).sort())
      .toEqual(['PodMonitor/halb-operator', 'ServiceMonitor/halb-nodes', 'ServiceMonitor/halb-operator']);
    for (const m of monitors) expect(m.metadata.labels?.release, m.metadata.name).toBe('kube-prometheus-stack');
    const operator = monitors.find((o) => o.kind === 'ServiceMonitor' && o.metadata.name === 'halb-operator') as Monitor;
    const service = objs.find((o) => o.kind === 'Service') as Obj & { spec: { ports: { name: string }[] } };
    // The selector picks the operator's metrics Service, by its labels and port name.
    for (const [k, v] of Object.entries(operator.spec.selector.matchLabels)) expect(service.metadata.labels?.[k]).toBe(v);
    expect(service.spec.ports.map((p) => p.name)).toContain(operator.spec.endpoints[0]!.port);
    // halb_node_* series carry the HALoadBalancer's namespace, which the target's must not rename.
    expect(operator.spec.endpoints[0]).toMatchObject({ honorLabels: true });
    const nodes = monitors.find((o) => o.metadata.name === 'halb-nodes') as Monitor;
    expect(nodes.spec.selector).toEqual({ matchLabels: { 'halb.dev/metrics': 'haproxy' } });
    expect(nodes.spec.namespaceSelector).toEqual({ any: true });
    expect(nodes.spec.endpoints[0]!.port).toBe('haproxy-metrics');
    const scopedObjs = await template('halb-system', [...ALL_ON, 'watchNamespace=apps']);
    const scoped = scopedObjs.find((o) => o.metadata.name === 'halb-nodes') as Monitor;
    expect(scoped.spec.namespaceSelector).toEqual({ matchNames: ['apps'] });
  });

  it('the PrometheusRule holds deploy/prometheus/halb-rules.yaml, which promtool accepts', async () => {
    const rule = (await template('halb-system', ALL_ON)).find((o) => o.kind === 'PrometheusRule') as Obj & { spec: { groups: unknown } };
    const plain = parse(readFileSync(join(ROOT, 'deploy/prometheus/halb-rules.yaml'), 'utf8')) as { groups: unknown };
    expect(rule.spec.groups).toEqual(plain.groups);
    const file = join(scratch, 'rules.yaml');
    writeFileSync(file, JSON.stringify({ groups: rule.spec.groups }));
    const check = await run('promtool', ['check', 'rules', file]);
    expect(check.stdout + check.stderr).toContain('SUCCESS: 9 rules found');
  });

  it('flappingFailovers and alertLabels change the rules', async () => {
    const objs = await template('halb-system', [...ALL_ON, 'metrics.prometheusRule.flappingFailovers=5',
      'metrics.prometheusRule.alertLabels.team=edge']);
    const rule = objs.find((o) => o.kind === 'PrometheusRule') as Obj & { spec: { groups: { rules: Rule[] }[] } };
    const rules = rule.spec.groups.flatMap((g) => g.rules);
    expect(rules.find((r) => r.alert === 'HalbFailoverFlapping')!.expr.trim()).toMatch(/\[10m\]\)\) >= 5$/);
    for (const r of rules) expect(r.labels, r.alert).toMatchObject({ team: 'edge', severity: expect.any(String) });
  });

  it('the dashboard ConfigMap carries deploy/grafana/halb-dashboard.json and the sidecar label', async () => {
    const objs = await template('halb-system', [...ALL_ON, 'dashboard.namespace=monitoring']);
    const cm = objs.find((o) => o.kind === 'ConfigMap') as Obj & { data: Record<string, string> };
    expect(cm.metadata.namespace).toBe('monitoring');
    expect(cm.metadata.labels?.grafana_dashboard).toBe('1');
    expect(JSON.parse(cm.data['halb.json']!)).toEqual(JSON.parse(readFileSync(join(ROOT, 'deploy/grafana/halb-dashboard.json'), 'utf8')));
  });

  it("the chart's copies of the rules and the dashboard are the files in deploy/prometheus and deploy/grafana", () => {
    // Helm reads no file outside the chart: it carries copies. Copy the file when this fails.
    const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
    expect(read('deploy/helm/halb/files/halb-rules.yaml')).toBe(read('deploy/prometheus/halb-rules.yaml'));
    expect(read('deploy/helm/halb/dashboards/halb.json')).toBe(read('deploy/grafana/halb-dashboard.json'));
  });
});

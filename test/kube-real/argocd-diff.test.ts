// Argo CD's diff of a synced HALoadBalancer, computed by Argo CD's own code (halb-argocd diff:
// argo-cd's util/argo/diff over gitops-engine's three-way diff, Argo CD 3's defaults) between each
// example's manifest and the object as the real kube-apiserver returns it after a sync: applied
// as Argo CD applies (kubectl's client-side apply, with Argo CD's tracking annotation), then
// reconciled by the operator (finalizer, status). Argo CD must see it in sync.
//
// Defaults the CRD fills inside list items are drift for a three-way merge patch, which replaces
// a list whole: while the CRD has such defaults, the test names each as the known drift and fails
// on anything else; once it has none, any difference fails.
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments, parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCRD } from '../../src/api/crd.ts';
import { startDigitalOceanSimulator, type DigitalOceanSimulator } from '../../src/sandbox/digitalocean/simulator.ts';
import { applyAsAdmin, installOperatorIdentity, type OperatorIdentity } from '../../src/sandbox/kube-real/identity.ts';
import { upstreamBinaries, upstreamBuilt } from '../../src/sandbox/kube-real/upstream.ts';
import { waitFor } from '../wait.ts';
import {
  realKubeBuilt, ROOT, SKIP_REASON, startControlPlane, startOperatorProcess, type ControlPlane, type OperatorProcess,
} from './helpers.ts';

const built = realKubeBuilt() && (process.env.HALB_KUBE === 'real' || upstreamBuilt(['halb-argocd']));
if (!built) console.log(`skipped: ${SKIP_REASON}, or halb-argocd is not (test/upstream/build.sh halb-argocd)`);

interface Schema { properties?: Record<string, Schema>; items?: Schema; default?: unknown }

/** Paths ("spec.backends[].port") of the defaults the CRD fills inside list items. */
function listItemDefaults(schema: Schema, path = '', inList = false): string[] {
  const here = inList && schema.default !== undefined ? [path] : [];
  const props = Object.entries(schema.properties ?? {}).flatMap(([k, s]) => listItemDefaults(s, path ? `${path}.${k}` : k, inList));
  return [...here, ...props, ...(schema.items ? listItemDefaults(schema.items, `${path}[]`, true) : [])];
}

/** Every leaf path where two JSON values differ, list indexes written as []. */
function differences(a: unknown, b: unknown, path = ''): string[] {
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  const isObject = (v: unknown) => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) return a.flatMap((x, i) => differences(x, b[i], `${path}[]`));
  if (isObject(a) && isObject(b)) {
    const keys = new Set([...Object.keys(a as object), ...Object.keys(b as object)]);
    return [...keys].flatMap((k) =>
      differences((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], path ? `${path}.${k}` : k));
  }
  return [path];
}

function argocdDiff(config: string, live: string): Promise<{ modified: boolean; normalizedLive: unknown; predictedLive: unknown }> {
  const { 'halb-argocd': binary } = upstreamBinaries(['halb-argocd']);
  return new Promise((resolve, reject) => {
    execFile(binary, ['diff', config, live], { timeout: 30_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`halb-argocd diff failed: ${stderr || err.message}`));
      resolve(JSON.parse(stdout) as { modified: boolean; normalizedLive: unknown; predictedLive: unknown });
    });
  });
}

describe.skipIf(!built)('Argo CD\'s diff of a synced HALoadBalancer on the real kube-apiserver', () => {
  let cp: ControlPlane;
  let digitalocean: DigitalOceanSimulator;
  let identity: OperatorIdentity;
  let operator: OperatorProcess;
  const crd = buildCRD() as unknown as { spec: { versions: { schema: { openAPIV3Schema: Schema } }[] } };
  const knownDrift = listItemDefaults(crd.spec.versions[0]!.schema.openAPIV3Schema);

  beforeAll(async () => {
    cp = await startControlPlane();
    digitalocean = await startDigitalOceanSimulator({ host: '127.0.0.1', port: 0, delays: { dropletActiveMs: 3_600_000 } });
    await applyAsAdmin(cp.kube, [crd as unknown as Record<string, unknown>]);
    await cp.kubectl(['wait', '--for=condition=Established', 'crd/haloadbalancers.halb.dev', '--timeout=60s']);
    identity = await installOperatorIdentity(cp.kube, cp.dir, 'base');
    operator = startOperatorProcess({
      kubeconfig: identity.kubeconfig, leaseNamespace: identity.namespace, doEndpoint: digitalocean.endpoint,
    });
  }, 180_000);
  afterAll(async () => {
    await operator?.stop();
    await digitalocean?.close();
    await cp?.close();
  }, 60_000);

  const examples = readdirSync(join(ROOT, 'examples')).filter((f) => f.endsWith('.yaml')).sort();
  it.each(examples)('examples/%s, synced and reconciled, is in sync for Argo CD', async (file) => {
    const docs = parseAllDocuments(readFileSync(join(ROOT, 'examples', file), 'utf8'))
      .map((d) => d.toJS() as { kind: string; metadata: { name: string; annotations?: Record<string, string> } });
    const objects = docs.filter((d) => d.kind === 'HALoadBalancer');
    if (!objects.length) return;
    for (const manifest of objects) {
      // What Argo CD applies: the manifest with its tracking annotation (annotation tracking, the
      // default of Argo CD 3), through kubectl's client-side apply.
      const name = manifest.metadata.name;
      manifest.metadata.annotations = {
        ...manifest.metadata.annotations, 'argocd.argoproj.io/tracking-id': `halb-objects:halb.dev/HALoadBalancer:default/${name}`,
      };
      const config = join(cp.dir, `${name}.config.yaml`);
      writeFileSync(config, stringify(manifest));
      const applied = await cp.kubectl(['apply', '-f', config]);
      expect(applied.code, applied.stderr).toBe(0);
      // The operator has been at it: finalizer added, status written.
      const live = await waitFor(`${name} reconciled`, async () => {
        const r = await cp.kubectl(['get', 'halb', name, '-o', 'json']);
        const obj = r.code === 0
          ? JSON.parse(r.stdout) as { metadata: { finalizers?: string[] }; status?: { conditions?: unknown[] } }
          : undefined;
        return obj?.metadata.finalizers?.length && obj.status?.conditions?.length ? r.stdout : undefined;
      }, 30_000, 250);
      const livePath = join(cp.dir, `${name}.live.json`);
      writeFileSync(livePath, live);
      const result = await argocdDiff(config, livePath);
      const drift = differences(result.normalizedLive, result.predictedLive);
      if (!knownDrift.length) {
        expect({ modified: result.modified, drift }, `${file}: Argo CD sees ${name} out of sync`).toEqual({ modified: false, drift: [] });
      } else {
        const unexplained = drift.filter((p) => !knownDrift.includes(p));
        expect(unexplained, `${file}: differences other than the CRD's list-item defaults`).toEqual([]);
        if (drift.length) console.log(`${file}: ${name}: known drift from list-item defaults: ${drift.join(', ')}`);
      }
    }
    await cp.kubectl(['delete', '-f', join(ROOT, 'examples', file), '--wait=false']);
  }, 90_000);

  it('is the diff Argo CD computes: a changed manifest is out of sync, naming the field', async () => {
    const basic = readFileSync(join(ROOT, 'examples/basic.yaml'), 'utf8').split(/^---$/m).find((d) => d.includes('kind: HALoadBalancer'))!;
    const manifest = parse(basic) as { metadata: { name: string }; spec: { droplets?: { count?: number } } };
    manifest.metadata.name = 'edited';
    writeFileSync(join(cp.dir, 'edited.yaml'), stringify(manifest));
    expect((await cp.kubectl(['apply', '-f', join(cp.dir, 'edited.yaml')])).code).toBe(0);
    const live = (await cp.kubectl(['get', 'halb', 'edited', '-o', 'json'])).stdout;
    writeFileSync(join(cp.dir, 'edited.live.json'), live);
    manifest.spec.droplets = { ...manifest.spec.droplets, count: 3 };
    writeFileSync(join(cp.dir, 'edited.yaml'), stringify(manifest));
    const result = await argocdDiff(join(cp.dir, 'edited.yaml'), join(cp.dir, 'edited.live.json'));
    expect(result.modified).toBe(true);
    expect(differences(result.normalizedLive, result.predictedLive)).toContain('spec.droplets.count');
  }, 60_000);
});

// How long rendering takes: the seed tutorial, and the largest spec the schema allows
// (5 nodes, 32 frontends, 64 backends of 100 servers). Prints figures; asserts nothing.
// Run: npx node bench/render.ts
import { performance } from 'node:perf_hooks';
import { loadAndValidate } from '../src/api/manifests.ts';
import { validateHALoadBalancer } from '../src/api/validate.ts';
import type { HALoadBalancer, SecretData } from '../src/api/types.ts';
import { defaultSettings, placeholderFacts, renderNodes } from '../src/render/render.ts';

const token: SecretData = { name: 'do-api', data: { token: 'dop_v1_0123456789abcdef' } };

function largest(): HALoadBalancer {
  const input = {
    apiVersion: 'halb.dev/v1alpha1', kind: 'HALoadBalancer', metadata: { name: 'big', uid: 'bench' },
    spec: {
      region: 'nyc3',
      droplets: { count: 5 },
      credentials: { tokenSecretRef: { name: 'do-api', key: 'token' }, sshKeySecretRef: { name: 'halb-ssh', key: 'k' } },
      frontends: Array.from({ length: 32 }, (_, f) => ({
        name: `f${f}`, port: 1000 + f, protocol: 'http', defaultBackend: `b${f}`,
        routes: Array.from({ length: 100 }, (_, r) => ({ pathPrefix: `/r${r}/`, backend: `b${(f + r) % 64}` })),
      })),
      backends: Array.from({ length: 64 }, (_, b) => ({
        name: `b${b}`, maxconnPerServer: 50, healthCheck: { protocol: 'http', path: '/health' },
        servers: Array.from({ length: 100 }, (_, s) => ({ name: `s${s}`, address: `10.${b}.${s >> 8}.${(s & 255) + 1}` })),
      })),
    },
  };
  const { object, problems } = validateHALoadBalancer(input);
  if (!object) throw new Error(JSON.stringify(problems.slice(0, 3)));
  return object;
}

function measure(label: string, lb: HALoadBalancer, secrets: SecretData[], rounds: number): void {
  const settings = defaultSettings();
  const observed = placeholderFacts(lb);
  renderNodes({ lb, secrets, observed, settings }); // warm-up
  const started = performance.now();
  let bytes = 0;
  for (let i = 0; i < rounds; i++) {
    for (const node of renderNodes({ lb, secrets, observed, settings })) for (const file of node.files) bytes += file.content.length;
  }
  const ms = (performance.now() - started) / rounds;
  const nodes = lb.spec.droplets.count;
  console.log(`${label}: ${ms.toFixed(2)} ms per render of ${nodes} nodes (${(ms / nodes).toFixed(2)} ms per node), ` +
    `${Math.round(bytes / rounds / nodes / 1024)} KiB per node, ${rounds} rounds`);
}

const seed = loadAndValidate(['examples/seed-tutorial.yaml']);
measure('seed tutorial', seed.loadBalancers[0]!.object, seed.secrets, 500);
measure('largest spec (32 frontends x 100 routes, 64 backends x 100 servers)', largest(), [token], 20);

// Manifest loading and validation time against input size: a manifest whose spec carries N
// unknown keys (the shape that was quadratic), at N = 25,000, 50,000 and 100,000 (1.4 MB). Linear
// work doubles with N; the reference is the examples, validated in the same run.
// Run: npm run bench:validate
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAndValidate } from '../src/api/manifests.ts';

const dir = mkdtempSync(join(tmpdir(), 'halb-bench-validate-'));

function manifest(keys: number): string {
  const extra = Array.from({ length: keys }, (_, i) => `    k${i}: on`).join('\n');
  return `apiVersion: halb.dev/v1alpha1
kind: HALoadBalancer
metadata: {name: web}
spec:
  region: nyc3
  credentials:
    tokenSecretRef: {name: do-api, key: token}
    sshKeySecretRef: {name: halb-ssh, key: ssh-privatekey}
  frontends: [{name: www, port: 80, defaultBackend: web}]
  backends: [{name: web, servers: [{name: s1, address: 10.10.0.21}]}]
  extra:
${extra}
`;
}

function best(run: () => void, times = 3): number {
  let fastest = Infinity;
  for (let i = 0; i < times; i++) {
    const started = performance.now();
    run();
    fastest = Math.min(fastest, performance.now() - started);
  }
  return fastest;
}

try {
  const examples = readdirSync('examples').filter((f) => f.endsWith('.yaml')).map((f) => join('examples', f));
  const reference = best(() => loadAndValidate(examples), 5);
  console.log(`reference: the ${examples.length} examples validate in ${reference.toFixed(1)} ms`);
  let previous: number | undefined;
  for (const keys of [25_000, 50_000, 100_000]) {
    const file = join(dir, `keys-${keys}.yaml`);
    const text = manifest(keys);
    writeFileSync(file, text);
    const ms = best(() => loadAndValidate([file]));
    const ratio = previous === undefined ? '' : `, ${(ms / previous).toFixed(2)}x the half-size input (linear: about 2x)`;
    console.log(`${keys} keys, ${(text.length / 1e6).toFixed(2)} MB: ${ms.toFixed(0)} ms${ratio}`);
    previous = ms;
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

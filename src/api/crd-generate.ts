// `npm run crds` writes the generated files; `npm run crds:check` fails when they are stale.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderCRDYAML } from './crd.ts';
import { renderTypes } from './typegen.ts';
import { renderAPIReference } from './reference.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const outputs: Record<string, string> = {
  'crds/haloadbalancer.yaml': renderCRDYAML(),
  // A copy inside deploy/: kustomize's load restrictor refuses files outside a kustomization's
  // root, so `kubectl apply -k deploy/` cannot reach ../crds/.
  'deploy/base/crd/haloadbalancer.yaml': renderCRDYAML(),
  // And one in the Helm chart, whose crds/ folder helm installs before the templates.
  'deploy/helm/halb/crds/haloadbalancer.yaml': renderCRDYAML(),
  'src/api/types.generated.ts': renderTypes(),
  'docs/api-reference.md': renderAPIReference(),
};

const mode = process.argv[2];
let stale = 0;
for (const [path, content] of Object.entries(outputs)) {
  let current: string | undefined;
  try { current = readFileSync(root + path, 'utf8'); } catch { current = undefined; }
  if (current === content) continue;
  if (mode === '--write') {
    writeFileSync(root + path, content);
    console.log(`wrote ${path}`);
  } else {
    console.error(`${path} is stale: run npm run crds`);
    stale++;
  }
}
process.exit(stale ? 1 : 0);

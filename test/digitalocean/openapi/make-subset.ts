// Regenerates digitalocean-subset.json from the bundled spec:
//   npx node test/digitalocean/openapi/make-subset.ts [path/to/DigitalOcean-public.v2.bundled.yaml]
import { readFileSync, writeFileSync } from 'node:fs';
import { parse } from 'yaml';
import { startDigitalOceanSimulator } from '../../../src/sandbox/digitalocean/simulator.ts';
import { extractSubset } from './subset.ts';

const source = process.argv[2] ?? process.env.HALB_DO_OPENAPI ??
  new URL('../../../../shared/digitalocean-openapi/DigitalOcean-public.v2.bundled.yaml', import.meta.url).pathname;
const sim = await startDigitalOceanSimulator();
const templates = sim.routes.map((r) => r.template);
await sim.close();
const subset = extractSubset(parse(readFileSync(source, 'utf8')), templates);
const target = new URL('./digitalocean-subset.json', import.meta.url);
writeFileSync(target, `${JSON.stringify(subset, null, 1)}\n`);
console.log(`wrote ${target.pathname} from ${source}`);

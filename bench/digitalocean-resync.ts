// Requests per resync for 1, 100 and 1,000 HALoadBalancers (2 droplets and 1 reserved IP each):
// the provider observes all of them with two paginated lists, so the count grows with pages
// (200 items each), not with objects. Run: npx node bench/digitalocean-resync.ts
import { DigitalOceanProvider } from '../src/digitalocean/provider.ts';
import { COMMON_TAG, nodeTag, uidTag } from '../src/digitalocean/naming.ts';
import { startDigitalOceanSimulator } from '../src/sandbox/digitalocean/simulator.ts';

const NODES_PER_OBJECT = 2;
const rows: string[] = [];
for (const objects of [1, 100, 1000]) {
  // Data only: the simulator sends no packets; 2,000 droplets need more than a /24.
  const sim = await startDigitalOceanSimulator({
    addressing: { publicCidr: '10.200.0.0/16', reservedCidr: '10.201.0.0/16' },
    reservedIpLimit: objects,
    dropletLimit: objects * NODES_PER_OBJECT + 100,
  });
  try {
    for (let i = 0; i < objects; i++) {
      const ids: number[] = [];
      for (let n = 0; n < NODES_PER_OBJECT; n++) {
        ids.push(sim.state.seedDroplet({ name: `lb${i}-${n}`, tags: [COMMON_TAG, uidTag(`uid-${i}`), nodeTag(n)] }).id);
      }
      sim.state.seedReservedIp({ dropletId: ids[0]! });
    }
    const provider = new DigitalOceanProvider({ token: 'dop_v1_bench', endpoint: sim.endpoint, rateLimitReserve: 0 });
    const started = performance.now();
    const inventory = await provider.observe();
    const ms = performance.now() - started;
    const seen = [...inventory.nodesByUid.values()].reduce((n, l) => n + l.length, 0);
    if (inventory.nodesByUid.size !== objects || seen !== objects * NODES_PER_OBJECT || inventory.reservedIps.length !== objects) {
      throw new Error(`observe() saw ${inventory.nodesByUid.size} objects, ${seen} droplets, ${inventory.reservedIps.length} reserved IPs`);
    }
    const pages = Math.ceil((objects * NODES_PER_OBJECT) / 200) + Math.ceil(objects / 200);
    rows.push(
      [
        String(objects).padStart(7), String(objects * NODES_PER_OBJECT).padStart(8), String(objects).padStart(12),
        String(provider.client.stats.requests).padStart(8), String(pages).padStart(6), ms.toFixed(0).padStart(9),
      ].join('  '),
    );
  } finally {
    await sim.close();
  }
}
console.log('DigitalOcean requests per resync (one list of droplets by the common tag, one list of reserved IPs)');
console.log(' objects  droplets  reserved_ips  requests  pages  wall_ms');
for (const r of rows) console.log(r);

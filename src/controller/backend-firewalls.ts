// restrictToLoadBalancers: one Cloud Firewall per such backend, admitting its port only from
// the load-balancer droplets; firewalls of backends that no longer ask for one are removed.
import type { HALoadBalancer } from '../api/types.ts';
import type { DigitalOceanProvider } from '../digitalocean/provider.ts';
import type { PassContext } from './context.ts';

/**
 * The spec generation whose backend firewalls were last reconciled, per object UID. Listing
 * firewalls costs requests: it is done while a backend wants a firewall (drift), and otherwise
 * once per generation (to prune what a backend no longer asks for). Forgotten on restart, which
 * costs one list.
 */
export class FirewallGenerations {
  private readonly synced = new Map<string, number>();

  isSynced(uid: string, generation: number): boolean {
    return this.synced.get(uid) === generation;
  }

  markSynced(uid: string, generation: number): void {
    this.synced.set(uid, generation);
  }

  forget(uid: string): void {
    this.synced.delete(uid);
  }
}

export async function reconcileBackendFirewalls(ctx: PassContext, object: HALoadBalancer, provider: DigitalOceanProvider): Promise<void> {
  const uid = object.metadata.uid ?? '';
  const generation = object.metadata.generation ?? 0;
  const wanted = object.spec.backends.filter((b) => b.restrictToLoadBalancers && b.dropletTag);
  if (!wanted.length && ctx.firewallGenerations.isSynced(uid, generation)) return;
  const existing = await ctx.shared.firewallList(provider);
  let changed = false;
  for (const backend of wanted) {
    const result = await provider.ensureBackendFirewall(
      { uid, backend: backend.name, backendTag: backend.dropletTag, port: backend.port }, existing);
    if (!result.changed) continue;
    changed = true;
    await ctx.events.record(object, 'Normal', 'FirewallApplied',
      `Cloud Firewall on tag ${backend.dropletTag} admits port ${backend.port} only from the load balancers`);
    ctx.log.info({ backend: backend.name, tag: backend.dropletTag, firewall: result.id }, 'applied backend firewall');
  }
  const pruned = await provider.pruneBackendFirewalls(uid, wanted.map((b) => b.name), existing);
  for (const id of pruned) ctx.log.info({ firewall: id }, 'removed backend firewall');
  if (changed || pruned.length) ctx.shared.forgetFirewalls(provider);
  ctx.firewallGenerations.markSynced(uid, generation);
}

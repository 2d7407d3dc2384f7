// Deletion: the reserved IP per reclaimPolicy, the droplets, the backend firewalls, then the
// finalizer. Each pass does what it can and looks again while DigitalOcean is busy; the
// finalizer goes only once DigitalOcean lists nothing of the object's.
import { secretValue } from '../api/secrets.ts';
import type { HALoadBalancer } from '../api/types.ts';
import type { DigitalOceanProvider, Inventory, NodeDroplet } from '../digitalocean/provider.ts';
import { uidTag } from '../digitalocean/naming.ts';
import type { PassContext } from './context.ts';
import { decodeSecret } from './secrets.ts';
import type { PassResult } from './reconciler.ts';

export const FINALIZER = 'halb.dev/cleanup';

/** How soon to look again while DigitalOcean finishes what deletion asked for. */
const DELETION_REQUEUE_MS = 1000;
/** How soon to look again for a missing token Secret. */
const TOKEN_RECHECK_MS = 30_000;

export async function finalize(ctx: PassContext, object: HALoadBalancer): Promise<PassResult> {
  if (!object.metadata.finalizers?.includes(FINALIZER)) return {};
  const token = operatorToken(ctx, object);
  if (!token) {
    // Without a token nothing can be cleaned up; say so and keep the finalizer.
    const secret = object.spec.credentials.tokenSecretRef.name;
    await ctx.events.record(object, 'Warning', 'CleanupBlocked', `cannot delete droplets: Secret ${secret} is missing`);
    return { requeueAfterMs: TOKEN_RECHECK_MS };
  }
  const provider = ctx.cloud(token);
  ctx.shared.forgetInventory(provider);
  const inventory = await ctx.shared.inventory(provider);
  const uid = object.metadata.uid ?? '';
  const droplets = inventory.nodesByUid.get(uid) ?? [];
  if (await releaseReservedIP(ctx, object, provider, inventory, droplets) === 'busy') return { requeueAfterMs: DELETION_REQUEUE_MS };
  for (const droplet of droplets) {
    await provider.deleteDroplet(droplet.id);
    await ctx.events.record(object, 'Normal', 'DropletDeleted', `deleted droplet ${droplet.name} (id ${droplet.id})`);
  }
  await provider.pruneBackendFirewalls(uid, []);
  ctx.shared.forgetInventory(provider);
  ctx.shared.forgetFirewalls(provider);
  // Nothing of ours may remain before the finalizer goes.
  const after = (await provider.observe()).nodesByUid.get(uid) ?? [];
  if (after.length) return { requeueAfterMs: DELETION_REQUEUE_MS };
  await ctx.kube.setFinalizers(object, (object.metadata.finalizers ?? []).filter((f) => f !== FINALIZER));
  ctx.firewallGenerations.forget(uid);
  ctx.vrrpWatches?.keepOnly(`${object.metadata.namespace ?? 'default'}/${object.metadata.name}`, new Set());
  ctx.log.info({ tag: uidTag(uid) }, 'cleaned up and removed finalizer');
  return {};
}

function operatorToken(ctx: PassContext, object: HALoadBalancer): string | undefined {
  const ref = object.spec.credentials.tokenSecretRef;
  const secret = ctx.secrets.get(object.metadata.namespace ?? 'default', ref.name);
  return secret ? secretValue(decodeSecret(secret), ref.key) : undefined;
}

/** reclaimPolicy Delete releases the address; Retain takes it off the droplets and keeps it. */
async function releaseReservedIP(ctx: PassContext, object: HALoadBalancer, provider: DigitalOceanProvider, inventory: Inventory,
  droplets: readonly NodeDroplet[]): Promise<'busy' | 'done'> {
  const ip = object.spec.floatingIP.address ||
    droplets.map((d) => inventory.reservedIpByDroplet.get(d.id)?.ip).find((x) => x) ||
    object.status?.floatingIP;
  const reserved = ip ? inventory.reservedIpByAddress.get(ip) : undefined;
  if (!reserved) return 'done';
  if (reserved.locked) return 'busy';
  if (object.spec.floatingIP.reclaimPolicy === 'Delete') {
    if (await provider.requestDeleteReservedIp(reserved.ip) === 'busy') return 'busy';
    await ctx.events.record(object, 'Normal', 'ReservedIPDeleted', `deleted reserved IP ${reserved.ip} (reclaimPolicy Delete)`);
    return 'done';
  }
  if (reserved.dropletId === null) return 'done';
  const unassign = await provider.requestUnassign(reserved.ip);
  if (unassign.outcome === 'busy') return 'busy';
  await ctx.events.record(object, 'Normal', 'ReservedIPRetained', `kept reserved IP ${reserved.ip} (reclaimPolicy Retain)`);
  // Started: the next pass finds it unassigned (or still locked) and goes on.
  return unassign.outcome === 'started' ? 'busy' : 'done';
}

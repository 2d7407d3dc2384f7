// Account-wide DigitalOcean lists shared by every object: one inventory (LB droplets and
// reserved IPs) and one firewall list per token serve all reconciles for a while, so a resync
// costs requests per page, not per object.
import type { ApiFirewall } from '../digitalocean/firewalls.ts';
import type { DigitalOceanProvider, Inventory } from '../digitalocean/provider.ts';
import type { Clock } from './context.ts';

/** How long an inventory is reused per page it cost: at most one list page every 2 s. */
const INVENTORY_MS_PER_PAGE = 2000;

/**
 * How long one DigitalOcean inventory is shared across objects. Looking again costs a request
 * per page (200 droplets or reserved IPs), so a large account reuses it longer: at most about
 * one page every 2 s, whatever the number of objects (at 1,000 objects, 15 pages: one inventory
 * per 15 s instead of one per 2 s, which alone would be 450 requests a minute, over the 250
 * DigitalOcean allows). Never longer than half the backstop grace, so the reserved IP's holder
 * the backstop acts on was read after the grace began. `floorMs` (inventoryMaxAgeMs) wins.
 */
export function inventoryMaxAgeMs(pages: number, floorMs: number, backstopGraceMs: number): number {
  return Math.max(floorMs, Math.min(pages * INVENTORY_MS_PER_PAGE, backstopGraceMs / 2));
}

interface SharedRead<T> { at: number; value: Promise<T>; maxAgeMs: number }

export class SharedReads {
  private readonly inventories = new Map<DigitalOceanProvider, SharedRead<Inventory>>();
  private readonly firewalls = new Map<DigitalOceanProvider, SharedRead<ApiFirewall[]>>();
  private readonly neighbors = new Map<DigitalOceanProvider, SharedRead<number[][]>>();
  private readonly clock: Clock;
  private readonly floorMs: number;
  private readonly backstopGraceMs: number;

  constructor(options: { clock: Clock; floorMs?: number; backstopGraceMs: number }) {
    this.clock = options.clock;
    this.floorMs = options.floorMs ?? 2000;
    this.backstopGraceMs = options.backstopGraceMs;
  }

  inventory(provider: DigitalOceanProvider): Promise<Inventory> {
    return this.read(this.inventories, provider, () => provider.observe(), (inventory) => inventory.pages);
  }

  /** Every firewall of the account (a backend firewall's name carries its owner's UID). */
  firewallList(provider: DigitalOceanProvider): Promise<ApiFirewall[]> {
    return this.read(this.firewalls, provider, () => provider.listFirewalls(), (list) => Math.max(1, Math.ceil(list.length / 200)));
  }

  /** Which of the account's droplets share a physical machine. Placement changes only when
   *  droplets come and go (which forgets it), so it is kept as long as the cache allows. */
  neighborGroups(provider: DigitalOceanProvider): Promise<number[][]> {
    return this.read(this.neighbors, provider, () => provider.neighborGroups(), () => Number.MAX_SAFE_INTEGER);
  }

  /** Something was created, deleted or moved: the next read goes to DigitalOcean. */
  forgetInventory(provider: DigitalOceanProvider): void {
    this.inventories.delete(provider);
    this.neighbors.delete(provider);
  }

  forgetFirewalls(provider: DigitalOceanProvider): void {
    this.firewalls.delete(provider);
  }

  /** One read of an account-wide list serves every object for a while: longer the more pages
   *  it cost (inventoryMaxAgeMs). A failed read is forgotten at once. */
  private read<T>(
    cache: Map<DigitalOceanProvider, SharedRead<T>>, provider: DigitalOceanProvider, load: () => Promise<T>, pages: (value: T) => number,
  ): Promise<T> {
    const now = this.clock.now().getTime();
    const cached = cache.get(provider);
    if (cached && now - cached.at < cached.maxAgeMs) return cached.value;
    const value = load();
    const entry: SharedRead<T> = { at: now, value, maxAgeMs: this.floorMs };
    cache.set(provider, entry);
    value.then(
      (v) => { entry.maxAgeMs = inventoryMaxAgeMs(pages(v), this.floorMs, this.backstopGraceMs); },
      () => { if (cache.get(provider) === entry) cache.delete(provider); },
    );
    return value;
  }
}

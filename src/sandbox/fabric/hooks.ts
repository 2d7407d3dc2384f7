// What the DigitalOcean simulator calls when its state changes, so the fabric follows: droplets
// appear, power off and on, disappear; reserved IPs move the moment an assign action completes.
import { allocateDropletAddresses, type DropletAddresses } from './addresses.ts';
import type { Fabric } from './fabric.ts';

export interface SimulatedDroplet {
  id: number;
  name: string;
  publicIPv4: string;
  anchorIPv4: string;
  privateIPv4: string;
  /** The OpenSSH public keys of the DigitalOcean SSH keys named at creation. */
  sshPublicKeys: string[];
  region?: string;
  tags?: string[];
  userData?: string;
  /** The image slug it was created with. */
  image?: string;
  /** Seconds-scale realism: how long until sshd answers. */
  bootDelayMs?: number;
}

export interface FabricHooks {
  /** Picks a new droplet's public, anchor and VPC addresses among the free ones. */
  allocateAddresses(): DropletAddresses;
  dropletCreated(droplet: SimulatedDroplet): Promise<void>;
  dropletDeleted(id: number): Promise<void>;
  dropletPowerChanged(id: number, on: boolean): Promise<void>;
  dropletRebooted(id: number): Promise<void>;
  dropletTagsChanged(id: number, tags: string[]): Promise<void>;
  /** The droplet's metadata announces a maintenance event (live_migrate), or none with ''. */
  maintenanceEventChanged(id: number, event: string): Promise<void>;
  /** A reserved (floating) IP now routes to this droplet, or to nothing with null. */
  reservedIPAssigned(ip: string, dropletId: number | null): Promise<void>;
}

export function fabricHooks(fabric: Fabric): FabricHooks {
  const nameOf = (id: number): string => {
    const name = fabric.dropletNameById(id);
    if (name === undefined) throw new Error(`droplet id ${id}: not in the fabric`);
    return name;
  };
  return {
    allocateAddresses: () => allocateDropletAddresses(fabric.usedIPv4s()),
    async dropletCreated(d) {
      await fabric.addDroplet({
        name: d.name, id: d.id, publicIPv4: d.publicIPv4, anchorIPv4: d.anchorIPv4, privateIPv4: d.privateIPv4,
        sshPublicKeys: d.sshPublicKeys, bootDelayMs: d.bootDelayMs, ...(d.image ? { image: d.image } : {}),
        // The sandbox's convention: droplets tagged `web` are web backends answering their name.
        role: d.tags?.includes('web') ? 'backend' : 'loadbalancer',
        webServer: d.tags?.includes('web') ?? false,
        metadata: { region: d.region, tags: d.tags, userData: d.userData, publicKeys: d.sshPublicKeys },
      });
    },
    async dropletDeleted(id) {
      const name = fabric.dropletNameById(id);
      if (name !== undefined) await fabric.removeDroplet(name);
    },
    async dropletPowerChanged(id, on) {
      if (on) await fabric.startDroplet(nameOf(id));
      else await fabric.stopDroplet(nameOf(id));
    },
    async dropletRebooted(id) {
      await fabric.rebootDroplet(nameOf(id));
    },
    async dropletTagsChanged(id, tags) {
      await fabric.updateDropletMetadata(nameOf(id), { tags });
    },
    async maintenanceEventChanged(id, event) {
      await fabric.updateDropletMetadata(nameOf(id), { maintenanceEvent: event });
    },
    async reservedIPAssigned(ip, dropletId) {
      const anchor = dropletId === null ? null : fabric.status().hosts.find((h) => h.id === dropletId)?.anchorIPv4;
      if (anchor === undefined) throw new Error(`droplet id ${dropletId}: not in the fabric`);
      await fabric.setFloatingIP(ip, anchor);
    },
  };
}

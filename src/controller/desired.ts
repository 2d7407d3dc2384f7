// The files every node should carry, rendered once every node's addresses are known. Tagged
// backends and the people's SSH keys are looked up on DigitalOcean each pass, so droplets
// joining or leaving a tag reach the config.
import { dayTwoRequests } from '../api/day-two.ts';
import { networkCIDR, nodeName } from '../api/derived.ts';
import type { HALoadBalancer, SecretData } from '../api/types.ts';
import { DigitalOceanError } from '../digitalocean/errors.ts';
import type { DigitalOceanProvider, NodeDroplet } from '../digitalocean/provider.ts';
import {
  RenderError, defaultSettings, renderNodes, type ObservedFacts, type ObservedNode, type RenderSettings, type RenderedNode,
} from '../render/index.ts';
import type { ControllerSettings } from './context.ts';
import { TerminalError, terminal, terminalReasons } from './errors.ts';
import type { Observation } from './observe.ts';
import { standingDroplet } from './observed.ts';
import { publicKeyOf, type OperatorKeys } from './ssh-access.ts';

export interface Desired {
  nodes: RenderedNode[];
  /** Config hash per node name; empty until every node's facts are known. */
  hashes: Record<string, string>;
}

export const NOTHING_DESIRED: Desired = { nodes: [], hashes: {} };

/** The public halves of the account keys spec.droplets.sshKeys names: a key the account lacks
 *  is CloudResourceNotFound (looked at again later: someone may add it). */
export function peopleSshKeys(object: HALoadBalancer, provider: DigitalOceanProvider): Promise<string[]> {
  return provider.sshPublicKeys(object.spec.droplets.sshKeys).catch((err: unknown) => {
    if (err instanceof DigitalOceanError && err.status === 404) {
      throw terminal(terminalReasons.cloudResourceNotFound, 'spec.droplets.sshKeys',
        `names a key that is not in this DigitalOcean account: ${err.message}`);
    }
    throw err;
  });
}

export async function desiredFiles(
  object: HALoadBalancer, secrets: readonly SecretData[], observation: Observation, provider: DigitalOceanProvider,
  keys: { ssh: OperatorKeys; peopleKeys: readonly string[] }, settings: ControllerSettings): Promise<Desired> {
  const spec = object.spec;
  const reservedIP = observation.observed.reservedIP;
  if (!reservedIP) return NOTHING_DESIRED;
  const tags = [...new Set(spec.backends.map((b) => b.dropletTag).filter((t) => t !== ''))];
  const taggedDroplets = Object.fromEntries(await Promise.all(tags.map(async (tag) => [tag, await provider.taggedDroplets(tag)] as const)));
  const { ssh, peopleKeys } = keys;
  const operatorKey = publicKeyOf(ssh.current);
  const nodes: ObservedNode[] = [];
  const versions: RenderSettings['versions'] = {};
  for (let index = 0; index < spec.droplets.count; index++) {
    const name = nodeName(object.metadata.name, index);
    const droplet = standingDroplet(observation.droplets, index, reservedIP.dropletId);
    const host = observation.observed.hosts[name];
    const privateIPv4 = host?.privateIPv4 ?? droplet?.privateIPv4;
    const anchorIPv4 = host?.anchorIPv4 ?? (droplet ? anchorOfNodeAway(object, name, droplet.id) : undefined);
    if (!droplet || !privateIPv4 || !anchorIPv4) return NOTHING_DESIRED; // not all facts yet
    const loginKey = observation.connections.get(name)?.loginKey;
    // During a rotation the node keeps the older key the operator still logs in with.
    const olderKey = loginKey && loginKey !== ssh.current ? [publicKeyOf(loginKey)] : [];
    nodes.push({
      name, dropletID: droplet.id, privateIPv4, anchorIPv4, ...(droplet.publicIPv4 ? { publicIPv4: droplet.publicIPv4 } : {}),
      authorizedKeys: [operatorKey, ...olderKey, ...peopleKeys],
    });
    if (host?.keepalivedVersion && host.haproxyVersion) {
      versions[name] = { keepalived: host.keepalivedVersion, haproxy: host.haproxyVersion };
    }
  }
  const vpcCIDR = vpcRange(observation.droplets);
  const facts: ObservedFacts = { floatingIP: reservedIP.ip, nodes, taggedDroplets, ...(vpcCIDR ? { vpcCIDR } : {}) };
  return render(object, secrets, facts, { ...settings.render, versions });
}

/** A node in maintenance (or back from it) may be off: the anchor address status recorded for
 *  its droplet stands in, so the other nodes still get config changes meanwhile. */
function anchorOfNodeAway(object: HALoadBalancer, name: string, dropletId: number): string | undefined {
  const recorded = object.status?.nodes?.find((n) => n.name === name);
  const away = dayTwoRequests(object.metadata).maintenance.has(name) || recorded?.maintenance !== undefined;
  return away && recorded?.dropletID === dropletId ? recorded.anchorIPv4 : undefined;
}

function vpcRange(droplets: readonly NodeDroplet[]): string | undefined {
  const withNetmask = droplets.find((d) => d.privateIPv4 && d.privateNetmask);
  return withNetmask ? networkCIDR(withNetmask.privateIPv4!, withNetmask.privateNetmask!) : undefined;
}

function render(
  object: HALoadBalancer, secrets: readonly SecretData[], observed: ObservedFacts, settings: Partial<RenderSettings>,
): Desired {
  try {
    const nodes = renderNodes({ lb: object, secrets: [...secrets], observed, settings: defaultSettings(settings) });
    return { nodes, hashes: Object.fromEntries(nodes.map((n) => [n.name, n.configHash])) };
  } catch (err) {
    if (err instanceof RenderError) {
      throw new TerminalError(terminalReasons.invalidSpec, [{ path: err.field, message: err.message.slice(err.field.length + 2) }]);
    }
    throw err;
  }
}

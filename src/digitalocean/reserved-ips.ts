// Reserved IPs through /v2/reserved_ips. dots-wrapper has no reserved-IP module (its floating-IP
// calls use the old names), so these go through dots' own HTTP context: same token, endpoint,
// timeout, pacing and retries as every other call.
import type { DigitalOceanClient } from './client.ts';
import { DigitalOceanError, isPendingEvent } from './errors.ts';
import { nextPage, PER_PAGE } from './droplets.ts';
import type { ApiDroplet } from './droplets.ts';
import { poll, type WaitSettings } from './poll.ts';

export interface ApiReservedIp {
  ip: string;
  region: { slug: string };
  droplet: ApiDroplet | null;
  locked: boolean;
  project_id?: string;
}

export interface ApiAction {
  id: number;
  status: 'in-progress' | 'completed' | 'errored';
  type: string;
  started_at: string;
  completed_at: string | null;
}

export interface ReservedIpInfo {
  ip: string;
  region: string;
  dropletId: number | null;
  locked: boolean;
}

export function toReservedIpInfo(r: ApiReservedIp): ReservedIpInfo {
  return { ip: r.ip, region: r.region.slug, dropletId: r.droplet?.id ?? null, locked: r.locked };
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function checkIp(ip: string, field = 'spec.floatingIP.address'): string {
  if (!IPV4.test(ip)) {
    throw new DigitalOceanError('terminal', `${field}: "${ip}" is not an IPv4 address`, { method: 'GET', path: '/reserved_ips' });
  }
  return ip;
}

export async function listReservedIps(client: DigitalOceanClient): Promise<ApiReservedIp[]> {
  const all: ApiReservedIp[] = [];
  let page: number | undefined = 1;
  while (page !== undefined) {
    const res: { data: { reserved_ips?: ApiReservedIp[]; links?: unknown } } =
      await client.http.get('/reserved_ips', { params: { page, per_page: PER_PAGE } });
    all.push(...(res.data.reserved_ips ?? []));
    const next = nextPage(res.data.links);
    page = next !== undefined && next > page ? next : undefined;
  }
  return all;
}

/** The reserved IP, or undefined if this account has no such address. */
export async function getReservedIp(client: DigitalOceanClient, ip: string): Promise<ApiReservedIp | undefined> {
  try {
    const res = await client.http.get(`/reserved_ips/${checkIp(ip)}`);
    return (res.data as { reserved_ip: ApiReservedIp }).reserved_ip;
  } catch (err) {
    if (err instanceof DigitalOceanError && err.status === 404) return undefined;
    throw err;
  }
}

/** Reserves a new address: in a region, or straight onto a droplet (one call, one action). */
export async function createReservedIp(
  client: DigitalOceanClient, target: { region: string } | { dropletId: number },
): Promise<{ reservedIp: ApiReservedIp; actionId?: number }> {
  const body = 'region' in target ? { region: target.region } : { droplet_id: target.dropletId };
  const res = await client.http.post('/reserved_ips', body);
  const data = res.data as { reserved_ip: ApiReservedIp; links?: { actions?: { id: number }[] } };
  client.logger.info({ ip: data.reserved_ip.ip, ...body }, 'reserved IP created');
  const actionId = data.links?.actions?.[0]?.id;
  return actionId === undefined ? { reservedIp: data.reserved_ip } : { reservedIp: data.reserved_ip, actionId };
}

/** Adopts an existing address named by the user: it must exist, in the object's region. */
export async function adoptReservedIp(client: DigitalOceanClient, ip: string, region: string): Promise<ApiReservedIp> {
  const found = await getReservedIp(client, ip);
  if (!found) {
    throw new DigitalOceanError('terminal', `spec.floatingIP.address: reserved IP ${ip} does not exist in this DigitalOcean account`, {
      method: 'GET', path: `/reserved_ips/${ip}`, status: 404,
    });
  }
  if (found.region.slug !== region) {
    throw new DigitalOceanError('terminal',
      `spec.floatingIP.address: reserved IP ${ip} is in region ${found.region.slug}, but spec.region is ${region}`,
      { method: 'GET', path: `/reserved_ips/${ip}` });
  }
  return found;
}

/** Polls an action until it finishes. */
export function waitForAction(client: DigitalOceanClient, actionId: number, wait: WaitSettings): Promise<ApiAction> {
  const path = `/actions/${actionId}`;
  return poll(`DigitalOcean action ${actionId}`, async () => {
    const action = ((await client.http.get(path)).data as { action: ApiAction }).action;
    if (action.status === 'errored') {
      throw new DigitalOceanError('transient', `DigitalOcean action ${actionId} (${action.type}) errored`, { method: 'GET', path });
    }
    return action.status === 'completed' ? action : undefined;
  }, wait, client.sleep, { method: 'GET', path });
}

/** What asking for a reserved-IP action led to, without waiting for it to finish. */
export type ActionRequest =
  | { outcome: 'started'; actionId: number }
  /** DigitalOcean refused it as pointless: the address is already where it was asked to be. */
  | { outcome: 'done' }
  /** The address or droplet has an event in progress (422 "pending event"): ask again later. */
  | { outcome: 'busy' };

/** Asks for one reserved-IP action. A 422 other than "pending event" is checked against where
 *  the address is now: already there is done, anything else is a terminal refusal. */
async function requestAction(
  client: DigitalOceanClient, ip: string, body: { type: 'assign'; droplet_id: number } | { type: 'unassign' },
): Promise<ActionRequest> {
  const path = `/reserved_ips/${checkIp(ip)}/actions`;
  try {
    const res = await client.http.post(path, body);
    return { outcome: 'started', actionId: (res.data as { action: ApiAction }).action.id };
  } catch (err) {
    if (!(err instanceof DigitalOceanError) || err.status !== 422) throw err;
    if (isPendingEvent(err.status, err.message)) return { outcome: 'busy' };
    const current = await getReservedIp(client, ip);
    const wanted = body.type === 'assign' ? body.droplet_id : null;
    if (current && (current.droplet?.id ?? null) === wanted) return { outcome: 'done' };
    const holder = current?.droplet?.id ?? 'no droplet';
    throw new DigitalOceanError('terminal', `${body.type} of reserved IP ${ip} was rejected; it is on ${holder}`, {
      method: 'POST', path, status: 422,
    });
  }
}

/** Asks DigitalOcean to put the reserved IP on the droplet; does not wait for the action. */
export function requestAssign(client: DigitalOceanClient, ip: string, dropletId: number): Promise<ActionRequest> {
  return requestAction(client, ip, { type: 'assign', droplet_id: dropletId });
}

/** Asks DigitalOcean to take the reserved IP off its droplet; does not wait for the action. */
export function requestUnassign(client: DigitalOceanClient, ip: string): Promise<ActionRequest> {
  return requestAction(client, ip, { type: 'unassign' });
}

/** Runs an action to the end: asks again while the address is busy, then waits for it. */
async function completeAction(
  client: DigitalOceanClient, ip: string, request: () => Promise<ActionRequest>, wait: WaitSettings,
): Promise<{ changed: boolean }> {
  const asked = await poll(`reserved IP ${ip} busy`, async () => {
    const result = await request();
    if (result.outcome === 'busy') client.logger.info({ ip }, 'reserved IP busy; action retried');
    return result.outcome === 'busy' ? undefined : result;
  }, wait, client.sleep, { method: 'POST', path: `/reserved_ips/${ip}/actions` });
  if (asked.outcome === 'done') return { changed: false };
  if (asked.outcome === 'started') await waitForAction(client, asked.actionId, wait);
  return { changed: true };
}

/**
 * Puts the reserved IP on the droplet and waits until DigitalOcean reports it there. An assign
 * that DigitalOcean rejects because the address is already on that droplet counts as success.
 */
export async function assignReservedIp(
  client: DigitalOceanClient, ip: string, dropletId: number, wait: WaitSettings,
): Promise<{ changed: boolean }> {
  const result = await completeAction(client, ip, () => requestAssign(client, ip, dropletId), wait);
  if (result.changed) client.logger.info({ ip, dropletId }, 'reserved IP assigned');
  return result;
}

export async function unassignReservedIp(client: DigitalOceanClient, ip: string, wait: WaitSettings): Promise<{ changed: boolean }> {
  const result = await completeAction(client, ip, () => requestUnassign(client, ip), wait);
  if (result.changed) client.logger.info({ ip }, 'reserved IP unassigned');
  return result;
}

/** Releases the address, once: 'deleted' (or already gone), or 'busy' while an action runs on it. */
export async function requestDelete(client: DigitalOceanClient, ip: string): Promise<'deleted' | 'busy'> {
  try {
    await client.http.delete(`/reserved_ips/${checkIp(ip)}`);
    client.logger.info({ ip }, 'reserved IP deleted');
    return 'deleted';
  } catch (err) {
    if (err instanceof DigitalOceanError && err.status === 404) return 'deleted';
    if (err instanceof DigitalOceanError && isPendingEvent(err.status, err.message)) return 'busy';
    throw err;
  }
}

/** Releases the address; one already gone counts as deleted. Waits out a pending action. */
export async function deleteReservedIp(client: DigitalOceanClient, ip: string, wait: WaitSettings): Promise<void> {
  await poll(`reserved IP ${ip} busy`, async () => ((await requestDelete(client, ip)) === 'deleted' ? true : undefined), wait, client.sleep,
    { method: 'DELETE', path: `/reserved_ips/${ip}` });
}

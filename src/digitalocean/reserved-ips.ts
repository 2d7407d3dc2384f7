// Reserved IPs through /v2/reserved_ips. dots-wrapper has no reserved-IP module (its floating-IP
// calls use the old names), so these go through dots' own HTTP context: same token, endpoint,
// timeout, pacing and retries as every other call.
import type { DigitalOceanClient } from './client.ts';
import { DigitalOceanError, isPendingEvent } from './errors.ts';
import { nextPage, PER_PAGE } from './droplets.ts';
import type { ApiDroplet, WaitSettings } from './droplets.ts';

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
  if (!IPV4.test(ip)) throw new DigitalOceanError('terminal', `${field}: "${ip}" is not an IPv4 address`, { method: 'GET', path: '/reserved_ips' });
  return ip;
}

export async function listReservedIps(client: DigitalOceanClient): Promise<ApiReservedIp[]> {
  const all: ApiReservedIp[] = [];
  let page: number | undefined = 1;
  while (page !== undefined) {
    const res: { data: { reserved_ips?: ApiReservedIp[]; links?: unknown } } = await client.http.get('/reserved_ips', { params: { page, per_page: PER_PAGE } });
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
export async function createReservedIp(client: DigitalOceanClient, target: { region: string } | { dropletId: number }): Promise<{ reservedIp: ApiReservedIp; actionId?: number }> {
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
    throw new DigitalOceanError('terminal', `spec.floatingIP.address: reserved IP ${ip} does not exist in this DigitalOcean account`, { method: 'GET', path: `/reserved_ips/${ip}`, status: 404 });
  }
  if (found.region.slug !== region) {
    throw new DigitalOceanError('terminal', `spec.floatingIP.address: reserved IP ${ip} is in region ${found.region.slug}, but spec.region is ${region}`, { method: 'GET', path: `/reserved_ips/${ip}` });
  }
  return found;
}

/** Polls an action until it finishes, with a growing interval. */
export async function waitForAction(client: DigitalOceanClient, actionId: number, wait: WaitSettings): Promise<ApiAction> {
  const deadline = Date.now() + wait.timeoutMs;
  let interval = wait.intervalMs;
  for (;;) {
    const res = await client.http.get(`/actions/${actionId}`);
    const action = (res.data as { action: ApiAction }).action;
    if (action.status === 'completed') return action;
    if (action.status === 'errored') {
      throw new DigitalOceanError('transient', `DigitalOcean action ${actionId} (${action.type}) errored`, { method: 'GET', path: `/actions/${actionId}` });
    }
    if (Date.now() + interval > deadline) {
      throw new DigitalOceanError('transient', `DigitalOcean action ${actionId} (${action.type}) still in progress after ${wait.timeoutMs} ms`, { method: 'GET', path: `/actions/${actionId}` });
    }
    await client.sleep(interval);
    interval = Math.min(wait.maxIntervalMs, interval * 2);
  }
}

/** Runs one reserved-IP action, retrying while the IP or the droplet has a pending event
 * (the IP is `locked` during another assign, a new droplet is busy booting). */
async function postAction(client: DigitalOceanClient, ip: string, body: Record<string, unknown>, wait: WaitSettings): Promise<ApiAction | 'rejected'> {
  const deadline = Date.now() + wait.timeoutMs;
  let interval = wait.intervalMs;
  for (;;) {
    try {
      const res = await client.http.post(`/reserved_ips/${checkIp(ip)}/actions`, body);
      return (res.data as { action: ApiAction }).action;
    } catch (err) {
      if (!(err instanceof DigitalOceanError)) throw err;
      if (err.status === 422 && !isPendingEvent(422, err.message)) return 'rejected';
      if (!(err.transient && isPendingEvent(err.status, err.message)) || Date.now() + interval > deadline) throw err;
      client.logger.info({ ip, ...body, waitMs: interval }, 'reserved IP busy; action retried');
      await client.sleep(interval);
      interval = Math.min(wait.maxIntervalMs, interval * 2);
    }
  }
}

/**
 * Puts the reserved IP on the droplet and waits until DigitalOcean reports it there. An assign
 * that DigitalOcean rejects because the address is already on that droplet counts as success.
 */
export async function assignReservedIp(client: DigitalOceanClient, ip: string, dropletId: number, wait: WaitSettings): Promise<{ changed: boolean }> {
  const action = await postAction(client, ip, { type: 'assign', droplet_id: dropletId }, wait);
  if (action === 'rejected') {
    const current = await getReservedIp(client, ip);
    if (current?.droplet?.id === dropletId) return { changed: false };
    throw new DigitalOceanError('terminal', `assigning reserved IP ${ip} to droplet ${dropletId} was rejected; it is on ${current?.droplet?.id ?? 'no droplet'}`, {
      method: 'POST',
      path: `/reserved_ips/${ip}/actions`,
      status: 422,
    });
  }
  await waitForAction(client, action.id, wait);
  client.logger.info({ ip, dropletId }, 'reserved IP assigned');
  return { changed: true };
}

export async function unassignReservedIp(client: DigitalOceanClient, ip: string, wait: WaitSettings): Promise<{ changed: boolean }> {
  const action = await postAction(client, ip, { type: 'unassign' }, wait);
  if (action === 'rejected') {
    const current = await getReservedIp(client, ip);
    if (current && current.droplet === null) return { changed: false };
    throw new DigitalOceanError('terminal', `unassigning reserved IP ${ip} was rejected`, { method: 'POST', path: `/reserved_ips/${ip}/actions`, status: 422 });
  }
  await waitForAction(client, action.id, wait);
  client.logger.info({ ip }, 'reserved IP unassigned');
  return { changed: true };
}

/** Releases the address; one already gone counts as deleted. Waits out a pending action. */
export async function deleteReservedIp(client: DigitalOceanClient, ip: string, wait: WaitSettings): Promise<void> {
  const deadline = Date.now() + wait.timeoutMs;
  let interval = wait.intervalMs;
  for (;;) {
    try {
      await client.http.delete(`/reserved_ips/${checkIp(ip)}`);
      client.logger.info({ ip }, 'reserved IP deleted');
      return;
    } catch (err) {
      if (err instanceof DigitalOceanError && err.status === 404) return;
      if (!(err instanceof DigitalOceanError && isPendingEvent(err.status, err.message)) || Date.now() + interval > deadline) throw err;
      await client.sleep(interval);
      interval = Math.min(wait.maxIntervalMs, interval * 2);
    }
  }
}

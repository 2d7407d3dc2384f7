// The session pool over real SSH (the scale benchmark's ssh2 stand-in hosts on loopback): one
// handshake serves many passes, a node's facts are read once per session, a key the node does
// not take leaves the working session in place, and a broken session is dropped and opened
// again.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HostAgent } from '../../src/hosts/agent.ts';
import { HostAuthenticationError, HostUnreachableError } from '../../src/hosts/errors.ts';
import { SessionPool } from '../../src/hosts/pool.ts';
import { startSshStandin, type SshStandin } from '../../bench/lib/ssh-standin.ts';
import { generateEd25519KeyPair } from '../../src/ssh-keys.ts';

const operatorKey = generateEd25519KeyPair('op');
const newKey = generateEd25519KeyPair('rotated');
const metadata: Record<string, string> = {
  '/metadata/v1/id': '51',
  '/metadata/v1/interfaces/public/0/anchor_ipv4/address': '10.20.0.51',
  '/metadata/v1/interfaces/private/0/ipv4/address': '10.10.0.51',
};
const host = { publicIPv4: '10.250.1.5', dropletId: 51, name: 'pool-0', authorizedKeys: [operatorKey.public] };

let standin: SshStandin;
let pool: SessionPool;
let now = 0;
const target = (privateKey = operatorKey.private) => ({ host: standin.loopbackFor(host.publicIPv4), port: standin.port, privateKey });

beforeAll(async () => {
  standin = await startSshStandin({ metadata: (id, path) => (id === 51 ? metadata[path] : undefined) });
  await standin.addHost(host);
  pool = new SessionPool({ connect: (t) => HostAgent.connect({ ...t, timeoutMs: 5000 }), idleMs: 60_000, now: () => now });
});
afterAll(async () => {
  pool?.closeAll();
  await standin?.close();
});

describe('the session pool', () => {
  it('serves many passes with one handshake, and reads the node\'s facts once', async () => {
    const before = standin.counters.connections;
    for (let pass = 0; pass < 5; pass++) {
      const session = await pool.open(target());
      const state = await session.readState();
      expect(state).toMatchObject({
        anchorIPv4: '10.20.0.51', privateIPv4: '10.10.0.51', dropletId: 51, keepalivedVersion: '2.2.8', haproxyVersion: '2.8.5',
      });
      session.close(); // back to the pool
    }
    expect(standin.counters.connections - before).toBe(1);
    expect(standin.counters.factReads).toBe(1);
    expect(standin.counters.execs.readState).toBe(5);
  });

  it('tries a new key on a new connection and keeps the working session when the node refuses it', async () => {
    await expect(pool.open(target(newKey.private))).rejects.toBeInstanceOf(HostAuthenticationError);
    const before = standin.counters.connections;
    const session = await pool.open(target());
    await session.readState();
    expect(standin.counters.connections).toBe(before); // the old session, still open
  });

  it('drops a broken session and connects again on the next open', async () => {
    const session = await pool.open(target());
    standin.dropConnections();
    await standin.removeHost(host.publicIPv4);
    await expect(session.readState()).rejects.toBeInstanceOf(HostUnreachableError);
    await standin.addHost(host);
    const before = standin.counters.connections;
    const again = await pool.open(target());
    expect((await again.readState()).dropletId).toBe(51);
    expect(standin.counters.connections - before).toBe(1);
  });

  it('closes a session unused for longer than idleMs', async () => {
    const before = standin.counters.connections;
    await (await pool.open(target())).readState();
    now += 61_000;
    await (await pool.open(target())).readState();
    expect(standin.counters.connections - before).toBe(1);
  });
  it('gives the first connection after a break a short deadline, and later ones the normal one', async () => {
    const deadlines: (number | undefined)[] = [];
    const watched = new SessionPool({ connect: (t, _signal, timeoutMs) => {
      deadlines.push(timeoutMs);
      return HostAgent.connect({ ...t, timeoutMs: timeoutMs ?? 5000 });
    } });
    const session = await watched.open(target());
    standin.dropConnections();
    await standin.removeHost(host.publicIPv4); // the node is down: the reconnects fail
    await expect(session.readState()).rejects.toBeInstanceOf(HostUnreachableError);
    await expect(watched.open(target())).rejects.toBeInstanceOf(HostUnreachableError);
    await expect(watched.open(target())).rejects.toBeInstanceOf(HostUnreachableError);
    await standin.addHost(host);
    expect((await (await watched.open(target())).readState()).dropletId).toBe(51);
    expect(deadlines[0]).toBeUndefined(); // the first connection
    expect(deadlines[1]).toBeGreaterThan(0); // the first after the break
    expect(deadlines[1]).toBeLessThanOrEqual(2000);
    expect(deadlines.slice(2)).toEqual([undefined, undefined]); // later ones: the normal deadline
    watched.closeAll();
  });

  it('keeps at most maxSessions; past it a pass gets its own session, unfollowed, until a kept one breaks', async () => {
    const other = { ...host, publicIPv4: '10.250.1.6', dropletId: 52, name: 'pool-1' };
    await standin.addHost(other);
    const toOther = { ...target(), host: standin.loopbackFor(other.publicIPv4) };
    const budget = new SessionPool({ connect: (t) => HostAgent.connect({ ...t, timeoutMs: 5000 }), maxSessions: 1 });
    const kept = await budget.open(target());
    expect(kept.watchVrrp).toBeDefined();
    const before = standin.counters.connections;
    for (let pass = 0; pass < 2; pass++) {
      const own = await budget.open(toOther);
      expect(own.watchVrrp).toBeUndefined(); // not followed: read at each pass instead
      expect((await own.readState()).haproxyVersion).toBe('2.8.5');
      own.close();
      await (await budget.open(target())).readState(); // the kept one, no handshake
    }
    expect(standin.counters.connections - before).toBe(2);
    expect(budget.size).toBe(1);
    standin.dropConnections(); // both sessions break: the kept one's place is free again
    await expect(kept.readState()).rejects.toBeInstanceOf(HostUnreachableError);
    const now = await budget.open(toOther);
    expect(now.watchVrrp).toBeDefined();
    expect(budget.size).toBe(1);
    budget.closeAll();
    await standin.removeHost(other.publicIPv4);
  });
});

// The operator's follow-up of keepalived's state over each node's session: a change, or the
// session ending on its own (a crashed node), enqueues the object; stopping a watch does not.
import { describe, expect, it } from 'vitest';
import type { HostSession } from '../../src/hosts/connector.ts';
import { VrrpWatches } from '../../src/controller/vrrp-watch.ts';

function fakeSession(hostKey = 'SHA256:a') {
  const feed: { onState?: (s: 'MASTER' | 'BACKUP' | 'FAULT') => void; onEnd?: () => void; stopped: boolean } = { stopped: false };
  const session = {
    hostKey,
    watchVrrp(onState: (s: 'MASTER' | 'BACKUP' | 'FAULT') => void, onEnd?: () => void) {
      feed.onState = onState;
      feed.onEnd = onEnd;
      return { stop: () => { feed.stopped = true; feed.onEnd?.(); } };
    },
  } as unknown as HostSession;
  return { session, feed };
}

describe('VrrpWatches', () => {
  it('enqueues on a change of state, not on the first line or a repeat', () => {
    const enqueued: string[] = [];
    const watches = new VrrpWatches((key) => enqueued.push(key));
    const { session, feed } = fakeSession();
    watches.follow('default/web', 'web-0', session);
    feed.onState!('BACKUP');
    feed.onState!('BACKUP');
    expect(enqueued).toEqual([]);
    feed.onState!('MASTER');
    expect(enqueued).toEqual(['default/web']);
  });

  it('enqueues when the session ends on its own, so a pass reconnects and follows again', () => {
    const enqueued: string[] = [];
    const watches = new VrrpWatches((key) => enqueued.push(key));
    const { session, feed } = fakeSession();
    watches.follow('default/web', 'web-1', session);
    feed.onState!('BACKUP');
    feed.onEnd!();
    expect(enqueued).toEqual(['default/web']);
  });

  it('does not enqueue when a watch ends before it ever worked (no loop of passes)', () => {
    const enqueued: string[] = [];
    const watches = new VrrpWatches((key) => enqueued.push(key));
    const { session, feed } = fakeSession();
    watches.follow('default/web', 'web-1', session);
    feed.onEnd!();
    expect(enqueued).toEqual([]);
  });

  it('does not enqueue when the operator stops following a node', () => {
    const enqueued: string[] = [];
    const watches = new VrrpWatches((key) => enqueued.push(key));
    const { session, feed } = fakeSession();
    watches.follow('default/web', 'web-1', session);
    watches.keepOnly('default/web', new Set());
    expect(feed.stopped).toBe(true);
    expect(enqueued).toEqual([]);
  });
});

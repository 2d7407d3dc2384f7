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

/** A VrrpWatches following web-1 of default/web over a fake session; what it enqueued. */
function following() {
  const enqueued: string[] = [];
  const watches = new VrrpWatches((key) => enqueued.push(key));
  const { session, feed } = fakeSession();
  watches.follow('default/web', 'web-1', session);
  return { enqueued, watches, feed };
}

describe('VrrpWatches', () => {
  it('enqueues on a change of state, not on the first line or a repeat', () => {
    const { enqueued, feed } = following();
    feed.onState!('BACKUP');
    feed.onState!('BACKUP');
    expect(enqueued).toEqual([]);
    feed.onState!('MASTER');
    expect(enqueued).toEqual(['default/web']);
  });

  it('enqueues when the session ends on its own, so a pass reconnects and follows again', () => {
    const { enqueued, feed } = following();
    feed.onState!('BACKUP');
    feed.onEnd!();
    expect(enqueued).toEqual(['default/web']);
  });

  it('does not enqueue when a watch ends before it ever worked (no loop of passes)', () => {
    const { enqueued, feed } = following();
    feed.onEnd!();
    expect(enqueued).toEqual([]);
  });

  it('does not enqueue when the operator stops following a node', () => {
    const { enqueued, watches, feed } = following();
    feed.onState!('BACKUP'); // a watch that worked, so only the stop keeps it from enqueuing
    watches.keepOnly('default/web', new Set());
    expect(feed.stopped).toBe(true);
    expect(enqueued).toEqual([]);
  });
});

// The operator's follow-up of keepalived's state over each node's session: a change, or the
// session ending on its own (a crashed node), enqueues the object; stopping a watch does not.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { HostSession } from '../../src/hosts/connector.ts';
import { RECHECKS_AFTER_END_MS, VrrpWatches } from '../../src/controller/vrrp-watch.ts';

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

  describe('after a watch that worked ended by itself', () => {
    afterEach(() => { vi.useRealTimers(); });

    it('looks again at each re-check delay, so the node is followed again once it is back', () => {
      vi.useFakeTimers();
      const { enqueued, feed } = following();
      feed.onState!('BACKUP');
      feed.onEnd!();
      expect(enqueued).toHaveLength(1);
      for (const [i, delay] of RECHECKS_AFTER_END_MS.entries()) {
        vi.advanceTimersByTime(delay - (RECHECKS_AFTER_END_MS[i - 1] ?? 0));
        expect(enqueued).toHaveLength(i + 2);
      }
      vi.advanceTimersByTime(60_000);
      expect(enqueued).toHaveLength(RECHECKS_AFTER_END_MS.length + 1);
    });

    it('stops looking once the node is followed again, and when every watch stops', () => {
      vi.useFakeTimers();
      const { enqueued, watches, feed } = following();
      feed.onState!('BACKUP');
      feed.onEnd!();
      watches.follow('default/web', 'web-1', fakeSession().session);
      vi.advanceTimersByTime(60_000);
      expect(enqueued).toEqual(['default/web']);

      const other = following();
      other.feed.onState!('BACKUP');
      other.feed.onEnd!();
      other.watches.stopAll();
      vi.advanceTimersByTime(60_000);
      expect(other.enqueued).toEqual(['default/web']);
    });
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

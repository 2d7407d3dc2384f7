// Failovers reported as they happen: over each node's open session the operator follows
// keepalived's state (the file the notify script renames into place), and a change enqueues
// the object at once instead of waiting for the next resync. The data plane does not depend on
// it: keepalived and the failover script act alone; this only makes status follow sooner.
import type { Logger } from 'pino';
import type { HostSession } from '../hosts/connector.ts';

interface Watch {
  session: HostSession;
  stop(): void;
  ended: boolean;
}

/** After a watch that worked ends by itself (a crash, a reboot, a cut link), the object is looked
 *  at again at these delays: the node is followed again soon after it is back, not at the next
 *  resync (30 s), when a later failover would go unreported as long. A few passes per crash. */
export const RECHECKS_AFTER_END_MS = [2_000, 5_000, 10_000, 20_000];

export class VrrpWatches {
  private readonly watches = new Map<string, Watch>();
  /** The pending looks of nodes whose watch ended, until the node is followed again. */
  private readonly rechecks = new Map<string, NodeJS.Timeout[]>();
  private readonly onChange: (objectKey: string) => void;
  private readonly log: Pick<Logger, 'debug'> | undefined;

  constructor(onChange: (objectKey: string) => void, log?: Pick<Logger, 'debug'>) {
    this.onChange = onChange;
    this.log = log;
  }

  /** Follows a node over this session, unless it is followed already over a live one. */
  follow(objectKey: string, node: string, session: HostSession): void {
    if (!session.watchVrrp) return;
    const key = `${objectKey}|${node}`;
    const current = this.watches.get(key);
    if (current && !current.ended && current.session.hostKey === session.hostKey) return;
    current?.stop();
    this.cancelRechecks(key);
    let last: string | undefined;
    let stopped = false;
    const watch: Watch = { session, ended: false, stop: () => undefined };
    const handle = session.watchVrrp((state) => {
      // The first line is the state now, which the pass that started the watch has read.
      if (last !== undefined && state !== last) {
        this.log?.debug({ halb: objectKey, node, from: last, to: state }, 'saw keepalived change state');
        this.onChange(objectKey);
      }
      last = state;
    }, () => {
      watch.ended = true;
      this.log?.debug({ halb: objectKey, node, worked: last !== undefined, stopped }, 'stopped following keepalived');
      // A watch that worked ended by itself (the node crashed, or its link): a pass now reports
      // it and follows the nodes again. One that never worked does not, or it would loop.
      if (stopped || last === undefined) return;
      this.onChange(objectKey);
      this.scheduleRechecks(key, objectKey);
    });
    watch.stop = () => {
      stopped = true;
      watch.ended = true;
      handle.stop();
    };
    this.watches.set(key, watch);
  }

  /** Stops following the nodes of objects that are gone, and nodes no longer there. */
  keepOnly(objectKey: string, nodes: ReadonlySet<string>): void {
    for (const [key, watch] of this.watches) {
      const [object, node = ''] = key.split('|');
      if (object === objectKey && !nodes.has(node)) {
        watch.stop();
        this.watches.delete(key);
      }
    }
  }

  stopAll(): void {
    for (const watch of this.watches.values()) watch.stop();
    this.watches.clear();
    for (const key of [...this.rechecks.keys()]) this.cancelRechecks(key);
  }

  private scheduleRechecks(key: string, objectKey: string): void {
    this.cancelRechecks(key);
    this.rechecks.set(key, RECHECKS_AFTER_END_MS.map((delay) => {
      const timer = setTimeout(() => this.onChange(objectKey), delay);
      timer.unref();
      return timer;
    }));
  }

  private cancelRechecks(key: string): void {
    for (const timer of this.rechecks.get(key) ?? []) clearTimeout(timer);
    this.rechecks.delete(key);
  }
}

// Failovers reported as they happen: over each node's open session the operator follows
// keepalived's state (the file the notify script renames into place), and a change enqueues
// the object at once instead of waiting for the next resync. The data plane does not depend on
// it: keepalived and the failover script act alone; this only makes status follow sooner.
import type { HostSession } from '../hosts/connector.ts';

interface Watch {
  session: HostSession;
  stop(): void;
  ended: boolean;
}

export class VrrpWatches {
  private readonly watches = new Map<string, Watch>();
  private readonly onChange: (objectKey: string) => void;

  constructor(onChange: (objectKey: string) => void) {
    this.onChange = onChange;
  }

  /** Follows a node over this session, unless it is followed already over a live one. */
  follow(objectKey: string, node: string, session: HostSession): void {
    if (!session.watchVrrp) return;
    const key = `${objectKey}|${node}`;
    const current = this.watches.get(key);
    if (current && !current.ended && current.session.hostKey === session.hostKey) return;
    current?.stop();
    let last: string | undefined;
    let stopped = false;
    const watch: Watch = { session, ended: false, stop: () => undefined };
    const handle = session.watchVrrp((state) => {
      // The first line is the state now, which the pass that started the watch has read.
      if (last !== undefined && state !== last) this.onChange(objectKey);
      last = state;
    }, () => {
      watch.ended = true;
      // A watch that worked ended by itself (the node crashed, or its link): a pass now reports
      // it and follows the nodes again. One that never worked does not, or it would loop.
      if (!stopped && last !== undefined) this.onChange(objectKey);
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
  }
}

// Object storage with one global resourceVersion counter, a bounded event history and the watch
// fan-out. Objects are kept in their storage form (core/v1 for events); views convert on the way out.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';

export type KubeObject = Record<string, unknown> & { metadata: ObjectMeta };
export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  managedFields?: ManagedFieldsEntry[];
  generateName?: string;
  ownerReferences?: unknown[];
  [k: string]: unknown;
}
export interface ManagedFieldsEntry {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  /** Absent on an apply entry whose apply never changed the object, as on the real server. */
  time?: string;
  fieldsType: 'FieldsV1';
  fieldsV1: Record<string, unknown>;
  subresource?: string;
}

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';
export interface StoreEvent {
  rv: number;
  storageKey: string;
  type: EventType;
  object: KubeObject;
  /** The object before this change, for selector transitions (MODIFIED only). */
  previous?: KubeObject;
}

export type StoreListener = (ev: StoreEvent) => void;

function objectKey(namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`;
}

export interface StoreOptions {
  stateFile?: string;
  historyLimit?: number;
  /** Called when a background snapshot fails (the server keeps serving from memory). */
  onSaveError?: (err: Error) => void;
}

export class Store {
  private rv = 0;
  private readonly buckets = new Map<string, Map<string, KubeObject>>();
  private history: StoreEvent[] = [];
  /** The resourceVersion of each storage key's latest event (its "watch cache" position). */
  private readonly lastEventRV = new Map<string, number>();
  /** Watches may resume from any RV >= this. */
  private oldestServableRV = 0;
  private readonly listeners = new Set<StoreListener>();
  private readonly historyLimit: number;
  private readonly stateFile: string | undefined;
  private saveTimer: NodeJS.Timeout | undefined;
  private readonly onSaveError: (err: Error) => void;

  constructor(opts: StoreOptions = {}) {
    this.historyLimit = opts.historyLimit ?? 5000;
    this.stateFile = opts.stateFile;
    this.onSaveError = opts.onSaveError ?? (() => {});
  }

  /** Loads a snapshot if the state file exists. Returns the stored objects in write order. */
  load(): Array<{ storageKey: string; object: KubeObject }> {
    if (!this.stateFile) return [];
    let text: string;
    try {
      text = readFileSync(this.stateFile, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    let snap: { resourceVersion: number; objects: Array<{ storageKey: string; object: KubeObject }> };
    try {
      snap = JSON.parse(text) as typeof snap;
    } catch (err) {
      throw new Error(`state file ${this.stateFile}: not valid JSON: ${(err as Error).message}`, { cause: err });
    }
    if (typeof snap.resourceVersion !== 'number' || !Array.isArray(snap.objects)) {
      throw new Error(`state file ${this.stateFile}: expected {resourceVersion: number, objects: [...]}`);
    }
    this.rv = snap.resourceVersion;
    this.oldestServableRV = this.rv;
    for (const { storageKey, object } of snap.objects) {
      this.bucket(storageKey).set(objectKey(object.metadata.namespace, object.metadata.name!), object);
    }
    return snap.objects;
  }

  currentRV(): number {
    return this.rv;
  }

  /**
   * The resourceVersion the real server's watch cache for one resource stands at: its latest
   * event's, not the store-wide one (writes to other resources do not move it). Never older than
   * what a watch can resume from, so a list-then-watch never meets 410 Expired for it.
   */
  resourceRV(storageKey: string): number {
    return Math.max(this.lastEventRV.get(storageKey) ?? this.rv, this.oldestServableRV);
  }

  nextRV(): number {
    this.rv += 1;
    return this.rv;
  }

  private bucket(storageKey: string): Map<string, KubeObject> {
    let b = this.buckets.get(storageKey);
    if (!b) {
      b = new Map();
      this.buckets.set(storageKey, b);
    }
    return b;
  }

  get(storageKey: string, namespace: string | undefined, name: string): KubeObject | undefined {
    return this.buckets.get(storageKey)?.get(objectKey(namespace, name));
  }

  list(storageKey: string, namespace?: string): KubeObject[] {
    const b = this.buckets.get(storageKey);
    if (!b) return [];
    const out: KubeObject[] = [];
    for (const o of b.values()) if (namespace === undefined || o.metadata.namespace === namespace) out.push(o);
    out.sort((a, b2) =>
      objectKey(a.metadata.namespace, a.metadata.name!).localeCompare(objectKey(b2.metadata.namespace, b2.metadata.name!)));
    return out;
  }

  /** Writes an object: stamps a fresh resourceVersion, records and fans out the event. */
  put(storageKey: string, object: KubeObject): KubeObject {
    const key = objectKey(object.metadata.namespace, object.metadata.name!);
    const b = this.bucket(storageKey);
    const previous = b.get(key);
    const rv = this.nextRV();
    object.metadata.resourceVersion = String(rv);
    b.set(key, object);
    this.emit({ rv, storageKey, type: previous ? 'MODIFIED' : 'ADDED', object, previous });
    return object;
  }

  remove(storageKey: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const b = this.buckets.get(storageKey);
    const key = objectKey(namespace, name);
    const existing = b?.get(key);
    if (!b || !existing) return undefined;
    b.delete(key);
    const rv = this.nextRV();
    const object = { ...existing, metadata: { ...existing.metadata, resourceVersion: String(rv) } };
    this.emit({ rv, storageKey, type: 'DELETED', object });
    return object;
  }

  private emit(ev: StoreEvent): void {
    this.history.push(ev);
    this.lastEventRV.set(ev.storageKey, ev.rv);
    if (this.history.length > this.historyLimit) {
      const dropped = this.history.splice(0, this.history.length - this.historyLimit);
      this.oldestServableRV = dropped[dropped.length - 1]!.rv;
    }
    for (const l of this.listeners) l(ev);
    this.scheduleSave();
  }

  /** Drops all history: a watch from any earlier RV now gets 410 Expired. */
  compact(): number {
    this.history = [];
    this.oldestServableRV = this.rv;
    return this.rv;
  }

  /**
   * Events after `fromRV`, or undefined when that RV is older than the retained history.
   * Registering the listener in the same call means no event can fall between replay and live.
   */
  subscribe(fromRV: number, listener: StoreListener): { replay: StoreEvent[]; unsubscribe: () => void } | undefined {
    if (fromRV < this.oldestServableRV) return undefined;
    const replay = this.history.filter((e) => e.rv > fromRV);
    this.listeners.add(listener);
    return { replay, unsubscribe: () => this.listeners.delete(listener) };
  }

  oldestRV(): number {
    return this.oldestServableRV;
  }

  private scheduleSave(): void {
    if (!this.stateFile || this.saveTimer) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      try {
        this.save();
      } catch (err) {
        this.onSaveError(err as Error);
      }
    }, 50);
  }

  /** Writes the snapshot atomically (temp file + rename), so a crash never leaves half a file. */
  save(): void {
    if (!this.stateFile) return;
    if (this.saveTimer) {
      clearTimeout(this.saveTimer);
      this.saveTimer = undefined;
    }
    const objects: Array<{ storageKey: string; object: KubeObject }> = [];
    for (const [storageKey, b] of this.buckets) for (const object of b.values()) objects.push({ storageKey, object });
    // CRDs first, so a reload registers their types before their objects come back.
    objects.sort((a, b) =>
      Number(b.storageKey.startsWith('apiextensions.k8s.io/')) - Number(a.storageKey.startsWith('apiextensions.k8s.io/')));
    const tmp = `${this.stateFile}.tmp`;
    writeFileSync(tmp, JSON.stringify({ resourceVersion: this.rv, objects }));
    renameSync(tmp, this.stateFile);
  }
}

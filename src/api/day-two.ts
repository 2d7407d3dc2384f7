// Day-two requests are annotations, not spec fields. `kubectl annotate` (and `kubectl halb`,
// which writes the same keys) adds them without touching what Argo CD or Flux apply: Argo CD's
// three-way diff compares only the fields in the last-applied configuration, so an annotation
// added by hand leaves the application in sync, and a self-healing sync does not remove it;
// a spec field changed by hand is OutOfSync at once, and self-heal would undo it. A team that
// wants the preference in Git writes the annotation in its manifest, where it is declarative
// like any other field. See docs/operations.md, "Planned failover".
import type { ObjectMeta } from './types.ts';

/** Names the node that should hold the reserved IP. The operator moves MASTER to it, with no
 *  dropped request, whenever it is a healthy BACKUP; the preference stays until removed. */
export const PREFERRED_NODE_ANNOTATION = 'halb.dev/preferred-node';

/** `maintenance.halb.dev/<node>: <note>` takes a node out of MASTER duty (it hands over first if
 *  it is MASTER). Any value but "false" or "off" counts; the value is a note shown in status. */
export const MAINTENANCE_ANNOTATION_PREFIX = 'maintenance.halb.dev/';

export function maintenanceAnnotation(node: string): string {
  return `${MAINTENANCE_ANNOTATION_PREFIX}${node}`;
}

export interface DayTwoRequests {
  preferredNode?: string;
  /** Nodes marked for maintenance, with the annotation's note. */
  maintenance: Map<string, string>;
}

const OFF_VALUES = new Set(['false', 'off']);

/** What an object's annotations ask for. */
export function dayTwoRequests(metadata: Pick<ObjectMeta, 'annotations'>): DayTwoRequests {
  const annotations = metadata.annotations ?? {};
  const maintenance = new Map<string, string>();
  for (const [key, value] of Object.entries(annotations)) {
    if (!key.startsWith(MAINTENANCE_ANNOTATION_PREFIX) || OFF_VALUES.has(value.trim().toLowerCase())) continue;
    maintenance.set(key.slice(MAINTENANCE_ANNOTATION_PREFIX.length), value.trim());
  }
  const preferred = annotations[PREFERRED_NODE_ANNOTATION]?.trim();
  return { ...(preferred ? { preferredNode: preferred } : {}), maintenance };
}

/** The annotations the operator acts on, as one string: a change of any of them is worth a reconcile. */
export function dayTwoSignature(metadata: Pick<ObjectMeta, 'annotations'>): string {
  return Object.entries(metadata.annotations ?? {})
    .filter(([key]) => key === PREFERRED_NODE_ANNOTATION || key.startsWith(MAINTENANCE_ANNOTATION_PREFIX))
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, value]) => `${key}=${value}`)
    .join(',');
}

// The controller's view of Kubernetes: reads from the informers' caches (a reconcile never
// GETs), writes through one small writer. Writes carry the resourceVersion they were computed
// from, so a write based on a stale cache gets a 409 and the pass is simply run again.
import * as k8s from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION } from '../api/schema.ts';
import type { HALoadBalancer, HALoadBalancerStatus } from '../api/types.ts';
import { mergePatch } from './merge-patch.ts';

/** A read-only cache of one kind, filled by an informer. */
export interface ObjectCache<T> {
  get(namespace: string, name: string): T | undefined;
  list(): T[];
}

export type SecretCache = ObjectCache<k8s.V1Secret>;

export interface KubeWriter {
  /** Merge-patches status from the object's to `status` (a field left out is removed),
   *  conditional on the object's resourceVersion. */
  patchStatus(object: HALoadBalancer, status: HALoadBalancerStatus): Promise<void>;
  /** Replaces metadata.finalizers, conditional on the object's resourceVersion. */
  setFinalizers(object: HALoadBalancer, finalizers: string[]): Promise<void>;
}

export function createKubeWriter(kc: k8s.KubeConfig): KubeWriter {
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  const mergePatchHeader = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
  const target = (object: HALoadBalancer) => ({
    group: GROUP, version: VERSION, plural: PLURAL, namespace: object.metadata.namespace ?? 'default', name: object.metadata.name,
  });
  return {
    async patchStatus(object, status) {
      const body = { metadata: { resourceVersion: object.metadata.resourceVersion }, status: mergePatch(object.status ?? {}, status) ?? {} };
      await api.patchNamespacedCustomObjectStatus({ ...target(object), body }, mergePatchHeader);
    },
    async setFinalizers(object, finalizers) {
      const body = { metadata: { finalizers, resourceVersion: object.metadata.resourceVersion } };
      await api.patchNamespacedCustomObject({ ...target(object), body }, mergePatchHeader);
    },
  };
}

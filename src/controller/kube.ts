// The controller's view of Kubernetes: reads from the informers' caches (a reconcile never
// GETs), writes through one small writer. Writes carry the resourceVersion they were computed
// from, so a write based on a stale cache gets a 409 and the pass is simply run again.
import * as k8s from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION } from '../api/schema.ts';
import type { HALoadBalancer, HALoadBalancerStatus } from '../api/types.ts';
import { statusCodeOf } from './errors.ts';
import { mergePatch } from './merge-patch.ts';
import type { MetricsEndpoints } from './metrics-endpoints.ts';

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
  /** Creates or updates an object's metrics Service and EndpointSlice (server-side apply). */
  applyMetricsEndpoints(endpoints: MetricsEndpoints): Promise<void>;
}

async function createOrApply(create: () => Promise<unknown>, apply: () => Promise<unknown>): Promise<void> {
  try {
    await create();
  } catch (err) {
    if (statusCodeOf(err) !== 409) throw err;
    await apply();
  }
}

/** The field manager of what the operator writes by server-side apply. */
export const FIELD_MANAGER = 'halb-operator';

export function createKubeWriter(kc: k8s.KubeConfig): KubeWriter {
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const discovery = kc.makeApiClient(k8s.DiscoveryV1Api);
  const mergePatchHeader = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
  const applyHeader = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.ServerSideApply);
  const target = (object: HALoadBalancer) => ({
    group: GROUP, version: VERSION, plural: PLURAL, namespace: object.metadata.namespace ?? 'default', name: object.metadata.name,
  });
  return {
    async patchStatus(object, status) {
      const body = {
        metadata: { resourceVersion: object.metadata.resourceVersion }, status: mergePatch(object.status ?? {}, status) ?? {},
      };
      await api.patchNamespacedCustomObjectStatus({ ...target(object), body }, mergePatchHeader);
    },
    async setFinalizers(object, finalizers) {
      const body = { metadata: { finalizers, resourceVersion: object.metadata.resourceVersion } };
      await api.patchNamespacedCustomObject({ ...target(object), body }, mergePatchHeader);
    },
    async applyMetricsEndpoints({ service, slice }) {
      const at = (o: { metadata?: k8s.V1ObjectMeta }) =>
        ({ name: o.metadata!.name!, namespace: o.metadata!.namespace!, fieldManager: FIELD_MANAGER });
      // Created by a create, so RBAC's create verb is what making one takes (an apply that
      // creates is authorized as create too, but audited as a patch); changed by an apply.
      await createOrApply(
        () => core.createNamespacedService({ namespace: service.metadata!.namespace!, body: service, fieldManager: FIELD_MANAGER }),
        () => core.patchNamespacedService({ ...at(service), body: service, force: true }, applyHeader),
      );
      await createOrApply(
        () => discovery.createNamespacedEndpointSlice({ namespace: slice.metadata!.namespace!, body: slice, fieldManager: FIELD_MANAGER }),
        () => discovery.patchNamespacedEndpointSlice({ ...at(slice), body: slice, force: true }, applyHeader),
      );
    },
  };
}

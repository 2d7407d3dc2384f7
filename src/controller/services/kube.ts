// The Service controller's writes: its HALoadBalancers (created owned by the Service, replaced
// whole when the desired spec changes, deleted with a UID precondition) and the Service's status
// and finalizers. Every write carries the resourceVersion it was computed from, so a write from a
// stale cache gets a 409 and the pass runs again.
import * as k8s from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION } from '../../api/schema.ts';
import type { HALoadBalancerInput, StoredHALoadBalancer } from '../../api/types.ts';
import { isNotFound } from '../errors.ts';
import type { ServiceStatus } from './status.ts';

export interface ServiceWriter {
  createBalancer(balancer: HALoadBalancerInput): Promise<void>;
  /** Replaces the object's metadata labels and spec; status is the operator's and stays. */
  replaceBalancer(current: StoredHALoadBalancer, next: HALoadBalancerInput): Promise<void>;
  /** Deletes it unless it is already gone (or is another object of the same name). */
  deleteBalancer(balancer: StoredHALoadBalancer): Promise<void>;
  patchServiceStatus(service: k8s.V1Service, status: ServiceStatus): Promise<void>;
  setServiceFinalizers(service: k8s.V1Service, finalizers: string[]): Promise<void>;
}

const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

export function createServiceWriter(kc: k8s.KubeConfig): ServiceWriter {
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const target = (namespace: string, name: string) => ({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name });
  const namespaceOf = (o: { metadata?: { namespace?: string } }) => o.metadata?.namespace ?? 'default';
  return {
    async createBalancer(balancer) {
      await custom.createNamespacedCustomObject({ ...target(namespaceOf(balancer), ''), body: balancer });
    },
    async replaceBalancer(current, next) {
      const body = { ...next, metadata: { ...current.metadata, labels: next.metadata.labels,
        ownerReferences: next.metadata.ownerReferences } };
      await custom.replaceNamespacedCustomObject({ ...target(namespaceOf(current), current.metadata.name), body });
    },
    async deleteBalancer(balancer) {
      try {
        await custom.deleteNamespacedCustomObject({
          ...target(namespaceOf(balancer), balancer.metadata.name), body: { preconditions: { uid: balancer.metadata.uid } },
        });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    },
    async patchServiceStatus(service, status) {
      const body = {
        metadata: { resourceVersion: service.metadata?.resourceVersion },
        status: { loadBalancer: { ingress: status.ingress }, conditions: status.conditions },
      };
      await core.patchNamespacedServiceStatus({ name: service.metadata!.name!, namespace: namespaceOf(service), body }, mergePatch);
    },
    async setServiceFinalizers(service, finalizers) {
      const body = { metadata: { finalizers, resourceVersion: service.metadata?.resourceVersion } };
      await core.patchNamespacedService({ name: service.metadata!.name!, namespace: namespaceOf(service), body }, mergePatch);
    },
  };
}

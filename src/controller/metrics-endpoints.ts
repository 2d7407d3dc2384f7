// Every node's HAProxy metrics, reachable the Kubernetes way: for each HALoadBalancer a headless
// Service and an EndpointSlice listing its nodes' VPC addresses on HAProxy's metrics port, owned
// by the object (garbage-collected with it). The chart's node ServiceMonitor selects them by the
// label halb.dev/metrics=haproxy. Written by server-side apply, only when they change.
import type * as k8s from '@kubernetes/client-node';
import { API_VERSION, KIND } from '../api/schema.ts';
import type { HALoadBalancer, HALoadBalancerStatus } from '../api/types.ts';
import { defaultSettings } from '../render/index.ts';
import type { PassContext } from './context.ts';

export const METRICS_PORT_NAME = 'haproxy-metrics';
/** The label the node ServiceMonitor selects, and the one naming the HALoadBalancer. */
export const METRICS_LABEL = 'halb.dev/metrics';
export const OBJECT_LABEL = 'halb.dev/haloadbalancer';
/** endpointslice.kubernetes.io/managed-by (a label value: no slash): the EndpointSlice
 *  controller leaves slices with another manager alone. */
export const SLICE_MANAGER = 'operator.halb.dev';

export interface MetricsEndpoints {
  service: k8s.V1Service;
  slice: k8s.V1EndpointSlice;
}

export const metricsServiceName = (object: HALoadBalancer) => `${object.metadata.name}-metrics`;

/** The Service and EndpointSlice for the object's nodes that have a VPC address. */
export function desiredMetricsEndpoints(object: HALoadBalancer, status: HALoadBalancerStatus, metricsPort: number): MetricsEndpoints {
  const name = metricsServiceName(object);
  const namespace = object.metadata.namespace ?? 'default';
  const labels = {
    'app.kubernetes.io/name': 'halb', 'app.kubernetes.io/component': 'load-balancer-metrics',
    [METRICS_LABEL]: 'haproxy', [OBJECT_LABEL]: object.metadata.name,
  };
  // No blockOwnerDeletion: with it, OwnerReferencesPermissionEnforcement would ask the operator
  // for update on haloadbalancers/finalizers, which it otherwise never needs.
  const ownerReferences = [
    { apiVersion: API_VERSION, kind: KIND, name: object.metadata.name, uid: object.metadata.uid!, controller: true },
  ];
  const port = { name: METRICS_PORT_NAME, port: metricsPort, protocol: 'TCP' };
  return {
    service: {
      apiVersion: 'v1', kind: 'Service',
      metadata: { name, namespace, labels, ownerReferences },
      // Headless, without a selector: the endpoints are the EndpointSlice below, not pods.
      spec: { clusterIP: 'None', ports: [{ ...port, targetPort: metricsPort }] },
    },
    slice: {
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
      metadata: {
        name, namespace, labels: { ...labels, 'kubernetes.io/service-name': name, 'endpointslice.kubernetes.io/managed-by': SLICE_MANAGER },
        ownerReferences,
      },
      addressType: 'IPv4',
      endpoints: (status.nodes ?? []).filter((n) => n.privateIPv4).map((n) => ({
        addresses: [n.privateIPv4!],
        // The node's name: headless DNS gives <node>.<name>-metrics.<namespace>.svc, and the
        // ServiceMonitor labels the target with it.
        hostname: n.name,
        conditions: { ready: n.vrrpState !== undefined && n.vrrpState !== 'UNKNOWN' },
      })),
      ports: [port],
    },
  };
}

/** What was last written for each object, so a pass writes only a change (and after a restart, once). */
export class AppliedMetricsEndpoints {
  private readonly written = new Map<string, string>();

  changed(namespace: string, name: string, endpoints: MetricsEndpoints): boolean {
    return this.written.get(`${namespace}/${name}`) !== JSON.stringify(endpoints);
  }

  markWritten(namespace: string, name: string, endpoints: MetricsEndpoints): void {
    this.written.set(`${namespace}/${name}`, JSON.stringify(endpoints));
  }

  forget(namespace: string, name: string): void {
    this.written.delete(`${namespace}/${name}`);
  }
}

/** Writes the object's metrics Service and EndpointSlice when they differ from the last written. */
export async function syncMetricsEndpoints(ctx: PassContext, object: HALoadBalancer, status: HALoadBalancerStatus): Promise<void> {
  const metricsPort = ctx.settings.render?.metricsPort ?? defaultSettings().metricsPort;
  const endpoints = desiredMetricsEndpoints(object, status, metricsPort);
  const namespace = object.metadata.namespace ?? 'default';
  if (!ctx.metricsEndpoints.changed(namespace, object.metadata.name, endpoints)) return;
  await ctx.kube.applyMetricsEndpoints(endpoints);
  ctx.metricsEndpoints.markWritten(namespace, object.metadata.name, endpoints);
  ctx.log.info({ service: endpoints.service.metadata?.name, endpoints: endpoints.slice.endpoints?.length ?? 0 },
    'wrote the metrics Service and EndpointSlice');
}

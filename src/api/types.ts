// The HALoadBalancer object as the operator and the CLI handle it. Spec and status types are
// generated from schema.ts (types.generated.ts); this file adds the Kubernetes envelope.
import type { HALoadBalancerSpec, HALoadBalancerSpecInput, HALoadBalancerStatus } from './types.generated.ts';

export type * from './types.generated.ts';

/** An owner of the object; the Service controller's HALoadBalancers are owned by their Service. */
export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
}

/** An HALoadBalancer after the API server's defaulting: what the operator reconciles. */
export interface HALoadBalancer {
  apiVersion: 'halb.dev/v1alpha1';
  kind: 'HALoadBalancer';
  metadata: ObjectMeta;
  spec: HALoadBalancerSpec;
  status?: HALoadBalancerStatus;
}

/** An HALoadBalancer as a user writes it. */
export interface HALoadBalancerInput {
  apiVersion: 'halb.dev/v1alpha1';
  kind: 'HALoadBalancer';
  metadata: ObjectMeta;
  spec: HALoadBalancerSpecInput;
}

/** A Secret, with its data already decoded from base64. */
export interface SecretData {
  name: string;
  namespace?: string;
  type?: string;
  data: Record<string, string>;
}

/**
 * An HALoadBalancer as the API server stores it: defaults outside lists filled in, list items
 * as written. withDefaults() (src/api/defaults.ts) turns its spec into what the operator uses.
 */
export type StoredHALoadBalancer = Omit<HALoadBalancer, 'spec'> & { spec: HALoadBalancerSpecInput };

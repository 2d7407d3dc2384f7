// The kinds deploy/ installs that the Kubernetes emulator does not serve (it serves Namespaces,
// Secrets, ConfigMaps, Services, EndpointSlices, Events, Leases and CRDs): ServiceAccount, Deployment and the
// four RBAC kinds, added to an emulator for a test. Each is stored as sent, after the checks a
// real API server makes that matter here: unknown top-level fields (strict decoding) and the
// kind's OpenAPI schema, through kubernetes-models' validators.
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import type { KubeEmulator } from '../../src/sandbox/kube/index.ts';
import { ALL_VERBS, type ResourceDef } from '../../src/sandbox/kube/resources.ts';
import { builtinTableSpec } from '../../src/sandbox/kube/table.ts';
import type { KubeObject } from '../../src/sandbox/kube/store.ts';

interface Model { validate(): void }
type ModelClass = new (data: never) => Model;

const KINDS: Array<{ group: string; kind: string; plural: string; namespaced: boolean; known: string[]; model: ModelClass }> = [
  {
    group: '', kind: 'ServiceAccount', plural: 'serviceaccounts', namespaced: true,
    known: ['secrets', 'imagePullSecrets', 'automountServiceAccountToken'], model: ServiceAccount,
  },
  { group: 'apps', kind: 'Deployment', plural: 'deployments', namespaced: true, known: ['spec', 'status'], model: Deployment },
  {
    group: 'rbac.authorization.k8s.io', kind: 'ClusterRole', plural: 'clusterroles', namespaced: false,
    known: ['rules', 'aggregationRule'], model: ClusterRole,
  },
  {
    group: 'rbac.authorization.k8s.io', kind: 'ClusterRoleBinding', plural: 'clusterrolebindings', namespaced: false,
    known: ['subjects', 'roleRef'], model: ClusterRoleBinding,
  },
  { group: 'rbac.authorization.k8s.io', kind: 'Role', plural: 'roles', namespaced: true, known: ['rules'], model: Role },
  {
    group: 'rbac.authorization.k8s.io', kind: 'RoleBinding', plural: 'rolebindings', namespaced: true,
    known: ['subjects', 'roleRef'], model: RoleBinding,
  },
];

function def(k: (typeof KINDS)[number]): ResourceDef {
  const version = 'v1';
  return {
    group: k.group, version, kind: k.kind, listKind: `${k.kind}List`, plural: k.plural, singular: k.kind.toLowerCase(),
    namespaced: k.namespaced, shortNames: [], categories: [], verbs: ALL_VERBS, statusSubresource: false,
    storageKey: `${k.group || 'core'}/${k.plural}`, custom: false, allowUnconditionalUpdate: true, allowCreateOnUpdate: false,
    knownFields: k.known, selectableFields: [], table: builtinTableSpec(k.kind),
    fields: (o: KubeObject) =>
      ({ 'metadata.name': String(o.metadata.name ?? ''), 'metadata.namespace': String(o.metadata.namespace ?? '') }),
    validate(o: KubeObject) {
      try {
        new k.model(structuredClone(o) as never).validate();
        return [];
      } catch (err) {
        const errors = (err as { errors?: Array<{ instancePath: string; message?: string }> }).errors ?? [];
        return errors.length
          ? errors.map((e) => ({
            reason: 'FieldValueInvalid', field: e.instancePath.slice(1).replace(/\//g, '.'), message: `Invalid value: ${e.message ?? ''}`,
          }))
          : [{ reason: 'FieldValueInvalid', message: (err as Error).message }];
      }
    },
  };
}

/** Makes the emulator serve the kinds above (until it is closed). */
export function serveDeployKinds(emu: KubeEmulator): void {
  emu.api.registry.setCRD('halb-test.deploy-kinds', KINDS.map(def));
}

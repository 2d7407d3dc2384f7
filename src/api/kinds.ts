// Which kinds `kubectl apply` would find. A manifest may carry other objects (a Deployment, a
// cert-manager Certificate) beside HALoadBalancers, and validation passes those over; but a kind
// kubectl cannot map fails the whole apply ("no matches for kind"), so validation fails it too:
// a look-alike letter in "Secret" must not be skipped in silence.
import { API_VERSION, GROUP, KIND } from './schema.ts';

// The built-in kinds of a current cluster, by apiVersion.
const builtIn = new Map<string, readonly string[]>(Object.entries({
  v1: ['Binding', 'ConfigMap', 'Endpoints', 'Event', 'LimitRange', 'List', 'Namespace', 'Node', 'PersistentVolume', 'PersistentVolumeClaim',
    'Pod', 'PodTemplate', 'ReplicationController', 'ResourceQuota', 'Secret', 'Service', 'ServiceAccount'],
  'apps/v1': ['ControllerRevision', 'DaemonSet', 'Deployment', 'ReplicaSet', 'StatefulSet'],
  'batch/v1': ['CronJob', 'Job'],
  'autoscaling/v1': ['HorizontalPodAutoscaler'],
  'autoscaling/v2': ['HorizontalPodAutoscaler'],
  'policy/v1': ['PodDisruptionBudget'],
  'networking.k8s.io/v1': ['Ingress', 'IngressClass', 'NetworkPolicy'],
  'rbac.authorization.k8s.io/v1': ['ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'],
  'apiextensions.k8s.io/v1': ['CustomResourceDefinition'],
  'admissionregistration.k8s.io/v1': ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration', 'ValidatingAdmissionPolicy',
    'ValidatingAdmissionPolicyBinding'],
  'apiregistration.k8s.io/v1': ['APIService'],
  'scheduling.k8s.io/v1': ['PriorityClass'],
  'storage.k8s.io/v1': ['CSIDriver', 'CSINode', 'CSIStorageCapacity', 'StorageClass', 'VolumeAttachment'],
  'coordination.k8s.io/v1': ['Lease'],
  'discovery.k8s.io/v1': ['EndpointSlice'],
  'certificates.k8s.io/v1': ['CertificateSigningRequest'],
  'node.k8s.io/v1': ['RuntimeClass'],
  'events.k8s.io/v1': ['Event'],
  'flowcontrol.apiserver.k8s.io/v1': ['FlowSchema', 'PriorityLevelConfiguration'],
}));

function groupOf(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}

/** Groups only the cluster itself serves: a kind there that is not built in cannot be mapped. */
function isBuiltInGroup(group: string): boolean {
  return group === '' || !group.includes('.') || group.endsWith('.k8s.io');
}

/**
 * Why kubectl would fail on this apiVersion/kind, or undefined when it would find it (a
 * built-in kind, an HALoadBalancer, or a kind of another project's API group, which this
 * offline check cannot know and passes over). Kinds are identifiers: a look-alike letter from
 * another script never names a kind.
 */
export function unknownKindProblem(apiVersion: unknown, kind: unknown): { path: string; message: string } | undefined {
  if (typeof kind !== 'string' || kind === '') return { path: 'kind', message: 'required field is missing' };
  if (typeof apiVersion !== 'string' || apiVersion === '') return { path: 'apiVersion', message: 'required field is missing' };
  if (!/^[A-Za-z][A-Za-z0-9]*$/.test(kind)) {
    return { path: 'kind', message: 'a kind is made of ASCII letters and digits only; kubectl finds no such kind' };
  }
  const group = groupOf(apiVersion);
  if (group === GROUP) {
    return apiVersion === API_VERSION && kind === KIND ? undefined
      : {
        path: apiVersion === API_VERSION ? 'kind' : 'apiVersion',
        message: `${GROUP} serves ${KIND} in ${API_VERSION} only; kubectl finds no kind ${kind} in ${apiVersion}`,
      };
  }
  if (!isBuiltInGroup(group)) return undefined;
  if (builtIn.get(apiVersion)?.includes(kind)) return undefined;
  return { path: 'kind', message: `kubectl finds no kind ${kind} in ${apiVersion} (no matches for kind)` };
}

// How the plugin reaches the cluster, as kubectl does: the kubeconfig from --kubeconfig, else
// $KUBECONFIG, else ~/.kube/config; --context picks a context; the namespace is --namespace,
// else the context's, else default. Day-two requests are annotations (src/api/day-two.ts).
import * as k8s from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION } from '../api/schema.ts';
import type { HALoadBalancer } from '../api/types.ts';
import { statusCodeOf } from '../controller/errors.ts';

export interface ClusterFlags {
  namespace?: string | undefined;
  context?: string | undefined;
  kubeconfig?: string | undefined;
}

/** The flags every command that talks to the cluster takes, for node:util parseArgs. */
export const clusterOptions = {
  namespace: { type: 'string', short: 'n' },
  context: { type: 'string' },
  kubeconfig: { type: 'string' },
} as const;

export const clusterHelp = `  -n, --namespace NS   the object's namespace (default: the context's, else default)
      --context NAME   the kubeconfig context to use
      --kubeconfig F   the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)`;

/** An error for people: printed as `error: ...`, exit 1. */
export class PluginError extends Error {}

export interface Cluster {
  namespace: string;
  get(name: string): Promise<HALoadBalancer>;
  /** Sets annotations (null removes one) with a JSON merge patch, as `kubectl annotate` does. */
  annotate(name: string, annotations: Record<string, string | null>): Promise<void>;
  /** One key of a Secret in the namespace, decoded. */
  secretValue(name: string, key: string): Promise<string>;
}

export function connect(flags: ClusterFlags): Cluster {
  const kc = new k8s.KubeConfig();
  if (flags.kubeconfig) kc.loadFromFile(flags.kubeconfig);
  else kc.loadFromDefault();
  if (flags.context) {
    if (!kc.getContextObject(flags.context)) throw new PluginError(`context "${flags.context}" does not exist in the kubeconfig`);
    kc.setCurrentContext(flags.context);
  }
  const namespace = flags.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
  const objects = kc.makeApiClient(k8s.CustomObjectsApi);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const target = (name: string) => ({ group: GROUP, version: VERSION, namespace, plural: PLURAL, name });
  const notFound = (what: string) => (err: unknown): never => {
    if (statusCodeOf(err) === 404) throw new PluginError(`${what} not found in namespace ${namespace}`);
    throw err;
  };
  return {
    namespace,
    get: (name) => (objects.getNamespacedCustomObject(target(name)) as Promise<HALoadBalancer>)
      .catch(notFound(`haloadbalancers.${GROUP} "${name}"`)),
    annotate: async (name, annotations) => {
      await objects.patchNamespacedCustomObject(
        { ...target(name), body: { metadata: { annotations } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      )
        .catch(notFound(`haloadbalancers.${GROUP} "${name}"`));
    },
    secretValue: async (name, key) => {
      const secret = await core.readNamespacedSecret({ name, namespace }).catch(notFound(`secret "${name}"`));
      const value = secret.data?.[key];
      if (value === undefined) throw new PluginError(`secret "${name}" has no key ${key}`);
      return Buffer.from(value, 'base64').toString('utf8');
    },
  };
}

// The operator's identity on a real API server, made as a cluster makes it: the ServiceAccount and
// RBAC objects of an install (`kubectl kustomize deploy/...`, applied as they are), a Pod of the
// operator's Deployment (it stays Pending: no scheduler or kubelet runs), and a token from the
// TokenRequest API bound to that Pod, as the kubelet requests it for the Pod's projected volume.
// The token, the CA and the namespace are written as that volume holds them, and the client-node
// config reads them as the in-cluster loader does.
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';
import type { RealKube } from './control-plane.ts';
import { adminKubeConfig } from './control-plane.ts';

const DEPLOY = fileURLToPath(new URL('../../../deploy/', import.meta.url));
export const KUBECTL = process.env.KUBECTL ?? 'kubectl';

/** What an install makes the operator's identity from; the rest (CRD, Deployment) is not needed. */
const IDENTITY_KINDS = new Set(['Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding']);

/** Seconds the kubelet asks for; the API server extends Pod-bound tokens to a year. */
const KUBELET_TOKEN_SECONDS = 3607;

export interface OperatorIdentity {
  namespace: string;
  serviceAccount: string;
  /** system:serviceaccount:<namespace>:<name>, as the authorizer and `kubectl --as` name it. */
  user: string;
  /** The folder laid out as /var/run/secrets/kubernetes.io/serviceaccount. */
  tokenDir: string;
  /** A kubeconfig with the token, for `halb operator --kubeconfig` and kubectl. */
  kubeconfig: string;
  /** client-node's in-cluster configuration: the server, the CA file and the token file. */
  kubeConfig(): k8s.KubeConfig;
}

export function kustomize(folder: string): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    execFile(KUBECTL, ['kustomize', join(DEPLOY, folder)], { maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`kubectl kustomize deploy/${folder} failed: ${stderr || err.message}`));
      resolve(parseAllDocuments(stdout).map((d) => d.toJS() as Record<string, unknown>).filter(Boolean));
    });
  });
}

/** Server-side apply of each object, as the admin, in order. */
export async function applyAsAdmin(kube: RealKube, objects: Record<string, unknown>[]): Promise<void> {
  const client = k8s.KubernetesObjectApi.makeApiClient(adminKubeConfig(kube));
  for (const object of objects) {
    await client.patch(object as k8s.KubernetesObject, undefined, undefined, 'halb-sandbox', true, k8s.PatchStrategy.ServerSideApply);
  }
}

/**
 * Installs the identity part of `deploy/<folder>` (deploy/base, or an overlay) and returns the
 * operator's credentials, written under `dir`.
 */
export async function installOperatorIdentity(kube: RealKube, dir: string, folder = 'base'): Promise<OperatorIdentity> {
  const objects = await kustomize(folder);
  await applyAsAdmin(kube, objects.filter((o) => IDENTITY_KINDS.has(o.kind as string)));
  const deployment = objects.find((o) => o.kind === 'Deployment') as k8s.V1Deployment | undefined;
  if (!deployment?.spec?.template.spec) throw new Error(`deploy/${folder} has no Deployment for the operator`);
  const namespace = deployment.metadata!.namespace!;
  const serviceAccount = deployment.spec.template.spec.serviceAccountName!;

  const admin = adminKubeConfig(kube);
  const core = admin.makeApiClient(k8s.CoreV1Api);
  const podName = `${deployment.metadata!.name}-sandbox`;
  let pod: k8s.V1Pod;
  try {
    pod = await core.readNamespacedPod({ name: podName, namespace });
  } catch {
    pod = await core.createNamespacedPod({
      namespace,
      body: {
        apiVersion: 'v1', kind: 'Pod',
        metadata: { name: podName, namespace, labels: deployment.spec.template.metadata?.labels ?? {} },
        spec: deployment.spec.template.spec,
      },
    });
  }
  const token = await core.createNamespacedServiceAccountToken({
    name: serviceAccount, namespace,
    body: {
      apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest',
      spec: {
        audiences: [], expirationSeconds: KUBELET_TOKEN_SECONDS,
        boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: podName, uid: pod.metadata!.uid! },
      },
    },
  });

  const tokenDir = join(dir, 'serviceaccount');
  mkdirSync(tokenDir, { recursive: true, mode: 0o700 });
  const tokenValue = token.status?.token;
  if (!tokenValue) throw new Error(`the TokenRequest for ${serviceAccount} in ${namespace} returned no token`);
  writeFileSync(join(tokenDir, 'token'), tokenValue, { mode: 0o600 });
  writeFileSync(join(tokenDir, 'ca.crt'), readFileSync(kube.pki.caCert));
  writeFileSync(join(tokenDir, 'namespace'), namespace);
  const kubeconfig = join(dir, 'operator.kubeconfig');
  writeFileSync(kubeconfig, stringify({
    apiVersion: 'v1', kind: 'Config',
    clusters: [{ name: 'halb-sandbox', cluster: { server: kube.url, 'certificate-authority': join(tokenDir, 'ca.crt') } }],
    users: [{ name: serviceAccount, user: { token: tokenValue } }],
    contexts: [{ name: serviceAccount, context: { cluster: 'halb-sandbox', user: serviceAccount, namespace } }],
    'current-context': serviceAccount,
  }), { mode: 0o600 });

  return {
    namespace, serviceAccount, tokenDir, kubeconfig,
    user: `system:serviceaccount:${namespace}:${serviceAccount}`,
    kubeConfig() {
      const kc = new k8s.KubeConfig();
      kc.loadFromClusterAndUser(
        { name: 'inCluster', server: kube.url, caFile: join(tokenDir, 'ca.crt'), skipTLSVerify: false },
        { name: 'inClusterUser', authProvider: { name: 'tokenFile', config: { tokenFile: join(tokenDir, 'token') } } },
      );
      return kc;
    },
  };
}

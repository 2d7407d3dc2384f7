// A real Kubernetes control plane on 127.0.0.1, from the upstream binaries test/upstream/build.sh
// builds: etcd, kube-apiserver and kube-controller-manager.
//
// - TLS with a CA of its own (pki.ts); clients authenticate with a client certificate (the admin,
//   in group system:masters) or a ServiceAccount token from the TokenRequest API, as a pod's.
// - Authorization: Node and RBAC, as in a kubeadm cluster. Admission: the defaults plus
//   OwnerReferencesPermissionEnforcement, the strictest check of finalizer rights.
// - kube-controller-manager runs only the controllers a cluster without workloads needs: garbage
//   collection, namespace deletion, ServiceAccounts and their tokens, and the root CA ConfigMap.
//   Node lifecycle is deliberately not among them: Node objects made by hand stay as written.
// - An audit log records every request a ServiceAccount makes (metadata only), so a test can
//   name the request the authorizer refused.
import { request } from 'node:https';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { stringify } from 'yaml';
import type { Logger } from '../../log.ts';
import { Daemon } from './daemon.ts';
import { ADMIN_USER, ensurePKI, type ControlPlanePKI } from './pki.ts';
import { CONTROL_PLANE_TOOLS, upstreamBinaries, upstreamVersion } from './upstream.ts';

export interface RealKubeOptions {
  /** Holds etcd's data, the PKI, the logs and the ports, so a restart finds them again. */
  dir: string;
  logger: Logger;
  /** How long to wait for each part to answer (default 120 s: a busy 2-core machine). */
  startTimeoutMs?: number;
}

export interface RealKube {
  kind: 'real';
  url: string;
  port: number;
  pki: ControlPlanePKI;
  versions: { kubernetes: string; etcd: string };
  /** JSON lines, one per request a ServiceAccount made (audit.k8s.io/v1 Events). */
  auditLog: string;
  /** The admin's kubeconfig (client certificate, CA), for kubectl and client-node. */
  kubeconfigYAML(namespace?: string): string;
  writeKubeconfig(path: string): void;
  /** Stops the API server and the controller manager; etcd keeps the data. */
  stop(): Promise<void>;
  /** Starts them again on the same port, with the same certificates and signing key. */
  start(): Promise<void>;
  close(): Promise<void>;
}

interface Ports { etcdClient: number; etcdPeer: number; apiserver: number }

const SERVICE_ACCOUNT_ISSUER = 'https://kubernetes.default.svc.cluster.local';
const CONTROLLERS = [
  'garbage-collector-controller', 'namespace-controller', 'serviceaccount-controller',
  'serviceaccount-token-controller', 'root-ca-certificate-publisher-controller',
];

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function ports(dir: string): Promise<Ports> {
  const file = join(dir, 'ports.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as Ports;
  const chosen = { etcdClient: await freePort(), etcdPeer: await freePort(), apiserver: await freePort() };
  writeFileSync(file, `${JSON.stringify(chosen)}\n`);
  return chosen;
}

/** GET over TLS with the cluster's CA; resolves to the status code, or 0 when nothing answered. */
function probe(url: string, ca?: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { ...(ca ? { ca } : {}), timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

async function probeHttp(url: string): Promise<number> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(5000) })).status;
  } catch {
    return 0;
  }
}

async function until(what: string, daemon: Daemon, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    daemon.assertRunning();
    if (await check()) return;
    if (Date.now() > deadline) {
      throw new Error(`${what} did not answer within ${timeoutMs / 1000} s; ${daemon.logFile} ends:\n${daemon.tail()}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

const AUDIT_POLICY = {
  apiVersion: 'audit.k8s.io/v1',
  kind: 'Policy',
  omitStages: ['RequestReceived'],
  rules: [
    { level: 'Metadata', userGroups: ['system:serviceaccounts'] },
    { level: 'None' },
  ],
};

function kubeconfig(url: string, pki: ControlPlanePKI, user: { cert: string; key: string; name: string }, namespace = 'default'): string {
  const b64 = (file: string) => readFileSync(file).toString('base64');
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'halb-sandbox', cluster: { server: url, 'certificate-authority-data': b64(pki.caCert) } }],
    users: [{ name: user.name, user: { 'client-certificate-data': b64(user.cert), 'client-key-data': b64(user.key) } }],
    contexts: [{ name: 'halb-sandbox', context: { cluster: 'halb-sandbox', user: user.name, namespace } }],
    'current-context': 'halb-sandbox',
    preferences: {},
  });
}

export async function startRealKube(options: RealKubeOptions): Promise<RealKube> {
  const { dir, logger } = options;
  const timeoutMs = options.startTimeoutMs ?? 120_000;
  const binaries = upstreamBinaries(CONTROL_PLANE_TOOLS);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pki = ensurePKI(join(dir, 'pki'));
  const port = await ports(dir);
  const url = `https://127.0.0.1:${port.apiserver}`;
  const ca = readFileSync(pki.caCert, 'utf8');
  const auditLog = join(dir, 'audit.log');
  const auditPolicy = join(dir, 'audit-policy.yaml');
  writeFileSync(auditPolicy, stringify(AUDIT_POLICY));
  const controllerManagerKubeconfig = join(dir, 'controller-manager.kubeconfig');
  writeFileSync(controllerManagerKubeconfig, kubeconfig(url, pki, {
    name: 'system:kube-controller-manager', cert: pki.controllerManagerCert, key: pki.controllerManagerKey,
  }), { mode: 0o600 });

  const etcdURL = `http://127.0.0.1:${port.etcdClient}`;
  const peerURL = `http://127.0.0.1:${port.etcdPeer}`;
  const etcd = new Daemon('etcd', binaries.etcd, [
    '--name=halb', `--data-dir=${join(dir, 'etcd')}`,
    `--listen-client-urls=${etcdURL}`, `--advertise-client-urls=${etcdURL}`,
    `--listen-peer-urls=${peerURL}`, `--initial-advertise-peer-urls=${peerURL}`,
    `--initial-cluster=halb=${peerURL}`, '--initial-cluster-state=new',
    // A test cluster: losing the last writes in a machine crash costs nothing, and fsync on a
    // shared disk costs seconds.
    '--unsafe-no-fsync', '--log-level=warn',
  ], join(dir, 'etcd.log'));
  const apiserver = new Daemon('kube-apiserver', binaries['kube-apiserver'], [
    `--etcd-servers=${etcdURL}`,
    '--bind-address=127.0.0.1', `--secure-port=${port.apiserver}`, '--advertise-address=127.0.0.1',
    // 127.0.0.1 may not stand in the kubernetes Service's endpoints; nothing here dials it.
    '--endpoint-reconciler-type=none',
    `--tls-cert-file=${pki.servingCert}`, `--tls-private-key-file=${pki.servingKey}`,
    `--client-ca-file=${pki.caCert}`,
    '--authorization-mode=Node,RBAC',
    '--enable-admission-plugins=OwnerReferencesPermissionEnforcement',
    `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
    `--service-account-key-file=${pki.serviceAccountPublicKey}`,
    `--service-account-signing-key-file=${pki.serviceAccountKey}`,
    // ClusterIPs are only allocated, never routed; the range stays clear of the fabric's 10.10/16.
    '--service-cluster-ip-range=10.96.0.0/16',
    `--audit-policy-file=${auditPolicy}`, `--audit-log-path=${auditLog}`, '--audit-log-format=json', '--audit-log-maxsize=100',
    '--profiling=false',
  ], join(dir, 'kube-apiserver.log'));
  const controllerManager = new Daemon('kube-controller-manager', binaries['kube-controller-manager'], [
    `--kubeconfig=${controllerManagerKubeconfig}`,
    `--controllers=${CONTROLLERS.join(',')}`,
    `--service-account-private-key-file=${pki.serviceAccountKey}`,
    `--root-ca-file=${pki.caCert}`,
    // Each controller acts as its own ServiceAccount under its system:controller:* role, as kubeadm sets it up.
    '--use-service-account-credentials=true',
    '--leader-elect=false', '--secure-port=0',
  ], join(dir, 'kube-controller-manager.log'));

  const startApiServer = async () => {
    const started = Date.now();
    apiserver.start();
    await until('kube-apiserver', apiserver, timeoutMs, async () => (await probe(`${url}/readyz`, ca)) === 200);
    controllerManager.start();
    logger.info({ url, ms: Date.now() - started }, 'started kube-apiserver and kube-controller-manager');
  };

  const started = Date.now();
  etcd.start();
  await until('etcd', etcd, timeoutMs, async () => (await probeHttp(`${etcdURL}/health`)) === 200);
  try {
    await startApiServer();
  } catch (err) {
    await Promise.all([controllerManager.stop(), apiserver.stop()]);
    await etcd.stop();
    throw err;
  }
  const versions = {
    kubernetes: upstreamVersion(binaries['kube-apiserver'], 'kube-apiserver'), etcd: upstreamVersion(binaries.etcd, 'etcd'),
  };
  logger.info({ url, ...versions, ms: Date.now() - started }, 'started real control plane');

  const admin = { name: ADMIN_USER, cert: pki.adminCert, key: pki.adminKey };
  let closed = false;
  return {
    kind: 'real',
    url,
    port: port.apiserver,
    pki,
    versions,
    auditLog,
    kubeconfigYAML: (namespace) => kubeconfig(url, pki, admin, namespace),
    writeKubeconfig: (path) => writeFileSync(path, kubeconfig(url, pki, admin), { mode: 0o600 }),
    async stop() {
      await controllerManager.stop();
      await apiserver.stop();
      logger.info({ url }, 'stopped kube-apiserver and kube-controller-manager');
    },
    async start() {
      await startApiServer();
    },
    async close() {
      if (closed) return;
      closed = true;
      await controllerManager.stop();
      await apiserver.stop();
      await etcd.stop();
      logger.info({ url }, 'stopped real control plane');
    },
  };
}

/** A client-node config for the admin of a running control plane. */
export function adminKubeConfig(kube: RealKube): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromString(kube.kubeconfigYAML());
  return kc;
}

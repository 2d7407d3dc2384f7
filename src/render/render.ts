// Turns an HALoadBalancer, its Secrets, the observed node facts and the host's daemon versions
// into the exact files each load-balancer node needs. Pure and deterministic.
import { createHash } from 'node:crypto';
import type { HALoadBalancer, SecretData, SecretKeySelector } from '../api/types.ts';
import { NODE_PORTS, effectiveAdvertInterval, vrrpVersion } from '../api/derived.ts';
import { DEFAULT_NAMESPACE, findSecret, secretValue } from '../api/secrets.ts';
import * as guard from './guard.ts';
import { HEALTH_URI, renderHAProxyConfig } from './haproxy.ts';
import { renderKeepalivedConfig, vrrpSettings } from './keepalived.ts';
import { renderCheckScript, renderFailoverScript, renderNotifyScript } from './scripts.ts';
import { renderAuthorizedKeys, renderFirewall, renderFirewallUnit, renderSshdDropIn } from './hardening.ts';
import { buildPEM } from './tls.ts';
import type { ObservedFacts, ObservedNode, RenderPaths, RenderSettings, RenderedFile, RenderedNode } from './types.ts';
import { haproxyFeatures, keepalivedFeatures } from './versions.ts';

export const DEFAULT_PATHS: RenderPaths = {
  haproxyConfig: '/etc/haproxy/haproxy.cfg',
  haproxyCertDir: '/etc/haproxy/certs',
  haproxyAdminSocket: '/run/haproxy/admin.sock',
  keepalivedConfig: '/etc/keepalived/keepalived.conf',
  checkScript: '/etc/keepalived/halb-check.sh',
  notifyScript: '/etc/keepalived/halb-notify.sh',
  failoverScript: '/etc/keepalived/halb-failover.sh',
  failoverToken: '/etc/keepalived/halb-failover.token',
  failoverLog: '/var/log/halb-failover.log',
  vrrpStateFile: '/run/halb/vrrp-state',
  priorityOffset: '/etc/halb/priority-offset',
  firewall: '/etc/halb/firewall.nft',
  firewallUnit: '/etc/systemd/system/halb-firewall.service',
  sshdConfig: '/etc/ssh/sshd_config.d/00-halb.conf',
  authorizedKeys: '/root/.ssh/authorized_keys',
};

/** Ubuntu 24.04, the default droplet image, ships these. */
export const DROPLET_VERSIONS = { keepalived: '2.2.8', haproxy: '2.8' } as const;

export function defaultSettings(overrides: Partial<RenderSettings> = {}): RenderSettings {
  return {
    defaultVersions: { ...DROPLET_VERSIONS },
    apiBaseURL: 'https://api.digitalocean.com',
    metadataBaseURL: 'http://169.254.169.254',
    vpcInterface: 'eth1',
    healthPort: NODE_PORTS.health,
    metricsPort: NODE_PORTS.metrics,
    sshPort: NODE_PORTS.ssh,
    failoverDeadlineSeconds: 120,
    ...overrides,
    paths: { ...DEFAULT_PATHS, ...overrides.paths },
  };
}

export interface RenderInput {
  lb: HALoadBalancer;
  /** Secrets in the HALoadBalancer's namespace, data decoded. */
  secrets: SecretData[];
  observed: ObservedFacts;
  settings: RenderSettings;
}

/** Node names are `<metadata.name>-<index>`. */
export function nodeNames(lb: HALoadBalancer): string[] {
  const name = guard.dnsLabel('metadata.name', lb.metadata.name);
  const count = guard.integer('spec.droplets.count', lb.spec.droplets.count, 2, 5);
  return Array.from({ length: count }, (_, i) => `${name}-${i}`);
}

/** 1..255, stable for the object: from its UID, or its namespace/name when it has none yet. */
export function deriveVirtualRouterID(lb: HALoadBalancer): number {
  const uid: unknown = lb.metadata.uid;
  if (uid !== undefined && typeof uid !== 'string') guard.refuse('metadata.uid', 'must be a string');
  const seed = uid ?? `${lb.metadata.namespace ?? DEFAULT_NAMESPACE}/${lb.metadata.name}`;
  const digest = createHash('sha256').update(seed).digest();
  return (digest.readUInt32BE(0) % 255) + 1;
}

/** Distinct and stable per node: node 0 gets 200, node 1 190, and so on. */
export function nodePriority(index: number): number {
  return 200 - index * 10;
}

/** sha256 over every file's path, mode and content, in path order. */
export function hashFiles(files: RenderedFile[]): string {
  const hash = createHash('sha256');
  for (const file of [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    hash.update(`${file.path}\0${file.mode.toString(8)}\0${Buffer.byteLength(file.content)}\0`);
    hash.update(file.content);
    hash.update('\0');
  }
  return `sha256:${hash.digest('hex')}`;
}

/** The Secret in the object's own namespace, picked as validation picks it (findSecret). */
function secretOf(secrets: SecretData[], lb: HALoadBalancer, field: string, name: string): SecretData {
  const namespace = lb.metadata.namespace ?? DEFAULT_NAMESPACE;
  const secret = findSecret(secrets, namespace, name);
  if (!secret) guard.refuse(field, `Secret ${name} was not found in namespace ${namespace}`);
  return secret;
}

/** A value as validation reads it (secretValue: own keys, one trailing newline dropped). */
function referencedValue(secrets: SecretData[], lb: HALoadBalancer, field: string, ref: SecretKeySelector): string {
  const value = secretValue(secretOf(secrets, lb, field, ref.name), ref.key);
  if (value === undefined) guard.refuse(field, `Secret ${ref.name} has no key ${ref.key}`);
  return value;
}

function observedNode(observed: ObservedFacts, name: string): ObservedNode {
  const node = observed.nodes.find((n) => n.name === name);
  if (!node) guard.refuse(`observed.nodes[${name}]`, 'no facts for this node (privateIPv4, anchorIPv4)');
  guard.ipv4(`observed.nodes[${name}].privateIPv4`, node.privateIPv4);
  guard.ipv4(`observed.nodes[${name}].anchorIPv4`, node.anchorIPv4);
  return node;
}

function validatePaths(paths: RenderPaths): RenderPaths {
  for (const [key, value] of Object.entries(paths)) guard.filePath(`settings.paths.${key}`, value);
  return paths;
}

export function renderNodes(input: RenderInput): RenderedNode[] {
  const { lb, secrets, observed, settings } = input;
  const spec = lb.spec;
  const paths = validatePaths(settings.paths);
  const names = nodeNames(lb);
  const nodes = names.map((name) => observedNode(observed, name));
  const privateIPs = new Set<string>();
  for (const node of nodes) {
    if (privateIPs.has(node.privateIPv4)) {
      guard.refuse(`observed.nodes[${node.name}].privateIPv4`, `${node.privateIPv4} is used by another node`);
    }
    privateIPs.add(node.privateIPv4);
  }
  const floatingIP = guard.ipv4('observed.floatingIP', observed.floatingIP || spec.floatingIP.address);
  const vpcInterface = guard.interfaceName('settings.vpcInterface', settings.vpcInterface);
  const healthPort = guard.port('settings.healthPort', settings.healthPort);
  const metricsPort = guard.port('settings.metricsPort', settings.metricsPort);
  const sshPort = guard.port('settings.sshPort', settings.sshPort);
  const nodePorts = new Map([[sshPort, 'sshd'], [metricsPort, 'HAProxy\'s metrics'], [healthPort, 'HAProxy\'s health check']]);
  spec.frontends.forEach((frontend, i) => {
    const ports = [[`spec.frontends[${i}].port`, frontend.port], [`spec.frontends[${i}].tls.port`, frontend.tls?.port]] as const;
    for (const [field, port] of ports) {
      const use = port === undefined ? undefined : nodePorts.get(port);
      if (use) guard.refuse(field, `port ${port} is used on the nodes by ${use}`);
    }
  });
  const apiBaseURL = guard.httpURL('settings.apiBaseURL', settings.apiBaseURL.replace(/\/+$/, ''));

  const tokenRef = spec.credentials.failoverTokenSecretRef ?? spec.credentials.tokenSecretRef;
  const tokenField = spec.credentials.failoverTokenSecretRef
    ? 'spec.credentials.failoverTokenSecretRef'
    : 'spec.credentials.tokenSecretRef';
  const token = guard.apiToken(tokenField, referencedValue(secrets, lb, tokenField, tokenRef));
  const authPass = spec.failover.authSecretRef
    ? referencedValue(secrets, lb, 'spec.failover.authSecretRef', spec.failover.authSecretRef)
    : undefined;

  const pemFiles: RenderedFile[] = [];
  const pemPaths: Record<string, string> = {};
  spec.frontends.forEach((frontend, i) => {
    if (!frontend.tls) return;
    const field = `spec.frontends[${i}].tls.secretRef`;
    const name = guard.dnsLabel(`spec.frontends[${i}].name`, frontend.name);
    const path = `${paths.haproxyCertDir}/${name}.pem`;
    pemPaths[name] = path;
    pemFiles.push({ path, mode: 0o600, content: buildPEM(field, secretOf(secrets, lb, field, frontend.tls.secretRef.name)) });
  });

  const virtualRouterID = spec.failover.virtualRouterID || deriveVirtualRouterID(lb);
  const failoverScript = renderFailoverScript({
    floatingIP,
    apiBaseURL,
    metadataBaseURL: settings.metadataBaseURL,
    tokenFile: paths.failoverToken,
    logFile: paths.failoverLog,
    stateFile: paths.vrrpStateFile,
    deadlineSeconds: settings.failoverDeadlineSeconds,
  });
  const checkScript = renderCheckScript(healthPort, HEALTH_URI);
  const notifyScript = renderNotifyScript({ stateFile: paths.vrrpStateFile, failoverScript: paths.failoverScript });
  const firewallUnit = renderFirewallUnit(paths.firewall);
  const sshdDropIn = renderSshdDropIn();

  return nodes.map((node, index) => {
    const peerIPv4s = nodes.filter((peer) => peer !== node).map((peer) => peer.privateIPv4);
    const versions = settings.versions?.[node.name] ?? settings.defaultVersions;
    const versionField = settings.versions?.[node.name] ? `settings.versions[${node.name}]` : 'settings.defaultVersions';
    const haproxy = renderHAProxyConfig({
      spec,
      nodeName: node.name,
      anchorIPv4: node.anchorIPv4,
      privateIPv4: node.privateIPv4,
      taggedDroplets: observed.taggedDroplets ?? {},
      pemPaths,
      healthPort,
      metricsPort,
      adminSocket: paths.haproxyAdminSocket,
      features: haproxyFeatures(`${versionField}.haproxy`, versions.haproxy),
    });
    const keepalived = renderKeepalivedConfig({
      lbName: lb.metadata.name,
      nodeName: node.name,
      vpcInterface,
      privateIPv4: node.privateIPv4,
      peerIPv4s,
      vrrp: vrrpSettings({
        advertIntervalSeconds: effectiveAdvertInterval(spec),
        version: vrrpVersion(spec),
        authPass,
        virtualRouterID,
        priority: nodePriority(index),
        preempt: spec.failover.preempt,
      }),
      checkScript: paths.checkScript,
      notifyScript: paths.notifyScript,
      failoverScript: paths.failoverScript,
      priorityOffsetFile: paths.priorityOffset,
      features: keepalivedFeatures(`${versionField}.keepalived`, versions.keepalived),
      ...(spec.failover.checkIntervalSeconds !== undefined ? { checkIntervalSeconds: spec.failover.checkIntervalSeconds } : {}),
    });
    const firewall = renderFirewall({
      nodeName: node.name,
      peerIPv4s,
      frontendAddress: node.anchorIPv4,
      frontendPorts: spec.frontends.flatMap((f) => (f.tls ? [f.port, f.tls.port] : [f.port])),
      frontendSourceCIDRs: spec.access.frontendSourceCIDRs,
      sshPort,
      sshSourceCIDRs: spec.access.sshSourceCIDRs,
      metricsPort,
      metricsSourceCIDRs: spec.access.metricsSourceCIDRs.length ? spec.access.metricsSourceCIDRs
        : observed.vpcCIDR ? [observed.vpcCIDR] : nodes.map((n) => `${n.privateIPv4}/32`),
    });
    const files: RenderedFile[] = [
      { path: paths.haproxyConfig, mode: 0o644, content: haproxy },
      { path: paths.firewall, mode: 0o644, content: firewall },
      { path: paths.firewallUnit, mode: 0o644, content: firewallUnit },
      { path: paths.sshdConfig, mode: 0o644, content: sshdDropIn },
      ...(node.authorizedKeys ? [{ path: paths.authorizedKeys, mode: 0o600, content: renderAuthorizedKeys(node.authorizedKeys) }] : []),
      ...pemFiles,
      // 0600: it may hold the VRRP password.
      { path: paths.keepalivedConfig, mode: 0o600, content: keepalived },
      { path: paths.checkScript, mode: 0o755, content: checkScript },
      { path: paths.notifyScript, mode: 0o755, content: notifyScript },
      { path: paths.failoverScript, mode: 0o755, content: failoverScript },
      { path: paths.failoverToken, mode: 0o600, content: `${token}\n` },
    ].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    return { name: node.name, files, configHash: hashFiles(files) };
  });
}

/** Facts for rendering without a cloud: addresses from the documentation and private ranges. */
export function placeholderFacts(lb: HALoadBalancer): ObservedFacts {
  return {
    floatingIP: lb.spec.floatingIP.address || '198.51.100.10',
    nodes: nodeNames(lb).map((name, i) => ({
      name,
      dropletID: 1000 + i,
      publicIPv4: `203.0.113.${11 + i}`,
      privateIPv4: `10.10.0.${11 + i}`,
      anchorIPv4: `10.20.0.${11 + i}`,
    })),
  };
}

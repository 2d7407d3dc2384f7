// Values derived from a (defaulted) spec, shared by validation, rendering and the controller,
// so that every layer agrees on what an unset field means.
import type { BackendSpec, HALoadBalancerSpec } from './types.ts';

/** The advert interval in effect: 0.2 s (VRRPv3) unless PASS auth forces VRRPv2 and whole seconds. */
export function effectiveAdvertInterval(spec: HALoadBalancerSpec): number {
  if (spec.failover.advertIntervalSeconds !== undefined) return spec.failover.advertIntervalSeconds;
  return spec.failover.authSecretRef ? 1 : 0.2;
}

/** VRRPv3 carries sub-second adverts; PASS authentication exists only in VRRPv2. */
export function vrrpVersion(spec: HALoadBalancerSpec): 2 | 3 {
  return spec.failover.authSecretRef ? 2 : 3;
}

export type BackendMode = 'http' | 'tcp';

/**
 * A backend's HAProxy mode follows the frontends that use it. A backend no frontend uses is
 * rendered as http; one used by both kinds is an error, reported by validation.
 */
export function backendModes(spec: HALoadBalancerSpec): Map<string, Set<BackendMode>> {
  const modes = new Map<string, Set<BackendMode>>();
  for (const backend of spec.backends) modes.set(backend.name, new Set());
  for (const frontend of spec.frontends) {
    const used = [frontend.defaultBackend, ...(frontend.routes ?? []).map((r) => r.backend)];
    for (const name of used) modes.get(name)?.add(frontend.protocol);
  }
  return modes;
}

export function backendMode(spec: HALoadBalancerSpec, backend: BackendSpec): BackendMode {
  const used = backendModes(spec).get(backend.name);
  return used?.has('tcp') && !used.has('http') ? 'tcp' : 'http';
}

/** Node names are `<object name>-<index>`: droplet names, tags and status keys use them. */
export function nodeName(objectName: string, index: number): string {
  return `${objectName}-${index}`;
}

/** Names of the Secrets an object refers to (in its own namespace). */
export function referencedSecrets(spec: HALoadBalancerSpec): Set<string> {
  return new Set([
    spec.credentials.tokenSecretRef.name, spec.credentials.sshKeySecretRef.name,
    ...(spec.credentials.failoverTokenSecretRef ? [spec.credentials.failoverTokenSecretRef.name] : []),
    ...(spec.failover.authSecretRef ? [spec.failover.authSecretRef.name] : []),
    ...spec.frontends.flatMap((f) => (f.tls ? [f.tls.secretRef.name] : [])),
  ]);
}

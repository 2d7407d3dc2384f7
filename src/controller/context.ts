// Everything a reconcile touches, injected, as controller-rs's Context or a cert-manager
// controller's struct: the informers' caches (no GET per pass), a Kubernetes writer, a
// DigitalOcean provider per token, a host connector, Events, metrics, a clock, and per pass an
// AbortSignal. Production wires the real ones (operator.ts); the reconciler's tests wire the
// emulator, the simulator and a stand-in host.
import type { Logger } from '../log.ts';
import type { StoredHALoadBalancer } from '../api/types.ts';
import type { DigitalOceanProvider } from '../digitalocean/provider.ts';
import type { HostConnector } from '../hosts/connector.ts';
import type { RenderSettings } from '../render/index.ts';
import type { FirewallGenerations } from './backend-firewalls.ts';
import type { EventRecorder } from './events.ts';
import type { KubeWriter, ObjectCache, SecretCache } from './kube.ts';
import type { LoginKeys } from './ssh-access.ts';
import type { AppliedMetricsEndpoints } from './metrics-endpoints.ts';
import type { SharedReads } from './shared-reads.ts';
import type { OperatorMetrics } from './telemetry.ts';

export interface ControllerSettings {
  /** How often converged objects are looked at again (drift, failovers). */
  resyncIntervalMs: number;
  /** How long the reserved IP may sit on a non-MASTER before the operator moves it. */
  backstopGraceMs: number;
  /** Render settings: the API base the failover script calls, metadata URL, versions. */
  render?: Partial<RenderSettings>;
  /** Where a node's SSH server is reached, from its droplet's public IPv4 (default: that
   *  address, port 22). Only the scale benchmark sets it, to reach its loopback stand-in hosts. */
  sshEndpoint?: (publicIPv4: string) => { host: string; port: number };
  /** The longest one reconcile may take before it is cancelled and retried. */
  reconcileDeadlineMs: number;
}

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** What lives as long as the controller: shared by every reconcile. */
export interface ControllerContext {
  /** HALoadBalancers as the API server stores them: list items without defaults. */
  objects: ObjectCache<StoredHALoadBalancer>;
  secrets: SecretCache;
  kube: KubeWriter;
  /** One DigitalOcean provider per token (its rate-limit pacing is per token). */
  cloud: (token: string) => DigitalOceanProvider;
  hosts: HostConnector;
  events: EventRecorder;
  metrics: OperatorMetrics;
  clock: Clock;
  log: Logger;
  settings: ControllerSettings;
  /** Account-wide DigitalOcean lists, read once for many objects. */
  shared: SharedReads;
  /** Which SSH key last worked on each droplet, for key rotations. */
  loginKeys: LoginKeys;
  /** Which spec generation's backend firewalls were reconciled, per object. */
  firewallGenerations: FirewallGenerations;
  /** The metrics Service and EndpointSlice last written, per object. */
  metricsEndpoints: AppliedMetricsEndpoints;
}

/** One reconcile's context: the controller's, plus the signal that cancels this pass. */
export interface PassContext extends ControllerContext {
  signal: AbortSignal;
  log: Logger;
}

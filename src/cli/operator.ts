import * as k8s from '@kubernetes/client-node';
import { startOperator } from '../controller/operator.ts';
import { DEFAULT_MAX_SESSIONS } from '../hosts/pool.ts';
import { canonicalCIDR, defaultServiceDefaults, parseSecretRef, type ServiceDefaults } from '../controller/services/settings.ts';
import { patterns } from '../api/schema.ts';
import { createLogger } from '../log.ts';
import { parseCommandArgs, runCommand, untilStopSignal, UsageError } from './args.ts';

const usage = `Usage: halb operator [options]

Runs the HALoadBalancer controller. It uses the in-cluster config inside a cluster, else
--kubeconfig or KUBECONFIG. With leader election (the default) only one replica acts; the others
stand by and take over within the lease duration.

Options:
  --kubeconfig PATH        kubeconfig to use (default: in-cluster, then KUBECONFIG)
  --namespace NS           watch one namespace (default: all)
  --do-endpoint URL        DigitalOcean API base with /v2 (default https://api.digitalocean.com/v2)
  --failover-api-url URL   API base the failover script on the nodes calls (default https://api.digitalocean.com)
  --resync SECONDS         how often converged objects are looked at again (default 30)
  --backstop-grace SECONDS how long the reserved IP may stay on a non-MASTER before it is moved (default 30)
  --concurrency N          objects reconciled at once (default 4)
  --max-ssh-sessions N     SSH sessions kept open to nodes, about 50 KB each (default 1000); past it a node
                           gets a session per pass and a failover on it is seen at the next resync
  --metrics-port PORT      /healthz, /readyz and /metrics (default 8080; --metrics-port=-1 disables)
  --no-leader-elect        act without a Lease (one replica only)
  --lease-namespace NS     namespace of the Lease (default: POD_NAMESPACE, else default)
  --log-level LEVEL        pino level (default info)
  -h, --help               show this help

Services of type LoadBalancer (each Service's halb.dev/... annotations override these):
  --load-balancer-class CLASS      serve Services with this spec.loadBalancerClass (default halb.dev/haproxy; "" turns it off)
  --service-region SLUG            region of their load balancers (default: the nodes' topology.kubernetes.io/region)
  --service-vpc-uuid UUID          VPC of their load balancers (default: the region's default VPC)
  --service-droplet-size SLUG      load-balancer droplet size (default s-1vcpu-1gb)
  --service-droplet-count N        load-balancer droplets per Service, 2 to 5 (default 2)
  --service-droplet-image SLUG     load-balancer droplet image (default ubuntu-24-04-x64)
  --service-token-secret NAME[/KEY]    DigitalOcean token Secret in each Service's namespace (default do-api/token)
  --service-ssh-key-secret NAME[/KEY]  operator SSH key Secret in each Service's namespace (default halb-ssh/ssh-privatekey)
  --service-ssh-source-cidrs CIDRS     who may SSH to their load balancers, comma-separated (default: all, flagged SSHExposed)
  --service-node-tag TAG           backends are the droplets with this tag (DOKS: k8s:<cluster-id>), not the Node objects`;

function positiveNumber(name: string, value: string | undefined, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min) {
    throw new UsageError(`--${name} must be a number >= ${min}; got ${JSON.stringify(value)}\n\n${usage}`);
  }
  return n;
}

/** The Service controller's operator-wide defaults from the --service-* flags. */
function serviceDefaults(v: Record<string, string | boolean | undefined>): ServiceDefaults {
  const text = (name: string) => (typeof v[name] === 'string' ? v[name] : undefined);
  const refuse = (name: string, what: string): never => {
    throw new UsageError(`--${name} must be ${what}; got ${JSON.stringify(text(name))}\n\n${usage}`);
  };
  const matching = (name: string, pattern: string, what: string) => {
    const value = text(name);
    if (value !== undefined && !new RegExp(pattern).test(value)) refuse(name, what);
    return value;
  };
  const secret = (name: string, fallback: ServiceDefaults['tokenSecret']) =>
    (text(name) === undefined ? fallback : parseSecretRef(text(name)!, fallback.key) ?? refuse(name, 'a Secret name, or name/key'));
  const count = positiveNumber('service-droplet-count', text('service-droplet-count'), defaultServiceDefaults.dropletCount, 2);
  if (!Number.isInteger(count) || count > 5) refuse('service-droplet-count', 'a whole number from 2 to 5');
  const cidrs = (text('service-ssh-source-cidrs') ?? '').split(',').map((c) => c.trim()).filter(Boolean);
  const region = matching('service-region', patterns.region, 'a DigitalOcean region slug');
  return {
    serviceClass: text('load-balancer-class') ?? defaultServiceDefaults.serviceClass,
    ...(region ? { region } : {}),
    vpcUUID: matching('service-vpc-uuid', patterns.uuidOrEmpty, 'a VPC UUID') ?? defaultServiceDefaults.vpcUUID,
    dropletSize: matching('service-droplet-size', patterns.slug, 'a size slug') ?? defaultServiceDefaults.dropletSize,
    dropletCount: count,
    dropletImage: matching('service-droplet-image', patterns.slug, 'an image slug') ?? defaultServiceDefaults.dropletImage,
    tokenSecret: secret('service-token-secret', defaultServiceDefaults.tokenSecret),
    sshKeySecret: secret('service-ssh-key-secret', defaultServiceDefaults.sshKeySecret),
    sshSourceCIDRs: cidrs.map((c) => canonicalCIDR(c) ?? refuse('service-ssh-source-cidrs', 'IPv4 CIDRs, comma-separated')),
    nodeTag: matching('service-node-tag', patterns.doTagOrEmpty, 'a DigitalOcean tag') ?? defaultServiceDefaults.nodeTag,
  };
}

export function operatorCommand(argv: string[]): Promise<number> {
  return runCommand(async () => {
    const args = parseCommandArgs(argv, {
      kubeconfig: { type: 'string' },
      namespace: { type: 'string' },
      'do-endpoint': { type: 'string' },
      'failover-api-url': { type: 'string' },
      resync: { type: 'string' },
      'backstop-grace': { type: 'string' },
      concurrency: { type: 'string' },
      'max-ssh-sessions': { type: 'string' },
      'metrics-port': { type: 'string' },
      'no-leader-elect': { type: 'boolean' },
      'lease-namespace': { type: 'string' },
      'log-level': { type: 'string' },
      'load-balancer-class': { type: 'string' },
      'service-region': { type: 'string' },
      'service-vpc-uuid': { type: 'string' },
      'service-droplet-size': { type: 'string' },
      'service-droplet-count': { type: 'string' },
      'service-droplet-image': { type: 'string' },
      'service-token-secret': { type: 'string' },
      'service-ssh-key-secret': { type: 'string' },
      'service-ssh-source-cidrs': { type: 'string' },
      'service-node-tag': { type: 'string' },
    }, usage);
    if (!args) return 0;
    const v = args.values;
    const log = createLogger({ level: v['log-level'] ?? 'info', name: 'halb-operator' });
    const kc = new k8s.KubeConfig();
    if (v.kubeconfig) kc.loadFromFile(v.kubeconfig);
    else kc.loadFromDefault();
    const operator = await startOperator(kc, {
      ...(v.namespace ? { namespace: v.namespace } : {}),
      ...(v['do-endpoint'] ? { doEndpoint: v['do-endpoint'] } : {}),
      ...(v['failover-api-url'] ? { render: { apiBaseURL: v['failover-api-url'] } } : {}),
      resyncIntervalMs: positiveNumber('resync', v.resync, 30, 1) * 1000,
      backstopGraceMs: positiveNumber('backstop-grace', v['backstop-grace'], 30) * 1000,
      concurrency: positiveNumber('concurrency', v.concurrency, 4, 1),
      maxSshSessions: positiveNumber('max-ssh-sessions', v['max-ssh-sessions'], DEFAULT_MAX_SESSIONS, 0),
      metricsPort: positiveNumber('metrics-port', v['metrics-port'], 8080, -1),
      leaderElection: !v['no-leader-elect'],
      leaseNamespace: v['lease-namespace'] ?? process.env.POD_NAMESPACE ?? 'default',
      leaseName: 'halb-operator',
      services: serviceDefaults(v),
    }, log);
    await untilStopSignal();
    await operator.stop();
    return 0;
  });
}

import * as k8s from '@kubernetes/client-node';
import { startOperator } from '../controller/operator.ts';
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
  --metrics-port PORT      /healthz, /readyz and /metrics (default 8080; --metrics-port=-1 disables)
  --no-leader-elect        act without a Lease (one replica only)
  --lease-namespace NS     namespace of the Lease (default: POD_NAMESPACE, else default)
  --log-level LEVEL        pino level (default info)
  -h, --help               show this help`;

function positiveNumber(name: string, value: string | undefined, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min) throw new UsageError(`--${name} must be a number >= ${min}; got ${JSON.stringify(value)}\n\n${usage}`);
  return n;
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
      'metrics-port': { type: 'string' },
      'no-leader-elect': { type: 'boolean' },
      'lease-namespace': { type: 'string' },
      'log-level': { type: 'string' },
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
      metricsPort: positiveNumber('metrics-port', v['metrics-port'], 8080, -1),
      leaderElection: !v['no-leader-elect'],
      leaseNamespace: v['lease-namespace'] ?? process.env.POD_NAMESPACE ?? 'default',
      leaseName: 'halb-operator',
    }, log);
    await untilStopSignal();
    await operator.stop();
    return 0;
  });
}

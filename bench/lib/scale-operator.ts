// The operator as the scale benchmark runs it: its own process (so its memory is its own, read
// from /proc/<pid>/status), with the CLI's defaults (resync 30 s, concurrency 4, DigitalOcean
// polling 2 s, leader election on), logging JSON lines on stdout. The one difference from
// `halb operator`: SSH goes to the benchmark's stand-in hosts, public IP a.b.c.d reached at
// 127.b.c.d on one loopback port, never to the public address itself.
// Run by bench/scale.ts: node bench/lib/scale-operator.ts '<json config>'
import * as k8s from '@kubernetes/client-node';
import { startOperator } from '../../src/controller/operator.ts';
import { createLogger } from '../../src/log.ts';
import { loopbackFor } from './ssh-standin.ts';

interface Config {
  kubeconfig: string;
  doEndpoint: string;
  apiBaseURL: string;
  sshPort: number;
  resyncIntervalMs?: number;
  logLevel?: string;
  maxSshSessions?: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as Config;
for (const field of ['kubeconfig', 'doEndpoint', 'apiBaseURL', 'sshPort'] as const) {
  if (config[field] === undefined) throw new Error(`scale-operator: config.${field} is missing`);
}
const log = createLogger({ level: config.logLevel ?? 'info', name: 'halb-operator' });
const kc = new k8s.KubeConfig();
kc.loadFromFile(config.kubeconfig);
const operator = await startOperator(kc, {
  doEndpoint: config.doEndpoint,
  render: { apiBaseURL: config.apiBaseURL },
  resyncIntervalMs: config.resyncIntervalMs ?? 30_000,
  backstopGraceMs: 30_000,
  concurrency: 4,
  ...(config.maxSshSessions !== undefined ? { maxSshSessions: config.maxSshSessions } : {}),
  metricsPort: -1,
  leaderElection: true,
  leaseNamespace: 'default',
  leaseName: 'halb-operator',
  sshEndpoint: (publicIPv4) => ({ host: loopbackFor(publicIPv4), port: config.sshPort }),
}, log);
// Live heap next to RSS: V8 grows its heap freely on a machine with memory to spare.
const memory = setInterval(() => {
  const m = process.memoryUsage();
  log.info({ rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external }, 'memory');
}, 2000);
memory.unref();
const stop = () => {
  void operator.stop().finally(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
// The benchmark holds our stdin open: when it goes away, however it died, so do we.
process.stdin.on('end', stop).resume();

// `halb sandbox do`: runs the DigitalOcean API simulator alone, in the foreground.
import { parseArgs } from 'node:util';
import pino from 'pino';
import { readableDestination } from '../../log.ts';
import { startDigitalOceanSimulator } from '../digitalocean/simulator.ts';
import { untilStopSignal } from '../../cli/args.ts';

const HELP = `Usage: halb sandbox do [--port P] [--host H] [--token T]... [--droplet-boot-ms MS]
                      [--action-ms MS] [--rate-limit N/SECONDS]... [--error-rate R]
                      [--latency-ms MS] [--seed N]

Runs the DigitalOcean API simulator in the foreground until Ctrl-C. It serves /v2 with
DigitalOcean's shapes, status codes, pagination and rate-limit headers.

  --port P              port to listen on (default 8089; 0 picks a free one)
  --host H              address to listen on (default 127.0.0.1)
  --token T             accept only this Bearer token (repeatable); default: any non-empty token
  --droplet-boot-ms MS  time from droplet create to active (default 3000)
  --action-ms MS        time for a reserved-IP assign/unassign action to complete (default 2000)
  --rate-limit N/S      a rolling rate-limit window of N requests per S seconds (repeatable;
                        default 5000/3600 and 250/60)
  --error-rate R        probability 0..1 that any request fails with 500 (default 0)
  --latency-ms MS       added to every request (default 0)
  --seed N              seed of the fault-injection random source (default 1)
  -h, --help            show this help

Example:
  halb sandbox do --port 8089 &
  curl -s -H 'Authorization: Bearer dop_v1_sandbox' http://127.0.0.1:8089/v2/droplets
`;

function nonNegative(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a number of at least 0, got "${text}"`);
  return n;
}

export async function sandboxDoCommand(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        token: { type: 'string', multiple: true },
        'droplet-boot-ms': { type: 'string' },
        'action-ms': { type: 'string' },
        'rate-limit': { type: 'string', multiple: true },
        'error-rate': { type: 'string' },
        'latency-ms': { type: 'string' },
        seed: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    process.stderr.write(`halb sandbox do: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  try {
    const port = nonNegative('port', values.port, 8089);
    if (!Number.isInteger(port) || port > 65535) throw new Error(`--port must be an integer from 0 to 65535, got "${values.port}"`);
    const errorRate = nonNegative('error-rate', values['error-rate'], 0);
    if (errorRate > 1) throw new Error(`--error-rate must be between 0 and 1, got "${values['error-rate']}"`);
    const latencyMs = nonNegative('latency-ms', values['latency-ms'], 0);
    const rateLimits = (values['rate-limit'] ?? []).map((text) => {
      const m = /^(\d+)\/(\d+(?:\.\d+)?)$/.exec(text);
      if (!m || Number(m[1]) < 1 || Number(m[2]) <= 0) {
        throw new Error(`--rate-limit must look like 250/60 (requests/seconds), got "${text}"`);
      }
      return { limit: Number(m[1]), windowMs: Number(m[2]) * 1000 };
    });
    const logger = pino({ level: 'info' }, readableDestination());
    const sim = await startDigitalOceanSimulator({
      port,
      host: values.host ?? '127.0.0.1',
      ...(values.token ? { tokens: Object.fromEntries(values.token.map((t) => [t, '*' as const])) } : {}),
      ...(rateLimits.length > 0 ? { rateLimits } : {}),
      delays: {
        dropletActiveMs: nonNegative('droplet-boot-ms', values['droplet-boot-ms'], 3000),
        reservedIpActionMs: nonNegative('action-ms', values['action-ms'], 2000),
      },
      faults: { errorRate: errorRate > 0 ? { '*': errorRate } : {}, latencyMs: latencyMs > 0 ? { '*': latencyMs } : {} },
      seed: nonNegative('seed', values.seed, 1),
      logger,
    });
    process.stdout.write(`DigitalOcean simulator listening on ${sim.endpoint}\n`);
    await untilStopSignal();
    await sim.close();
    return 0;
  } catch (err) {
    process.stderr.write(`halb sandbox do: ${(err as Error).message}\n`);
    return 1;
  }
}

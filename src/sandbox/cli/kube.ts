// `halb sandbox kube`: runs the Kubernetes API-server emulator alone, in the foreground.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { readableDestination } from '../../log.ts';
import { startKubeEmulator } from '../kube/index.ts';
import { untilStopSignal } from '../../cli/args.ts';

const HELP = `Usage: halb sandbox kube [--port P] [--host H] [--kubeconfig PATH] [--state FILE]

Runs the Kubernetes API-server emulator in the foreground until interrupted.

  --port P           port to listen on (default 6443; 0 picks a free one)
  --host H           address to listen on (default 127.0.0.1)
  --kubeconfig PATH  write a kubeconfig for kubectl and @kubernetes/client-node here
  --state FILE       keep objects in FILE across restarts (default: in memory only)
  --log-level L      pino level (default info)
  -h, --help         show this help
`;

export async function sandboxKubeCommand(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        port: { type: 'string', default: '6443' },
        host: { type: 'string', default: '127.0.0.1' },
        kubeconfig: { type: 'string' },
        state: { type: 'string' },
        'log-level': { type: 'string', default: 'info' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`halb sandbox kube: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`halb sandbox kube: --port: expected an integer 0-65535, got "${values.port}"\n`);
    return 2;
  }
  const logger = pino({ level: values['log-level'] }, readableDestination());
  let emu;
  try {
    emu = await startKubeEmulator({ port, host: values.host, stateFile: values.state ? resolve(values.state) : undefined, logger });
  } catch (err) {
    process.stderr.write(`halb sandbox kube: ${(err as Error).message}\n`);
    return 1;
  }
  if (values.kubeconfig) {
    const path = resolve(values.kubeconfig);
    emu.writeKubeconfig(path);
    logger.info({ kubeconfig: path }, 'wrote kubeconfig');
  }
  process.stdout.write(`Kubernetes API emulator listening on ${emu.url}\n`);
  await untilStopSignal();
  await emu.close();
  return 0;
}

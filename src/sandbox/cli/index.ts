// `halb sandbox <part>`: the whole system on one machine, or one of its parts alone.
import { escapeForTerminal } from '../../api/manifests.ts';
import { findCommand, tableUsage, type CommandTable } from '../../cli/command-table.ts';
import { sandboxDoCommand } from './do.ts';
import { sandboxFabricCommand } from './fabric.ts';
import { sandboxImageCommand } from './image.ts';
import { sandboxKubeCommand } from './kube.ts';
import { sandboxDownCommand, sandboxStatusCommand, sandboxUpCommand } from './up.ts';

const parts: CommandTable = {
  up: { run: sandboxUpCommand, summary: 'build the whole system on this machine and print the KUBECONFIG line' },
  down: { run: sandboxDownCommand, summary: 'remove every namespace, process and file up made' },
  status: { run: sandboxStatusCommand, summary: 'endpoints, and every host with its namespace, addresses and role' },
  kube: { run: sandboxKubeCommand, summary: 'run the Kubernetes API-server emulator alone, in the foreground' },
  do: { run: sandboxDoCommand, summary: 'run the DigitalOcean API simulator alone, in the foreground' },
  fabric: { run: sandboxFabricCommand, summary: 'build or remove the network-namespace fabric alone' },
  image: { run: sandboxImageCommand, summary: 'build the debian-13-x64 droplet image (downloads; run before up)' },
};

const usage = tableUsage('halb sandbox <command> [options]', parts, 8, 'Run "halb sandbox <command> --help" for its options.');

export async function sandboxCommand(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h') {
    console.log(usage);
    return name === undefined ? 2 : 0;
  }
  const part = findCommand(parts, name);
  if (!part) {
    console.error(`halb sandbox: unknown part "${escapeForTerminal(name)}"\n\n${usage}`);
    return 2;
  }
  return part.run(rest);
}

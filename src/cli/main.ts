// halb's command-line entry. Each subcommand lives in its own module and returns an exit code.
import { escapeForTerminal } from '../api/manifests.ts';
import { findCommand, tableUsage, type CommandTable } from './command-table.ts';
import { operatorCommand } from './operator.ts';
import { renderCommand } from './render.ts';
import { validateCommand } from './validate.ts';
import { versionCommand } from './version.ts';

type Command = (argv: string[]) => Promise<number>;

/**
 * The sandbox (an API-server emulator, a cloud simulator, the namespace fabric) is for this
 * machine, not for clusters: it is loaded only when asked for, and the operator's image leaves
 * it out (.dockerignore), where this says so instead of failing on a missing module.
 */
const sandboxCommand: Command = async (argv) => {
  const module = await import('../sandbox/cli/index.ts').catch((err: unknown) => {
    if (!(err instanceof Error && 'code' in err && err.code === 'ERR_MODULE_NOT_FOUND')) throw err;
    return undefined;
  });
  if (!module) {
    console.error('halb sandbox: the sandbox is not part of this installation (the operator image leaves it out); ' +
      'run it from a clone of halb');
    return 2;
  }
  return module.sandboxCommand(argv);
};

const commands: CommandTable = {
  validate: { run: validateCommand, summary: 'check HALoadBalancer manifests offline (schema and semantic rules)' },
  render: { run: renderCommand, summary: 'write the files each load-balancer node gets (HAProxy, keepalived, failover script)' },
  operator: { run: operatorCommand, summary: 'run the controller against a cluster' },
  sandbox: { run: sandboxCommand, summary: 'the whole system on one machine, or one of its parts alone' },
  version: { run: versionCommand, summary: 'print the halb version' },
};

export const mainUsage = tableUsage('halb <command> [options]', commands, 10, 'Run "halb <command> --help" for a command\'s options.');

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(mainUsage);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version') return versionCommand([]);
  const command = findCommand(commands, name);
  if (!command) {
    console.error(`halb: unknown command "${escapeForTerminal(name)}"\n\n${mainUsage}`);
    return 2;
  }
  return command.run(rest);
}

process.exitCode = await main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(`halb: ${err instanceof Error ? err.message : String(err)}`);
  return 1;
});

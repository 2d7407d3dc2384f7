// `kubectl halb`: the kubectl plugin (bin/kubectl-halb.mjs; kubectl finds kubectl-halb on PATH).
// Day-two operations on HALoadBalancers (status, a planned failover, maintenance, the nodes'
// logs) and halb's offline commands. kubectl's conventions: -n/--namespace, --context,
// --kubeconfig, -o json; messages for people, `error: ...` and exit 1 when something is refused.
import { parseCommandArgs, UsageError } from '../cli/args.ts';
import { findCommand, tableUsage, type CommandTable } from '../cli/command-table.ts';
import { renderCommand } from '../cli/render.ts';
import { validateCommand } from '../cli/validate.ts';
import { packageVersion } from '../cli/version.ts';
import { API_VERSION } from '../api/schema.ts';
import { escapeForTerminal } from '../api/manifests.ts';
import { PluginError } from './cluster.ts';
import { failoverCommand, maintenanceCommand, statusCommand } from './commands.ts';
import { logsCommand } from './logs.ts';

const commands: CommandTable = {
  status: { run: statusCommand, summary: 'each node: role, VRRP state, IP holder, config, last failover, servers up' },
  failover: { run: failoverCommand, summary: 'move MASTER to a node (or any healthy BACKUP) with no dropped request' },
  maintenance: { run: maintenanceCommand, summary: 'take a node out of MASTER duty (on) or bring it back (off)' },
  logs: { run: logsCommand, summary: 'the failover script\'s and HAProxy\'s log lines from the nodes' },
  validate: { run: validateCommand, summary: 'check HALoadBalancer manifests offline (halb validate)' },
  render: { run: renderCommand, summary: 'write the files each node gets, offline (halb render)' },
  version: {
    run: async (argv) => {
      if (!parseCommandArgs(argv, {}, 'Usage: kubectl halb version')) return 0;
      console.log(`kubectl-halb ${packageVersion()} (API ${API_VERSION}, node ${process.versions.node})`);
      return 0;
    },
    summary: 'print the plugin version',
  },
};

const usage = tableUsage('kubectl halb <command> [options]', commands, 12, 'Run "kubectl halb <command> --help" for a command\'s options.');

/** kubectl's global flags may come before the command (`kubectl halb -n NS status LB`): they
 *  move after it, where the command's own parser reads them. */
function commandFirst(argv: string[]): string[] {
  const withValue = new Set(['-n', '--namespace', '--context', '--kubeconfig', '-o', '--output']);
  const leading: string[] = [];
  let i = 0;
  while (i < argv.length && argv[i]!.startsWith('-') && argv[i] !== '-h' && argv[i] !== '--help') {
    leading.push(argv[i]!);
    if (withValue.has(argv[i]!) && i + 1 < argv.length) leading.push(argv[++i]!);
    i++;
  }
  return i < argv.length ? [argv[i]!, ...argv.slice(i + 1), ...leading] : argv;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = commandFirst(argv);
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage);
    return name === undefined ? 2 : 0;
  }
  const command = findCommand(commands, name);
  if (!command) {
    console.error(`error: unknown command ${escapeForTerminal(JSON.stringify(name))} for "kubectl halb"\n\n${usage}`);
    return 2;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`error: ${err.message}`);
      return 2;
    }
    if (err instanceof PluginError) {
      console.error(`error: ${escapeForTerminal(err.message)}`);
      return 1;
    }
    throw err;
  }
}

process.exitCode = await main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(`error: ${escapeForTerminal(err instanceof Error ? err.message : String(err))}`);
  return 1;
});

// `kubectl halb logs NAME [NODE]`: the failover script's log and HAProxy's recent lines from the
// nodes, over SSH. By default with the operator's access: its key from the Secret the spec names
// (so the caller needs to read that Secret), and each node's host key checked against the one
// the operator pinned in status. With --ssh, with the caller's own ssh and keys (the keys
// spec.droplets.sshKeys puts on the nodes), ssh checking host keys as it always does.
import { spawn } from 'node:child_process';
import { HostAgent } from '../hosts/agent.ts';
import { parseLogs, readLogsScript } from '../hosts/remote.ts';
import { escapeForTerminal } from '../api/manifests.ts';
import type { HALoadBalancer, NodeStatus } from '../api/types.ts';
import { parseCommandArgs, UsageError } from '../cli/args.ts';
import { clusterHelp, clusterOptions, connect, PluginError, type Cluster } from './cluster.ts';

const usage = `Usage: kubectl halb logs NAME [NODE] [--tail N] [--ssh] [options]

Prints the failover script's log (/var/log/halb-failover.log) and HAProxy's recent log lines
(the journal, or /var/log/haproxy.log where the node has no systemd) from NODE, or from every
node. It logs in as root with the operator's key, read from the Secret the HALoadBalancer
names (spec.credentials.sshKeySecretRef), checking each node's host key against the one in
status; with --ssh it runs your ssh with your own keys instead.

Options:
      --tail N         lines of each log (default 50)
      --ssh            use your ssh and keys (root@<node's public IPv4>)
      --ssh-option O   an option for ssh, as ssh -o takes it (repeatable)
${clusterHelp}
  -o, --output json    machine-readable output`;

type Logs = ReturnType<typeof parseLogs>;

async function withOperatorKey(cluster: Cluster, object: HALoadBalancer, node: NodeStatus, lines: number): Promise<Logs> {
  const ref = object.spec.credentials.sshKeySecretRef;
  const privateKey = await cluster.secretValue(ref.name, ref.key);
  const agent = await HostAgent.connect({
    host: node.publicIPv4!, privateKey, ...(node.hostKey ? { pinnedHostKey: node.hostKey } : {}), timeoutMs: 10_000,
  });
  try {
    return await agent.readLogs(lines);
  } finally {
    agent.close();
  }
}

function withOwnSsh(node: NodeStatus, lines: number, options: readonly string[]): Promise<Logs> {
  return new Promise((resolve, reject) => {
    const args = [
      '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', ...options.flatMap((o) => ['-o', o]), `root@${node.publicIPv4}`, 'sh', '-s',
    ];
    const child = spawn('ssh', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', (err) => reject(new PluginError(`ssh could not run: ${err.message}`)));
    child.on('close', (code) => (code === 0
      ? resolve(parseLogs(stdout))
      : reject(new PluginError(`ssh to ${node.name} (${node.publicIPv4}) failed (exit ${code}): ${stderr.trim().slice(0, 300)}`))));
    child.stdin.end(readLogsScript(lines));
  });
}

export async function logsCommand(argv: string[]): Promise<number> {
  const args = parseCommandArgs(argv, {
    ...clusterOptions, output: { type: 'string', short: 'o' }, tail: { type: 'string', default: '50' }, ssh: { type: 'boolean' },
    'ssh-option': { type: 'string', multiple: true },
  }, usage, true);
  if (!args) return 0;
  const [name, only, ...extra] = args.positionals;
  if (!name || extra.length) throw new UsageError(`expected NAME [NODE]\n\n${usage}`);
  const lines = Number(args.values.tail);
  if (!Number.isInteger(lines) || lines < 1 || lines > 10_000) {
    throw new UsageError(`--tail must be a whole number from 1 to 10000, got "${args.values.tail}"`);
  }
  if (args.values.output !== undefined && args.values.output !== 'json') {
    throw new UsageError(`--output must be json, got "${args.values.output}"`);
  }
  const cluster = connect(args.values);
  const object = await cluster.get(name);
  const all = object.status?.nodes ?? [];
  const nodes = only ? all.filter((n) => n.name === only) : all;
  if (only && !nodes.length) throw new PluginError(`${only} is not a node of ${name} (${all.map((n) => n.name).join(', ') || 'none yet'})`);
  const results = await Promise.all(nodes.map(async (node) => {
    if (!node.publicIPv4) return { node: node.name, error: 'no public IPv4 in status yet' };
    try {
      const logs = args.values.ssh
        ? await withOwnSsh(node, lines, args.values['ssh-option'] ?? [])
        : await withOperatorKey(cluster, object, node, lines);
      return { node: node.name, logs };
    } catch (err) {
      if (err instanceof PluginError && !args.values.ssh) throw err; // the Secret: a problem for every node alike
      return { node: node.name, error: (err as Error).message };
    }
  }));
  if (args.values.output === 'json') {
    console.log(JSON.stringify(results, null, 2));
  } else {
    for (const r of results) {
      if ('error' in r) {
        console.error(`==> ${r.node}: ${r.error}`);
        continue;
      }
      for (const log of r.logs!) {
        console.log(`==> ${r.node}: ${log.name} (${log.source}) <==`);
        // Lines come from the node: nothing in them may drive the terminal.
        console.log(log.lines.length ? log.lines.map(escapeForTerminal).join('\n') : '(empty)');
        console.log('');
      }
    }
  }
  return results.some((r) => 'error' in r) ? 1 : 0;
}

// `kubectl halb status | failover | maintenance`: read status, write the day-two annotations,
// and follow what the operator does until it is done or says why not.
import { maintenanceAnnotation, PREFERRED_NODE_ANNOTATION } from '../api/day-two.ts';
import { escapeForTerminal } from '../api/manifests.ts';
import type { HALoadBalancer } from '../api/types.ts';
import { parseCommandArgs, UsageError } from '../cli/args.ts';
import { clusterHelp, clusterOptions, connect, PluginError, type Cluster } from './cluster.ts';
import { pickTarget, refuseTarget, statusView, table } from './view.ts';

const outputOption = { output: { type: 'string', short: 'o' } } as const;
const outputHelp = '  -o, --output json    machine-readable output';
const waitOptions = { 'no-wait': { type: 'boolean' }, timeout: { type: 'string', default: '120s' } } as const;
const waitHelp = `      --wait=false     return once the request is written, without following it (or --no-wait)
      --timeout D      how long to follow it (default 120s; 90, 90s, 2m)`;

function jsonOutput(output: string | undefined): boolean {
  if (output === undefined) return false;
  if (output !== 'json') throw new UsageError(`--output must be json, got "${output}"`);
  return true;
}

/** kubectl writes booleans as --wait=false; node:util parseArgs takes no value after a boolean,
 *  so --wait=false becomes --no-wait and --wait / --wait=true go (following is the default). */
function kubectlBooleans(argv: string[]): string[] {
  return argv.flatMap((arg) => (arg === '--wait=false' ? ['--no-wait'] : arg === '--wait' || arg === '--wait=true' ? [] : [arg]));
}

/** "120s", "2m", "90" → milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!m) throw new UsageError(`--timeout must look like 90s or 2m, got "${text}"`);
  return Number(m[1]) * ({ ms: 1, s: 1000, m: 60_000 }[m[2] ?? 's'] ?? 1000);
}

function positionals(args: string[], names: string[], usage: string): string[] {
  if (args.length !== names.length) {
    throw new UsageError(`expected ${names.join(' ')}, got ${args.length ? args.join(' ') : 'nothing'}\n\n${usage}`);
  }
  return args;
}

/** Reads the object again and again until `done` says what happened, printing each new
 *  progress line; resolves with done's answer, or throws once `timeoutMs` is over. */
async function follow<T>(
  cluster: Cluster, name: string, timeoutMs: number, done: (o: HALoadBalancer) => T | undefined, say: (line: string) => void,
): Promise<T> {
  const started = Date.now();
  let last = '';
  for (;;) {
    const object = await cluster.get(name);
    const answer = done(object);
    if (answer !== undefined) return answer;
    const planned = object.status?.conditions?.find((c) => c.type === 'PlannedFailover');
    const line = planned ? `${planned.reason}: ${planned.message}` : '';
    if (line && line !== last) say(`  ${line}`);
    last = line || last;
    if (Date.now() - started > timeoutMs) {
      throw new PluginError(`not done after ${Math.round(timeoutMs / 1000)} s; see kubectl halb status ${name}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)} s`;

const statusUsage = `Usage: kubectl halb status NAME [options]

Shows the load balancer's nodes as the operator last observed them: each node's role (active:
holds the reserved IP; standby; maintenance), VRRP state, config hash, last failover and the
backend servers HAProxy on it sees UP; then the conditions that need a look.

Options:
${clusterHelp}
${outputHelp}`;

export async function statusCommand(argv: string[]): Promise<number> {
  const args = parseCommandArgs(argv, { ...clusterOptions, ...outputOption }, statusUsage, true);
  if (!args) return 0;
  const [name] = positionals(args.positionals, ['NAME'], statusUsage);
  const json = jsonOutput(args.values.output);
  const view = statusView(await connect(args.values).get(name!), new Date());
  if (json) {
    console.log(JSON.stringify(view, null, 2));
    return 0;
  }
  // Notes come from annotations anyone with write access sets: nothing in them may drive the terminal.
  const say = (line: string) => console.log(escapeForTerminal(line));
  say(`${view.namespace}/${view.name}  floating IP ${view.floatingIP ?? '(none yet)'}  ${view.ready}`);
  if (view.plannedFailover) {
    const { from, to, reason, requested } = view.plannedFailover;
    say(`planned failover: ${from} -> ${to} (${reason}) since ${requested}`);
  }
  console.log('');
  console.log(table(['NODE', 'ROLE', 'VRRP', 'IP HOLDER', 'CONFIG', 'SERVERS UP', 'LAST FAILOVER', 'NOTE'], view.nodes.map((n) => [
    n.name, n.role, n.vrrpState, n.ipHolder ? 'yes' : '', n.configHash, n.serversUp, n.lastFailover, n.maintenance ?? '',
  ].map(escapeForTerminal))));
  if (view.notes.length) {
    console.log('');
    for (const c of view.notes) say(`${c.type}=${c.status} ${c.reason}: ${c.message}`);
  }
  return 0;
}

const failoverUsage = `Usage: kubectl halb failover NAME [--to NODE] [options]
       kubectl halb failover NAME --clear

Moves MASTER, and the reserved IP with it, to NODE (default: a healthy BACKUP) with no dropped
request: it writes the annotation halb.dev/preferred-node=NODE, and the operator has keepalived
hand over (the MASTER leaves with a priority-0 advert, the old node serves until the IP has
moved). The preference stays: if NODE later fails and comes back, MASTER returns to it the same
way. --clear removes it. A NODE that does not exist, is in maintenance or is not a healthy
BACKUP is refused and nothing moves.

Options:
      --to NODE        the node to move MASTER to
      --clear          remove the preference (nothing moves)
${waitHelp}
${clusterHelp}
${outputHelp}`;

export async function failoverCommand(argv: string[]): Promise<number> {
  const args = parseCommandArgs(kubectlBooleans(argv), {
    ...clusterOptions, ...outputOption, ...waitOptions, to: { type: 'string' }, clear: { type: 'boolean' },
  }, failoverUsage, true);
  if (!args) return 0;
  const [name] = positionals(args.positionals, ['NAME'], failoverUsage);
  const json = jsonOutput(args.values.output);
  const say = (line: string) => { if (!json) console.log(line); };
  const cluster = connect(args.values);
  if (args.values.clear) {
    await cluster.annotate(name!, { [PREFERRED_NODE_ANNOTATION]: null });
    if (json) console.log(JSON.stringify({ name, preferredNode: null }));
    else say(`haloadbalancer.halb.dev/${name} preference removed (${PREFERRED_NODE_ANNOTATION})`);
    return 0;
  }
  const object = await cluster.get(name!);
  const to = args.values.to ?? pickTarget(object);
  if (!to) throw new PluginError(`no node of ${name} can take over now (no healthy BACKUP); nothing moves`);
  const refused = refuseTarget(object, to);
  if (refused) throw new PluginError(`refused (${refused.reason}): ${refused.message}; nothing moves`);
  const previous = object.metadata.annotations?.[PREFERRED_NODE_ANNOTATION] ?? null;
  const started = Date.now();
  await cluster.annotate(name!, { [PREFERRED_NODE_ANNOTATION]: to });
  const from = object.status?.activeNode;
  const already = from === to ? `; ${to} already holds the reserved IP` : '';
  say(`haloadbalancer.halb.dev/${name} failover to ${to} requested (${PREFERRED_NODE_ANNOTATION}=${to})${already}`);
  if (args.values['no-wait'] || from === to) {
    if (json) console.log(JSON.stringify({ name, to, requested: true, done: from === to }));
    return 0;
  }
  // A refusal names the node; one already there before the request is old news.
  const plannedCondition = (o: HALoadBalancer) => o.status?.conditions?.find((c) => c.type === 'PlannedFailover');
  const before = plannedCondition(object);
  const outcome = await follow(cluster, name!, parseDuration(args.values.timeout), (o) => {
    const refusal = plannedCondition(o);
    const fresh = refusal?.status === 'False' && refusal.message.includes(to) &&
      (refusal.message !== before?.message || refusal.reason !== before.reason);
    if (fresh) return { refusal };
    return o.status?.activeNode === to && !o.status.plannedFailover ? { done: o } : undefined;
  }, say);
  if ('refusal' in outcome) {
    // The operator saw what status did not show yet: put the preference back as it was.
    await cluster.annotate(name!, { [PREFERRED_NODE_ANNOTATION]: previous });
    throw new PluginError(`refused by the operator (${outcome.refusal!.reason}): ${outcome.refusal!.message}`);
  }
  const last = outcome.done!.status?.lastFailover;
  if (json) console.log(JSON.stringify({ name, to, requested: true, done: true, lastFailover: last }));
  else say(`${to} holds ${outcome.done!.status?.floatingIP} (${last?.reason ?? 'planned'}), ${seconds(started)} after the request`);
  return 0;
}

const maintenanceUsage = `Usage: kubectl halb maintenance NAME NODE on|off [--note TEXT] [options]

on: NODE may not become MASTER (annotation maintenance.halb.dev/NODE). If it holds the reserved
IP it hands over first, with no dropped request; then it may be rebooted or powered off: the
load balancer stays Ready and says NodeInMaintenance. If every other node fails meanwhile,
keepalived still makes NODE MASTER: maintenance never leaves the load balancer without one.
off: NODE returns as a BACKUP (powered on first if it was off), with no failover.
It exits 1 when NODE stays MASTER because no other node can take over.

Options:
      --note TEXT      why (shown in status; default: on)
${waitHelp}
${clusterHelp}
${outputHelp}`;

export async function maintenanceCommand(argv: string[]): Promise<number> {
  const args = parseCommandArgs(kubectlBooleans(argv), {
    ...clusterOptions, ...outputOption, ...waitOptions, note: { type: 'string' },
  }, maintenanceUsage, true);
  if (!args) return 0;
  const [name, node, mode] = positionals(args.positionals, ['NAME', 'NODE', 'on|off'], maintenanceUsage);
  if (mode !== 'on' && mode !== 'off') throw new UsageError(`the last argument is on or off, got "${mode}"\n\n${maintenanceUsage}`);
  const json = jsonOutput(args.values.output);
  const say = (line: string) => { if (!json) console.log(line); };
  const cluster = connect(args.values);
  const object = await cluster.get(name!);
  const nodes = (object.status?.nodes ?? []).map((n) => n.name);
  if (!nodes.includes(node!)) throw new PluginError(`${node} is not a node of ${name} (${nodes.join(', ') || 'none yet'})`);
  const note = (args.values.note ?? 'on').trim() || 'on';
  if (mode === 'on' && ['off', 'false'].includes(note.toLowerCase())) {
    throw new UsageError(`--note "${note}" would read as no maintenance; say why instead`);
  }
  const started = Date.now();
  await cluster.annotate(name!, { [maintenanceAnnotation(node!)]: mode === 'on' ? note : null });
  say(`haloadbalancer.halb.dev/${name} ${node} maintenance ${mode}${mode === 'on' ? ` (${note})` : ''}`);
  if (object.metadata.annotations?.[PREFERRED_NODE_ANNOTATION] === node && mode === 'on') {
    say(`  note: ${PREFERRED_NODE_ANNOTATION} names ${node}; it is set aside while ${node} is in maintenance`);
  }
  if (args.values['no-wait']) {
    if (json) console.log(JSON.stringify({ name, node, maintenance: mode }));
    return 0;
  }
  const nodeOf = (o: HALoadBalancer) => o.status?.nodes?.find((n) => n.name === node);
  const outcome = await follow(cluster, name!, parseDuration(args.values.timeout), (o) => {
    if (mode === 'off') {
      const back = nodeOf(o)?.maintenance === undefined && ['BACKUP', 'MASTER'].includes(nodeOf(o)?.vrrpState ?? '');
      return back ? { ok: o } : undefined;
    }
    const stuck = o.status?.conditions?.find((c) => c.type === 'PlannedFailover' && c.status === 'False' && c.reason === 'NoHealthyBackup');
    if (stuck && o.status?.activeNode === node) return { stuck };
    return nodeOf(o)?.maintenance !== undefined && o.status?.activeNode !== node && !o.status?.plannedFailover ? { ok: o } : undefined;
  }, say);
  if ('stuck' in outcome) throw new PluginError(`${node} is in maintenance but stays MASTER: ${outcome.stuck!.message}`);
  const after = outcome.ok!;
  if (json) {
    console.log(JSON.stringify({ name, node, maintenance: mode, activeNode: after.status?.activeNode }));
  } else if (mode === 'on') {
    say(`${node} is in maintenance; ${after.status?.activeNode} holds ${after.status?.floatingIP} (${seconds(started)})`);
  } else {
    const holder = `${after.status?.activeNode} holds ${after.status?.floatingIP}`;
    say(`${node} is back as ${nodeOf(after)?.vrrpState}; ${holder} (${seconds(started)})`);
  }
  return 0;
}

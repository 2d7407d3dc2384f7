// `halb sandbox up | down | status`.
import { spawn } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { createLogger, type Logger } from '../../log.ts';
import { runDemo } from '../demo.ts';
import {
  destroySandbox, kubeAnswers, packageHostsInSandboxRanges, readSandboxStatus, startSandbox, type KubeKind, type RunningSandbox,
} from '../sandbox.ts';
import { parseCommandArgs, runCommand, untilStopSignal, UsageError } from '../../cli/args.ts';
import { findBinary } from '../fabric/system.ts';
import { requireFabricPackages, sandboxStateDir } from './fabric.ts';

const stateDirOption = { 'state-dir': { type: 'string' } } as const;
const stateDirHelp = '  --state-dir DIR   the state folder (default: $HALB_SANDBOX_DIR, else .halb-sandbox)';

const upUsage = `Usage: halb sandbox up [--detach] [--no-operator] [--prometheus] [--demo] [--kube emulator|real] [--state-dir DIR]

Builds the whole system on this machine (needs root): the Kubernetes API emulator, the
DigitalOcean simulator, droplets as network namespaces running the real sshd, HAProxy and
keepalived, two nginx backends, and the operator. Prints the KUBECONFIG line to use.
Without --detach it stays in the foreground and removes everything on Ctrl-C.

Options:
  --detach          return once everything answers; the sandbox keeps running
  --no-operator     leave the operator out (run your own: halb operator --kubeconfig ...)
  --prometheus      also run Prometheus (Debian's package) with halb's alert rules, scraping the
                    operator and every node from the operator's EndpointSlices; \`status\` shows
                    its address
  --demo            realistic delays; apply examples/basic.yaml, show it converge, curl the
                    floating IP, kill HAProxy on the MASTER and show the failover, then a planned
                    failover with kubectl halb; then kubectl expose a Service of type
                    LoadBalancer with halb's class (npm run sandbox)
  --kube KIND       the Kubernetes API server: emulator (the default, starts at once) or real
                    (the upstream kube-apiserver, kube-controller-manager and etcd that
                    test/upstream/build.sh builds; RBAC enforced, the operator runs as its
                    ServiceAccount from deploy/base)
${stateDirHelp}
  -h, --help        show this help`;

const downUsage = `Usage: halb sandbox down [--state-dir DIR]

Stops the sandbox and removes every namespace, process and file it made. Safe to run twice.

Options:
${stateDirHelp}
  -h, --help        show this help`;

const statusUsage = `Usage: halb sandbox status [--json] [--state-dir DIR]

Shows the sandbox's endpoints and every host with its namespace, addresses and role.

Options:
  --json            machine-readable
${stateDirHelp}
  -h, --help        show this help`;

const binPath = fileURLToPath(new URL('../../../bin/halb.mjs', import.meta.url));

function say(line: string): void {
  process.stderr.write(`${line}\n`);
}

async function waitForDetached(stateDir: string, logFile: string, child: ReturnType<typeof spawn>): Promise<number> {
  let exited: number | null = null;
  child.on('exit', (code) => { exited = code ?? 1; });
  const deadline = Date.now() + 180_000;
  while (Date.now() < deadline) {
    const status = readSandboxStatus(stateDir);
    if (status?.running && status.pid === child.pid) {
      const answers = await Promise.all([
        kubeAnswers(status.kubernetes),
        fetch(`${status.digitalocean.endpoint}/account`, { headers: { authorization: `Bearer ${status.digitalocean.token}` } })
          .then((r) => r.ok, () => false),
      ]);
      if (answers.every(Boolean)) return 0;
    }
    if (exited !== null) {
      say(`halb sandbox: the sandbox exited (code ${exited}) before it answered; its log, ${logFile}, ends:`);
      say(readFileSync(logFile, 'utf8').split('\n').slice(-20).join('\n'));
      return 1;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  say(`halb sandbox: the sandbox did not answer within 180 s; see ${logFile}`);
  return 1;
}

function printReady(stateDir: string): void {
  const kubeconfig = join(stateDir, 'kubeconfig');
  console.log(`sandbox up in ${stateDir}`);
  console.log(`export KUBECONFIG=${kubeconfig}`);
}

export function sandboxUpCommand(argv: string[]): Promise<number> {
  return runCommand(async () => {
    const args = parseCommandArgs(argv, {
      ...stateDirOption,
      detach: { type: 'boolean' },
      'no-operator': { type: 'boolean' },
      demo: { type: 'boolean' },
      kube: { type: 'string' },
      prometheus: { type: 'boolean' },
      // Internal: the detached server process; it leaves the clean-up to `down`.
      serve: { type: 'boolean' },
    }, upUsage);
    if (!args) return 0;
    const stateDir = args.values['state-dir'] ? resolve(args.values['state-dir']) : sandboxStateDir();
    const kube = args.values.kube ?? 'emulator';
    if (kube !== 'emulator' && kube !== 'real') {
      throw new UsageError(`--kube must be emulator or real; got ${JSON.stringify(kube)}\n\n${upUsage}`);
    }
    const packages = await requireFabricPackages(say);
    if (packages.code !== 0) {
      say(packages.message);
      return 1;
    }
    // Not installed for you: Debian's package starts its own Prometheus on :9090 as it installs.
    if (args.values.prometheus && !findBinary('prometheus')) {
      say('halb sandbox: --prometheus needs Debian\'s prometheus package: apt-get install -y --no-install-recommends prometheus');
      return 1;
    }
    const existing = readSandboxStatus(stateDir);
    if (existing?.running) {
      say(`halb sandbox: already up (pid ${existing.pid})`);
      printReady(stateDir);
      return 0;
    }
    if (args.values.demo && (args.values.detach || args.values['no-operator'])) {
      throw new UsageError(`--demo runs in the foreground with the operator; it takes neither --detach nor --no-operator\n\n${upUsage}`);
    }
    for (const { host, address } of await packageHostsInSandboxRanges()) {
      say(`halb sandbox: note: ${host} resolves to ${address}, inside a range the sandbox routes; ` +
        'apt-get and npm cannot reach it until halb sandbox down');
    }
    if (args.values.detach) {
      const logFile = join(stateDir, 'sandbox.log');
      mkdirSync(stateDir, { recursive: true, mode: 0o700 });
      const fd = openSync(logFile, 'a');
      const child = spawn(process.execPath, [
        binPath, 'sandbox', 'up', '--serve', '--state-dir', stateDir, '--kube', kube,
        ...(args.values['no-operator'] ? ['--no-operator'] : []), ...(args.values.prometheus ? ['--prometheus'] : []),
      ], { detached: true, stdio: ['ignore', fd, fd] });
      closeSync(fd);
      child.unref();
      say(`halb sandbox: starting (log: ${logFile})`);
      const code = await waitForDetached(stateDir, logFile, child);
      if (code === 0) printReady(stateDir);
      return code;
    }
    // The detached server's stdout is its log file already; in the foreground the log goes to
    // that same file, so the terminal shows only lines written for people.
    const logFile = join(stateDir, 'sandbox.log');
    const log = args.values.serve
      ? createLogger({ level: process.env.HALB_LOG_LEVEL ?? 'info', name: 'sandbox' })
      : foregroundLogger(logFile);
    let sandbox: RunningSandbox;
    try {
      if (!args.values.serve) {
        say(`halb sandbox: building the sandbox (Kubernetes ${kube === 'real' ? 'API server' : 'emulator'}, ` +
          `DigitalOcean simulator, namespaces); log: ${logFile}`);
      }
      sandbox = await startSandbox({
        stateDir, operator: !args.values['no-operator'], prometheus: args.values.prometheus === true, log, kube: kube as KubeKind,
        // The demo shows DigitalOcean's pace: droplets take seconds to boot, actions to complete.
        ...(args.values.demo
          ? { delays: { dropletActiveMs: 4000, reservedIpActionMs: 1500, dropletActionMs: 2000 }, bootDelayMs: 3000 }
          : {}),
      });
    } catch (err) {
      say(`halb sandbox: up failed: ${(err as Error).message}`);
      if (!args.values.serve) await removeKeepingLog(stateDir, logFile, log);
      return 1;
    }
    if (args.values.demo) {
      try {
        await runDemo(sandbox, (line) => console.log(line));
      } catch (err) {
        say(`halb sandbox: demo failed: ${(err as Error).message}`);
      }
      console.log('');
    }
    if (!args.values.serve) {
      printReady(stateDir);
      say('halb sandbox: running; Ctrl-C removes it');
    }
    await untilStopSignal();
    await sandbox.stop();
    if (!args.values.serve) await removeKeepingLog(stateDir, logFile, log);
    return 0;
  });
}

function foregroundLogger(logFile: string): Logger {
  return createLogger({ level: process.env.HALB_LOG_LEVEL ?? 'info', name: 'sandbox' },
    pino.destination({ dest: logFile, mkdir: true, sync: true }));
}

/** Removes the sandbox; its log, which lived in the state folder, is kept in the temporary folder. */
async function removeKeepingLog(stateDir: string, logFile: string, log: Logger): Promise<void> {
  const kept = join(tmpdir(), `halb-sandbox-${new Date().toISOString().replace(/[:.]/g, '-')}.log`);
  if (existsSync(logFile)) copyFileSync(logFile, kept);
  await destroySandbox(stateDir, log);
  say(`halb sandbox: removed${existsSync(kept) ? `; its log is kept in ${kept}` : ''}`);
}

export function sandboxDownCommand(argv: string[]): Promise<number> {
  return runCommand(async () => {
    const args = parseCommandArgs(argv, stateDirOption, downUsage);
    if (!args) return 0;
    const stateDir = args.values['state-dir'] ? resolve(args.values['state-dir']) : sandboxStateDir();
    await destroySandbox(stateDir, createLogger({ level: 'warn', name: 'sandbox' }));
    console.log(`sandbox down: ${stateDir} removed`);
    return 0;
  });
}

export function sandboxStatusCommand(argv: string[]): Promise<number> {
  return runCommand(() => {
    const args = parseCommandArgs(argv, { ...stateDirOption, json: { type: 'boolean' } }, statusUsage);
    if (!args) return 0;
    const stateDir = args.values['state-dir'] ? resolve(args.values['state-dir']) : sandboxStateDir();
    const status = readSandboxStatus(stateDir);
    if (!status) {
      say(`halb sandbox: no sandbox in ${stateDir}; run halb sandbox up`);
      return 1;
    }
    if (args.values.json) {
      console.log(JSON.stringify(status, null, 2));
      return 0;
    }
    console.log(`state:        ${status.stateDir} (${status.running ? `running, pid ${status.pid}` : 'not running'})`);
    console.log(`kubeconfig:   ${status.kubeconfig}`);
    const server = status.kubernetes.kind === 'real' ? `real kube-apiserver ${status.kubernetes.version ?? ''}`.trimEnd() : 'emulator';
    console.log(`kubernetes:   ${status.kubernetes.server} (${server})`);
    console.log(`digitalocean: ${status.digitalocean.endpoint} (token ${status.digitalocean.token})`);
    const asServiceAccount = status.operatorKubeconfig && status.operatorKubeconfig !== status.kubeconfig
      ? `, as its ServiceAccount (${status.operatorKubeconfig})`
      : '';
    console.log(`operator:     ${status.operator ? 'in the sandbox' : 'not started (--no-operator)'}${asServiceAccount}`);
    if (status.prometheus) console.log(`prometheus:   ${status.prometheus.url}`);
    const rows = [
      ['NAME', 'ROLE', 'NAMESPACE', 'PUBLIC', 'ANCHOR', 'PRIVATE'],
      ...status.hosts.map((h) => [h.name, h.role, h.namespace, h.publicIPv4 ?? '-', h.anchorIPv4 ?? '-', h.privateIPv4 ?? '-']),
    ];
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
    for (const [ip, anchor] of Object.entries(status.floatingIPs ?? {})) console.log(`floating IP ${ip} -> ${anchor}`);
    return 0;
  });
}

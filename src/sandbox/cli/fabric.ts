// Helpers for `halb sandbox up | down | status` to drive the data-plane fabric, and a command to
// run the fabric alone (without the simulators), for people and for debugging.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { readableDestination } from '../../log.ts';
import {
  allocateDropletAddresses, ensureSystemPackages, openFabric, type FabricStatus, type HostStatus,
} from '../fabric/index.ts';
import { fabricDown, fabricStatus, fabricUp, sandboxStateDir } from '../fabric/setup.ts';

export { DEFAULT_BACKENDS, fabricDown, fabricStatus, fabricUp, sandboxStateDir } from '../fabric/setup.ts';

/**
 * Checks the system packages; as root installs the missing ones (saying so). Returns an exit
 * code and, on failure, the line to print (the exact apt-get command when not root).
 */
export async function requireFabricPackages(
  say: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Promise<{ code: 0 } | { code: 1; message: string }> {
  const check = await ensureSystemPackages({ say });
  if (check.ok) return { code: 0 };
  return { code: 1, message: `halb sandbox: ${check.reason}\n  ${check.installLine}` };
}

const HELP = `Usage: halb sandbox fabric <command> [options]

Runs the sandbox's data plane alone, without the DigitalOcean simulator or the Kubernetes
emulator. Needs root.

Commands:
  up                      build the core, client and backend namespaces (safe twice)
  down                    remove every namespace, process and file the fabric made (safe twice)
  status [--json]         list hosts with namespace, addresses and role
  droplet-add NAME --ssh-key FILE [--boot-delay MS]
                          start a droplet host; root logs in with the key in FILE (a .pub file)
  droplet-rm NAME         delete a droplet host
  fip IP NAME|none        point a floating IP (198.51.100.x) at a droplet's anchor IP, or nowhere

Options:
  --state-dir DIR         state folder (default: $HALB_SANDBOX_DIR or .halb-sandbox)
  --prefix P              namespace prefix for up and down (default: halb for the default
                          state folder, hb<hash of the folder> otherwise)
  --backends N            backends for up (default 2: web-1 10.10.0.21, web-2 10.10.0.22)
  --no-host-link          up without the machine's routes to 203.0.113.0/24 and 198.51.100.0/24
  -h, --help              this help
`;

function printHosts(status: FabricStatus): void {
  const rows: string[][] = [['NAME', 'ROLE', 'NAMESPACE', 'PUBLIC', 'ANCHOR', 'PRIVATE', 'STATE']];
  const state = (h: HostStatus) => (!h.running ? 'stopped' : h.booted === false ? 'booting' : 'running');
  for (const h of status.hosts) {
    rows.push([h.name, h.role, h.namespace, h.publicIPv4 ?? '-', h.anchorIPv4 ?? '-', h.privateIPv4 ?? '-', state(h)]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) process.stdout.write(`${r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()}\n`);
  for (const [ip, anchor] of Object.entries(status.floatingIPs)) process.stdout.write(`floating IP ${ip} -> ${anchor}\n`);
  if (status.hostLink) {
    const { interface: ifname, hostIPv4, routes } = status.hostLink;
    process.stdout.write(`machine link ${ifname} ${hostIPv4} (routes ${routes.join(', ')})\n`);
  }
}

/** `halb sandbox fabric ...`: returns the exit code. */
export async function sandboxFabricCommand(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv, allowPositionals: true, strict: true,
      options: {
        'state-dir': { type: 'string' }, prefix: { type: 'string' }, backends: { type: 'string' }, 'no-host-link': { type: 'boolean' },
        json: { type: 'boolean' }, 'ssh-key': { type: 'string' }, 'boot-delay': { type: 'string' }, help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    process.stderr.write(`halb sandbox fabric: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command, ...args] = positionals;
  if (values.help || command === undefined) {
    process.stdout.write(HELP);
    return values.help ? 0 : 2;
  }
  const stateDir = values['state-dir'] ? resolve(values['state-dir']) : sandboxStateDir();
  const logger = pino({ name: 'fabric', level: process.env.HALB_LOG_LEVEL ?? 'warn' }, readableDestination());
  const opened = () => {
    const f = openFabric({ stateDir, logger });
    if (!f) throw new Error(`no fabric in ${stateDir}; run: halb sandbox fabric up`);
    return f;
  };
  try {
    switch (command) {
      case 'up': {
        const pkgs = await requireFabricPackages();
        if (pkgs.code !== 0) {
          process.stderr.write(`${pkgs.message}\n`);
          return 1;
        }
        const backends = values.backends === undefined ? undefined : Number(values.backends);
        const fabric = await fabricUp({ stateDir, prefix: values.prefix, backends, hostLink: !values['no-host-link'], logger });
        printHosts(fabric.status());
        fabric.close();
        return 0;
      }
      case 'down':
        await fabricDown({ stateDir, prefix: values.prefix, logger });
        return 0;
      case 'status': {
        const status = fabricStatus({ stateDir, logger });
        if (values.json) process.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
        else if (status) printHosts(status);
        else process.stdout.write(`no fabric in ${stateDir}\n`);
        return 0;
      }
      case 'droplet-add': {
        const [name] = args;
        if (!name || !values['ssh-key']) throw new Error('droplet-add needs NAME and --ssh-key FILE');
        const fabric = opened();
        const keys = readFileSync(values['ssh-key'], 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
        const ids = fabric.status().hosts.map((h) => h.id ?? 0);
        const host = await fabric.addDroplet({
          name, id: Math.max(1000, ...ids) + 1, ...allocateDropletAddresses(fabric.usedIPv4s()), sshPublicKeys: keys,
          bootDelayMs: values['boot-delay'] === undefined ? undefined : Number(values['boot-delay']),
        });
        await fabric.waitForDroplet(name);
        process.stdout.write(`droplet ${name}: ssh root@${host.publicIPv4} (anchor ${host.anchorIPv4}, VPC ${host.privateIPv4})\n`);
        fabric.close();
        return 0;
      }
      case 'droplet-rm': {
        const [name] = args;
        if (!name) throw new Error('droplet-rm needs NAME');
        await opened().removeDroplet(name);
        return 0;
      }
      case 'fip': {
        const [ip, target] = args;
        if (!ip || !target) throw new Error('fip needs IP and NAME (or none)');
        const fabric = opened();
        const anchor = target === 'none' ? null : fabric.status().hosts.find((h) => h.name === target && h.anchorIPv4 !== null)?.anchorIPv4;
        if (anchor === undefined || (anchor === null && target !== 'none')) throw new Error(`fip: no droplet named "${target}"`);
        await fabric.setFloatingIP(ip, anchor);
        fabric.close();
        return 0;
      }
      default:
        process.stderr.write(`halb sandbox fabric: unknown command "${command}"\n\n${HELP}`);
        return 2;
    }
  } catch (e) {
    process.stderr.write(`halb sandbox fabric ${command}: ${(e as Error).message}\n`);
    return 1;
  }
}

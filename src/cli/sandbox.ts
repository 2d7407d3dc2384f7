// `halb sandbox <part>`: the whole system on one machine, or one of its parts alone.
import { sandboxDoCommand } from './sandbox-do.ts';
import { sandboxFabricCommand } from './sandbox-fabric.ts';
import { sandboxKubeCommand } from './sandbox-kube.ts';

const parts: Record<string, { run: (argv: string[]) => Promise<number>; summary: string }> = {
  kube: { run: sandboxKubeCommand, summary: 'run the Kubernetes API-server emulator alone, in the foreground' },
  do: { run: sandboxDoCommand, summary: 'run the DigitalOcean API simulator alone, in the foreground' },
  fabric: { run: sandboxFabricCommand, summary: 'build or remove the network-namespace fabric alone' },
};

const usage = `Usage: halb sandbox <part> [options]

Parts:
${Object.entries(parts).map(([n, p]) => `  ${n.padEnd(8)} ${p.summary}`).join('\n')}

Run "halb sandbox <part> --help" for a part's options.`;

export async function sandboxCommand(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h') {
    console.log(usage);
    return name === undefined ? 2 : 0;
  }
  const part = parts[name];
  if (!part) {
    console.error(`halb sandbox: unknown part ${JSON.stringify(name)}\n\n${usage}`);
    return 2;
  }
  return part.run(rest);
}

// Where the upstream programs built by test/upstream/build.sh are. The sandbox never builds
// them itself (a build takes minutes and downloads under the machine-wide lock); it asks the
// script for the paths and says how to build what is missing.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const BUILD_SCRIPT = fileURLToPath(new URL('../../../test/upstream/build.sh', import.meta.url));

/** The programs a real control plane runs. */
export const CONTROL_PLANE_TOOLS = ['etcd', 'kube-apiserver', 'kube-controller-manager'] as const;

export type UpstreamTool = typeof CONTROL_PLANE_TOOLS[number] | 'halb-argocd';

export class UpstreamNotBuilt extends Error {
  readonly tools: string[];

  constructor(tools: string[], detail: string) {
    // build.sh names what is missing; anything else it said (no go, say) is worth passing on.
    const extra = detail && !detail.startsWith('not built') ? ` (${detail})` : '';
    super(`the upstream ${tools.join(', ')} are not built; build them with: test/upstream/build.sh ${tools.join(' ')}${extra}`);
    this.name = 'UpstreamNotBuilt';
    this.tools = tools;
  }
}

/** The built binaries' paths, by tool; throws UpstreamNotBuilt naming the build command. */
export function upstreamBinaries<T extends UpstreamTool>(tools: readonly T[]): Record<T, string> {
  let stdout: string;
  try {
    stdout = execFileSync('bash', [BUILD_SCRIPT, '--path', ...tools], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const stderr = String((err as { stderr?: string }).stderr ?? '').trim();
    throw new UpstreamNotBuilt([...tools], stderr.replace(/^upstream: /, ''));
  }
  const paths = Object.fromEntries(stdout.trim().split('\n').map((line) => line.split(' ') as [string, string]));
  return Object.fromEntries(tools.map((t) => [t, paths[t]!])) as Record<T, string>;
}

/** Whether every tool is built (no build, no network). */
export function upstreamBuilt(tools: readonly UpstreamTool[]): boolean {
  try {
    upstreamBinaries(tools);
    return true;
  } catch {
    return false;
  }
}

/** The version build.sh built a tool at: the folder it lives in is named <tool>-<version>. */
export function upstreamVersion(binaryPath: string, tool: string): string {
  const folder = binaryPath.split('/').at(-2) ?? '';
  return folder.startsWith(`${tool}-`) ? folder.slice(tool.length + 1) : 'unknown';
}

// Where an upstream tool built from the Go module proxy is (helm, say), without building it:
// test/upstream/<tool>/build.sh --path where the tool has its own script, else
// test/upstream/build.sh --path <tool>. HALB_<TOOL> (HALB_HELM) points at another binary instead.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const UPSTREAM = join(import.meta.dirname, '../upstream');

export function upstreamTool(name: string): Promise<string> {
  const override = process.env[`HALB_${name.toUpperCase().replaceAll('-', '_')}`];
  if (override) return Promise.resolve(override);
  const own = join(UPSTREAM, name, 'build.sh');
  const args = existsSync(own) ? [own, '--path'] : [join(UPSTREAM, 'build.sh'), '--path', name];
  return new Promise((resolve, reject) => {
    execFile('bash', args, { timeout: 30_000 }, (err, stdout, stderr) => {
      const path = new RegExp(`^${name} (\\S+)$`, 'm').exec(stdout)?.[1];
      const how = `${args[0]}${existsSync(own) ? '' : ` ${name}`}`;
      if (err || !path) reject(new Error(`${name} is not built: run ${how} (${stderr.trim() || err?.message})`));
      else resolve(path);
    });
  });
}

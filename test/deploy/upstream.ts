// Where an upstream tool built by test/upstream/build.sh is (helm, say): `build.sh --path TOOL`,
// which never builds. HALB_<TOOL> (HALB_HELM) points at another binary instead.
import { execFile } from 'node:child_process';
import { join } from 'node:path';

const BUILD = join(import.meta.dirname, '../upstream/build.sh');

export function upstreamTool(name: string): Promise<string> {
  const override = process.env[`HALB_${name.toUpperCase().replaceAll('-', '_')}`];
  if (override) return Promise.resolve(override);
  return new Promise((resolve, reject) => {
    execFile('bash', [BUILD, '--path', name], { timeout: 30_000 }, (err, stdout, stderr) => {
      const path = /^\S+ (\S+)$/m.exec(stdout)?.[1];
      if (err || !path) reject(new Error(`${name} is not built: run test/upstream/build.sh ${name} (${stderr.trim() || err?.message})`));
      else resolve(path);
    });
  });
}

import { readFileSync } from 'node:fs';
import { API_VERSION } from '../api/schema.ts';
import { parseCommandArgs, runCommand } from './args.ts';

const usage = `Usage: halb version

Prints the halb version, the API version it serves and the Node.js version it runs on.`;

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export function versionCommand(argv: string[]): Promise<number> {
  return runCommand(() => {
    if (!parseCommandArgs(argv, {}, usage)) return 0;
    console.log(`halb ${packageVersion()} (API ${API_VERSION}, node ${process.versions.node})`);
    return 0;
  });
}

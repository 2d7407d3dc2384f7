// Shared argument parsing: node:util parseArgs with a --help flag and errors that say what to do.
import { escapeForTerminal } from '../api/manifests.ts';
import { parseArgs, type ParseArgsConfig } from 'node:util';

export class UsageError extends Error {}

export type Options = NonNullable<ParseArgsConfig['options']>;

/** Parses argv; returns undefined after printing the usage when --help was asked for. */
export function parseCommandArgs<T extends Options>(argv: string[], options: T, usage: string, allowPositionals = false) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true });
  } catch (err) {
    throw new UsageError(`${escapeForTerminal((err as Error).message)}\n\n${usage}`); // it quotes what was typed
  }
  if ((parsed.values as { help?: boolean }).help) {
    console.log(usage);
    return undefined;
  }
  return parsed;
}

/** Runs a command body, turning usage errors into exit code 2 with the message on stderr. */
export async function runCommand(body: () => Promise<number> | number): Promise<number> {
  try {
    return await body();
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`halb: ${err.message}`);
      return 2;
    }
    throw err;
  }
}

/** Resolves on the first SIGINT or SIGTERM, then stops listening for both. */
export function untilStopSignal(): Promise<void> {
  return new Promise((done) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      done();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

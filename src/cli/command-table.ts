// A table of subcommands, shared by `halb`, `halb sandbox` and `kubectl halb`: its usage text,
// and the lookup of what was typed.

export interface CommandEntry {
  run: (argv: string[]) => Promise<number>;
  summary: string;
}

export type CommandTable = Record<string, CommandEntry>;

/** "Usage: <usage>", a line per command (names padded to `width`), and the closing hint. */
export function tableUsage(usage: string, table: CommandTable, width: number, hint: string): string {
  return `Usage: ${usage}

Commands:
${Object.entries(table).map(([name, c]) => `  ${name.padEnd(width)} ${c.summary}`).join('\n')}

${hint}`;
}

/** The command a typed name means: own properties only, so `constructor` is none. */
export function findCommand(table: CommandTable, name: string): CommandEntry | undefined {
  return Object.hasOwn(table, name) ? table[name] : undefined;
}

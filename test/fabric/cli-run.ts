// Runs `halb sandbox fabric ...` as its own process, as the CLI entry would.
import { sandboxFabricCommand } from '../../src/sandbox/cli/fabric.ts';

process.exitCode = await sandboxFabricCommand(process.argv.slice(2));

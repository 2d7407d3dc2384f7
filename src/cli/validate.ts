import { escapeForTerminal, formatProblem, loadAndValidate } from '../api/manifests.ts';
import { parseCommandArgs, runCommand, UsageError } from './args.ts';

const usage = `Usage: halb validate -f FILE [-f FILE ...] [FILE ...]

Checks every HALoadBalancer in the given multi-document YAML files against the CRD schema and
the semantic rules the operator applies, offline. Secrets in the same files are checked where
an HALoadBalancer refers to them (TLS pair, VRRP password length, key presence).

Exit status: 0 when every HALoadBalancer is valid; 1 with one line per problem
(file: object: field path: reason); 2 on a usage error.

Options:
  -f, --filename FILE   a manifest file (repeatable)
  -q, --quiet           print nothing on success
  -h, --help            show this help`;

export function validateCommand(argv: string[]): Promise<number> {
  return runCommand(() => {
    const args = parseCommandArgs(argv, {
      filename: { type: 'string', short: 'f', multiple: true },
      quiet: { type: 'boolean', short: 'q' },
    }, usage, true);
    if (!args) return 0;
    // Positionals count as files too, so a shell glob after -f (-f examples/*.yaml) works.
    const files = [...(args.values.filename ?? []), ...args.positionals];
    if (!files.length) throw new UsageError(`at least one -f FILE is required\n\n${usage}`);
    const { loadBalancers, problems } = loadAndValidate(files);
    for (const p of problems) console.error(formatProblem(p));
    if (problems.length) return 1;
    if (!args.values.quiet) {
      for (const lb of loadBalancers) {
        console.log(`${escapeForTerminal(lb.file)}: HALoadBalancer/${escapeForTerminal(lb.object.metadata.name)}: valid`);
      }
    }
    return 0;
  });
}

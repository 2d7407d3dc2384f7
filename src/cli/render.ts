import { escapeForTerminal, formatProblem, loadAndValidate, type FileProblem, type ValidatedManifests } from '../api/manifests.ts';
import { DEFAULT_NAMESPACE, findSecret, sameNamespace, secretValue } from '../api/secrets.ts';
import { RenderError } from '../render/errors.ts';
import { readFacts, writeNodes } from '../render/output.ts';
import { DROPLET_VERSIONS, defaultSettings, placeholderFacts, renderNodes } from '../render/render.ts';
import { parseCommandArgs, runCommand, UsageError } from './args.ts';

const PLACEHOLDER_TOKEN = 'REPLACE_WITH_A_RESERVED_IP_SCOPED_TOKEN';

const usage = `Usage: halb render -f FILE [-f FILE ...] --out DIR [options]

Renders the files every load-balancer node needs (haproxy.cfg, TLS PEM files, keepalived.conf,
the notify and failover scripts and the failover token), offline, from HALoadBalancers and the
Secrets in the same multi-document YAML files. Writes DIR/<node-name>/ laid out as on the host
(DIR/web-0/etc/haproxy/haproxy.cfg, ...) and prints each node's content hash.

Options:
  -f, --filename FILE         a manifest file (repeatable)
  -o, --out DIR               where to write the files
      --observed FACTS.json   node facts in the shape of status:
                              {"floatingIP": "...", "nodes": [{"name", "dropletID", "publicIPv4",
                              "privateIPv4", "anchorIPv4"}]}; without it, nodes get placeholder
                              addresses (203.0.113.x public, 10.10.0.x VPC, 10.20.0.x anchor,
                              floating IP 198.51.100.10 unless spec.floatingIP.address is set)
      --keepalived-version V  keepalived on the hosts (default ${DROPLET_VERSIONS.keepalived}, Ubuntu 24.04)
      --haproxy-version V     HAProxy on the hosts (default ${DROPLET_VERSIONS.haproxy}, Ubuntu 24.04)
      --do-endpoint URL       DigitalOcean API base URL for the failover script
                              (default https://api.digitalocean.com)
  -h, --help                  show this help

When the failover token's Secret is not in the files, a placeholder token is written and a
warning printed. Exit status: 0 on success; 1 on invalid input (one line per problem); 2 on a
usage error.`;

/**
 * Node directories are DIR/<name>-<index>: two objects of one name (from two files, or two
 * namespaces) would write over each other's files, so both are named and nothing is written.
 */
function nodeDirectoryClashes(loadBalancers: ValidatedManifests['loadBalancers']): FileProblem[] {
  const first = new Map<string, { file: string; namespace: string }>();
  const clashes: FileProblem[] = [];
  for (const { file, object } of loadBalancers) {
    const namespace = object.metadata.namespace ?? DEFAULT_NAMESPACE;
    const earlier = first.get(object.metadata.name);
    if (earlier) {
      clashes.push({ file, object: `HALoadBalancer/${object.metadata.name}`, path: 'metadata.name',
        message: `would write the same node directories as HALoadBalancer/${object.metadata.name} in namespace ${earlier.namespace} ` +
          `(${earlier.file}); render them separately` });
    } else {
      first.set(object.metadata.name, { file, namespace });
    }
  }
  return clashes;
}

export function renderCommand(argv: string[]): Promise<number> {
  return runCommand(() => {
    const args = parseCommandArgs(argv, {
      filename: { type: 'string', short: 'f', multiple: true },
      out: { type: 'string', short: 'o' },
      observed: { type: 'string' },
      'keepalived-version': { type: 'string' },
      'haproxy-version': { type: 'string' },
      'do-endpoint': { type: 'string' },
    }, usage, true);
    if (!args) return 0;
    const files = [...(args.values.filename ?? []), ...args.positionals];
    if (!files.length) throw new UsageError(`at least one -f FILE is required\n\n${usage}`);
    const out = args.values.out;
    if (!out) throw new UsageError(`--out DIR is required\n\n${usage}`);

    const { loadBalancers, secrets, problems } = loadAndValidate(files);
    problems.push(...nodeDirectoryClashes(loadBalancers));
    for (const p of problems) console.error(formatProblem(p));
    if (problems.length) return 1;

    const settings = defaultSettings({
      defaultVersions: {
        keepalived: args.values['keepalived-version'] ?? DROPLET_VERSIONS.keepalived,
        haproxy: args.values['haproxy-version'] ?? DROPLET_VERSIONS.haproxy,
      },
      ...(args.values['do-endpoint'] ? { apiBaseURL: args.values['do-endpoint'] } : {}),
    });
    try {
      const facts = args.values.observed ? readFacts(args.values.observed) : undefined;
      for (const { file, object: lb } of loadBalancers) {
        const namespace = lb.metadata.namespace ?? DEFAULT_NAMESPACE;
        const ref = lb.spec.credentials.failoverTokenSecretRef ?? lb.spec.credentials.tokenSecretRef;
        // Only the object's own namespace, picked as validation picks (findSecret).
        let available = secrets.filter((s) => sameNamespace(s.namespace, namespace));
        const token = findSecret(available, namespace, ref.name);
        if (!token || secretValue(token, ref.key) === undefined) {
          console.error(escapeForTerminal(`halb: warning: ${file}: HALoadBalancer/${lb.metadata.name}: ` +
            `Secret ${ref.name} (key ${ref.key}) is not in the files; the failover token file holds a placeholder`));
          const data = Object.assign(Object.create(null) as Record<string, string>, token?.data, { [ref.key]: PLACEHOLDER_TOKEN });
          available = [...available.filter((s) => s !== token), { name: ref.name, namespace, data }];
        }
        const nodes = renderNodes({ lb, secrets: available, observed: facts ?? placeholderFacts(lb), settings });
        writeNodes(out, nodes);
        for (const node of nodes) console.log([node.name, node.configHash, `${out}/${node.name}/`].map(escapeForTerminal).join('\t'));
      }
    } catch (error) {
      if (error instanceof RenderError) {
        console.error(escapeForTerminal(`halb: ${error.message}`));
        return 1;
      }
      throw error;
    }
    return 0;
  });
}

// No string field of the spec admits a control, invisible or format character: every string
// field carries a pattern (or an enum), and every pattern refuses each such character wherever
// it stands in an otherwise valid value.
import { describe, expect, it } from 'vitest';
import { patterns, specSchema, type JSONSchemaProps } from '../../src/api/schema.ts';
import { validateHALoadBalancer } from '../../src/api/validate.ts';

// A valid value for each pattern, to plant the characters into.
const samples: Record<string, string> = {
  [patterns.dns1123Label]: 'web-1',
  [patterns.dns1123Subdomain]: 'do-api.tokens',
  [patterns.secretKey]: 'tls.key_1',
  [patterns.ipv4]: '10.0.0.1',
  [patterns.ipv4OrEmpty]: '10.0.0.1',
  [patterns.cidr]: '10.0.0.0/8',
  [patterns.hostOrIPv4]: 'app.example.com',
  [patterns.pathPrefix]: '/api/v1',
  [patterns.region]: 'nyc3',
  [patterns.sshKey]: '12345',
  [patterns.doTag]: 'k8s:web_1',
  [patterns.doTagOrEmpty]: 'k8s:web_1',
  [patterns.uuidOrEmpty]: '0123abcd-0123-4567-89ab-0123456789ab',
  [patterns.balanceParam]: 'session_id',
};

// C0, DEL, C1 (NEL), the Unicode line/paragraph separators, zero-width and bidi format
// characters, the BOM, and non-breaking and ideographic spaces.
const hostile = ['\u0000', '\t', '\n', '\r', '\u001b', '\u007f', '\u0085', '\u00a0', '\u00ad', '\u200b', '\u200d', '\u200e',
  '\u202e', '\u2028', '\u2029', '\u2066', '\ufeff', '\u3000'];

function stringFields(schema: JSONSchemaProps, path: string, out: { path: string; schema: JSONSchemaProps }[]): typeof out {
  if (schema.type === 'string') out.push({ path, schema });
  for (const [key, child] of Object.entries(schema.properties ?? {})) stringFields(child, `${path}.${key}`, out);
  if (schema.items) stringFields(schema.items, `${path}[]`, out);
  return out;
}

const fields = stringFields(specSchema, 'spec', []);

describe('string fields of the spec', () => {
  it('each carries a pattern or an enum', () => {
    expect(fields.length).toBeGreaterThan(20);
    expect(fields.filter((f) => !f.schema.pattern && !f.schema.enum).map((f) => f.path)).toEqual([]);
  });

  const patterned = fields.filter((f) => f.schema.pattern).map((f) => [f.path, f.schema.pattern!]);
  it.each(patterned)('%s refuses control and invisible characters', (_path, pattern) => {
    const sample = samples[pattern];
    expect(sample, `a sample for ${pattern}`).toBeDefined();
    const re = new RegExp(pattern, 'u'); // as ajv compiles it
    expect(re.test(sample!)).toBe(true);
    const admitted: string[] = [];
    for (const c of hostile) {
      for (const at of [1, sample!.length]) {
        const value = sample!.slice(0, at) + c + sample!.slice(at);
        if (re.test(value)) admitted.push(JSON.stringify(value));
      }
    }
    expect(admitted).toEqual([]);
  });

  it('a route with U+2028 in its path is refused, naming the field', () => {
    const hlb = {
      apiVersion: 'halb.dev/v1alpha1', kind: 'HALoadBalancer', metadata: { name: 'web' },
      spec: {
        region: 'nyc3',
        credentials: { tokenSecretRef: { name: 'do', key: 'token' }, sshKeySecretRef: { name: 'ssh', key: 'key' } },
        frontends: [{ name: 'www', port: 80, defaultBackend: 'web', routes: [{ pathPrefix: '/api\u2028', backend: 'web' }] }],
        backends: [{ name: 'web', servers: [{ name: 's1', address: '10.0.0.1' }] }],
      },
    };
    const { problems } = validateHALoadBalancer(hlb);
    expect(problems.map((p) => p.path)).toEqual(['spec.frontends[0].routes[0].pathPrefix']);
  });
});

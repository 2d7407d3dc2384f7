// The renderer writes a node's files and the host agent reads, validates and loads them: both
// must mean the same places. The agent's table takes the renderer's paths (one definition);
// this ties them together as the files are actually rendered.
import { describe, expect, it } from 'vitest';
import { DEFAULT_DAEMON_PATHS, readStateScript, stageValidateSwapScript } from '../../src/hosts/remote.ts';
import { DEFAULT_PATHS, defaultSettings, placeholderFacts, renderNodes } from '../../src/render/index.ts';
import { makeLB, TOKEN } from '../render/helpers.ts';

const node = () => {
  const lb = makeLB('paths');
  const secrets = [{ name: 'do-api', data: { token: TOKEN } }];
  const facts = placeholderFacts(lb);
  facts.nodes = facts.nodes.map((n) => ({
    ...n, authorizedKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx8zJ5b0q6Zb8iQYp2q2xjSYV7XkqQv1H1z7+L0sM0Y halb'],
  }));
  return renderNodes({ lb, secrets, observed: facts, settings: defaultSettings() })[0]!;
};

describe('the renderer and the host agent share one table of node paths', () => {
  const keys = ['haproxyConfig', 'keepalivedConfig', 'firewall', 'sshdConfig', 'authorizedKeys'] as const;
  it.each(keys)('%s is a file the renderer writes', (key) => {
    expect(node().files.map((f) => f.path)).toContain(DEFAULT_DAEMON_PATHS[key]);
    expect(DEFAULT_DAEMON_PATHS[key]).toBe(DEFAULT_PATHS[key]);
  });

  it('the VRRP state the agent reads is where the rendered notify script writes it', () => {
    const notify = node().files.find((f) => f.path === DEFAULT_PATHS.notifyScript)!;
    expect(notify.content).toContain(DEFAULT_DAEMON_PATHS.vrrpStateFile);
    expect(readStateScript(DEFAULT_DAEMON_PATHS)).toContain(DEFAULT_DAEMON_PATHS.vrrpStateFile);
  });

  it('the agent validates the rendered configs at the paths the renderer chose', () => {
    const rendered = node();
    const script = stageValidateSwapScript(rendered.files, rendered.configHash);
    for (const check of ['haproxy -c', 'keepalived -t', 'nft -c', 'sshd -t', 'ssh-keygen -l']) expect(script).toContain(check);
    for (const path of [DEFAULT_PATHS.haproxyConfig, DEFAULT_PATHS.keepalivedConfig, DEFAULT_PATHS.firewall]) {
      expect(script).toContain(path);
    }
  });
});

// Key pairs as the operator makes them for droplets' host keys: every one loads in ssh2 and in
// OpenSSH. ssh2's own generator writes a broken one about 3 times in 1,000, so 2,000 pairs made
// without the check hold one almost surely (1 - 0.997^2000 > 99%).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { describe, expect, it } from 'vitest';
import { generateEd25519KeyPair } from '../src/ssh-keys.ts';

describe('ed25519 key pairs', () => {
  it('load in ssh2, every one of 2,000', () => {
    const refused = Array.from({ length: 2000 }, () => generateEd25519KeyPair('root@node')).filter((pair) =>
      ssh2.utils.parseKey(pair.private) instanceof Error);
    expect(refused).toEqual([]);
  });

  it('load in OpenSSH, whose public key is the one generated', () => {
    const dir = mkdtempSync(join(tmpdir(), 'halb-keys-'));
    try {
      for (let i = 0; i < 20; i++) {
        const pair = generateEd25519KeyPair('root@node');
        writeFileSync(join(dir, 'key'), pair.private, { mode: 0o600 });
        const derived = execFileSync('ssh-keygen', ['-y', '-f', join(dir, 'key')], { encoding: 'utf8' });
        expect(derived.split(' ').slice(0, 2)).toEqual(pair.public.trim().split(' ').slice(0, 2));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

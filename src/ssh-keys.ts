// SSH key pairs that OpenSSH and ssh2 both load. ssh2's generator now and then writes an ed25519
// key with a byte missing (about 3 in 1,000: a 31-byte public key), which OpenSSH refuses ("error
// in libcrypto") and ssh2 cannot parse: as a droplet's host key, sshd would have none it can load.
// Such a pair is made again.
import ssh2 from 'ssh2';

export interface SshKeyPair {
  /** OpenSSH private key (openssh-key-v1, PEM-armoured). */
  private: string;
  /** The public key line. */
  public: string;
}

export function generateEd25519KeyPair(comment?: string): SshKeyPair {
  for (;;) {
    const pair = ssh2.utils.generateKeyPairSync('ed25519', comment ? { comment } : {});
    if (!(ssh2.utils.parseKey(pair.private) instanceof Error)) return pair;
  }
}

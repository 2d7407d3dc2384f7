// The Secrets an object names, from the informer's cache, and the credentials in them. A
// missing Secret or key is terminal for now (SecretNotFound) and looked at again later: the
// user may create it without touching the object.
import type * as k8s from '@kubernetes/client-node';
import { referencedSecrets } from '../api/derived.ts';
import { decodeSecretData, secretValue } from '../api/secrets.ts';
import type { HALoadBalancer, SecretData, SecretKeySelector } from '../api/types.ts';
import type { SecretCache } from './kube.ts';
import { TerminalError, terminal, terminalReasons } from './errors.ts';
import type { OperatorKeys } from './ssh-access.ts';

export function decodeSecret(secret: k8s.V1Secret): SecretData {
  return decodeSecretData(secret.metadata?.name ?? '', secret.data, {
    ...(secret.metadata?.namespace ? { namespace: secret.metadata.namespace } : {}),
    ...(secret.type ? { type: secret.type } : {}),
  });
}

/** Every Secret the object names, decoded; TerminalError(SecretNotFound) naming the missing ones. */
export function readSecrets(cache: SecretCache, object: HALoadBalancer): SecretData[] {
  const namespace = object.metadata.namespace ?? 'default';
  const found: SecretData[] = [];
  const missing: string[] = [];
  for (const name of referencedSecrets(object.spec)) {
    const secret = cache.get(namespace, name);
    if (secret) found.push(decodeSecret(secret));
    else missing.push(name);
  }
  if (missing.length) {
    throw new TerminalError(terminalReasons.secretNotFound, missing.map((name) => ({
      path: 'spec', message: `Secret ${JSON.stringify(name)} not found in namespace ${namespace}`,
    })));
  }
  return found;
}

/** One value a selector names, required. */
export function requiredValue(secrets: readonly SecretData[], ref: SecretKeySelector, path: string): string {
  const value = secretValue(secrets.find((s) => s.name === ref.name), ref.key);
  if (value === undefined) throw terminal(terminalReasons.secretNotFound, path, `Secret ${ref.name} has no key ${ref.key}`);
  return value;
}

export interface Credentials {
  /** The operator's DigitalOcean token. */
  token: string;
  ssh: OperatorKeys;
}

export function credentialsOf(object: HALoadBalancer, secrets: readonly SecretData[]): Credentials {
  const { tokenSecretRef, sshKeySecretRef } = object.spec.credentials;
  const token = requiredValue(secrets, tokenSecretRef, 'spec.credentials.tokenSecretRef');
  const current = requiredValue(secrets, sshKeySecretRef, 'spec.credentials.sshKeySecretRef');
  // During an SSH key rotation the old key may sit next to the new one, under `<key>.previous`:
  // the operator then still reaches nodes that lack the new key, even after a restart.
  const previous = secretValue(secrets.find((s) => s.name === sshKeySecretRef.name), `${sshKeySecretRef.key}.previous`);
  return { token, ssh: { current, ...(previous ? { previous } : {}) } };
}

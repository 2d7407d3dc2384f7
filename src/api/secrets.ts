// Secret values as halb reads them, one way everywhere (validation, rendering, the operator).
// `kubectl create secret --from-file` keeps a file's final newline, which is never part of a
// token, password or key: one trailing newline (LF or CRLF) is dropped, nothing else is.
import type { SecretData } from './types.ts';

/** A Secret's `data`, base64-decoded, as SecretData. Keys are read as own properties only. */
export function decodeSecretData(name: string, data: Readonly<Record<string, string>> | undefined, extra: { namespace?: string; type?: string } = {}): SecretData {
  const decoded: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [key, value] of Object.entries(data ?? {})) decoded[key] = Buffer.from(value, 'base64').toString('utf8');
  return { name, data: decoded, ...(extra.namespace ? { namespace: extra.namespace } : {}), ...(extra.type ? { type: extra.type } : {}) };
}

/** The value under `key`, without the one trailing newline a file-made Secret carries;
 *  undefined when the key is absent (an own property of the data only). */
export function secretValue(secret: SecretData | undefined, key: string): string | undefined {
  if (!secret || !Object.hasOwn(secret.data, key)) return undefined;
  return trimFinalNewline(secret.data[key]!);
}

export function trimFinalNewline(value: string): string {
  return value.replace(/\r?\n$/, '');
}

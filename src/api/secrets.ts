// Secret values as halb reads them, one way everywhere (validation, rendering, the operator):
// which Secret an object sees (its own namespace), how a value's trailing newline is treated
// (`kubectl create secret --from-file` keeps a file's final newline, which is never part of a
// token, password or key: one trailing newline, LF or CRLF, is dropped, nothing else is), and
// which values may reach a host file. Validation and the renderer's guards call the same checks,
// so validation can never accept what rendering refuses.
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import type { SecretData } from './types.ts';

/** The namespace an object without one lands in, as kubectl applies it in the default context. */
export const DEFAULT_NAMESPACE = 'default';

/** Whether two objects' namespaces (unset meaning the default) are the same. */
export function sameNamespace(a: string | undefined, b: string | undefined): boolean {
  return (a ?? DEFAULT_NAMESPACE) === (b ?? DEFAULT_NAMESPACE);
}

/** The Secret of this name in the object's namespace: the only one the operator could read. */
export function findSecret(secrets: readonly SecretData[], namespace: string | undefined, name: string): SecretData | undefined {
  return secrets.find((s) => s.name === name && sameNamespace(s.namespace, namespace));
}

/** A Secret's `data`, base64-decoded, as SecretData. Keys are read as own properties only. */
export function decodeSecretData(
  name: string, data: Readonly<Record<string, string>> | undefined, extra: { namespace?: string; type?: string } = {},
): SecretData {
  const decoded: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [key, value] of Object.entries(data ?? {})) decoded[key] = Buffer.from(value, 'base64').toString('utf8');
  return { name, data: decoded, ...(extra.namespace ? { namespace: extra.namespace } : {}), ...(extra.type ? { type: extra.type } : {}) };
}

/** The value under `key`, without the one trailing newline a file-made Secret carries;
 *  undefined when the key is absent (an own property of the data only) or not a string. */
export function secretValue(secret: SecretData | undefined, key: string): string | undefined {
  const value = secret ? secretRaw(secret, key) : undefined;
  return value === undefined ? undefined : trimFinalNewline(value);
}

export function trimFinalNewline(value: string): string {
  return value.replace(/\r?\n$/, '');
}

/** A file's raw value (certificates and keys keep their newlines), own keys only. */
export function secretRaw(secret: SecretData, key: string): string | undefined {
  if (!Object.hasOwn(secret.data, key)) return undefined;
  const value: unknown = secret.data[key];
  return typeof value === 'string' ? value : undefined;
}

/**
 * Secret `data` as the API server decodes it (Go's base64.StdEncoding): padding required,
 * line breaks skipped, anything else refused.
 */
export function decodeStrictBase64(encoded: string): Buffer | undefined {
  const text = encoded.replace(/[\r\n]/g, '');
  if (!/^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) return undefined;
  return Buffer.from(text, 'base64');
}

// DigitalOcean tokens are dop_v1_ + hex; the general token alphabet and nothing else, because
// the failover script reads the token into a curl config.
const apiTokenPattern = /^[A-Za-z0-9_.-]{1,512}$/;

/** Why a value cannot be the failover token, or undefined. Never quotes the value. */
export function apiTokenProblem(value: string): string | undefined {
  return apiTokenPattern.test(value)
    ? undefined
    : 'must be a DigitalOcean API token (1 to 512 letters, digits, "_", "." and "-"); the value is not shown';
}

// keepalived's config reader expands "$NAME" and "${NAME}" (and its built-ins such as
// $_RANDOM), takes '#' and '!' as comments, '"' as quoting, '\' as an escape, '{' '}' as
// blocks, and splits on whitespace; "~SEQ" and "@host" are line prefixes. An allowlist keeps
// every one of them out, and anything keepalived may interpret in a later version too.
const vrrpPasswordPattern = /^[A-Za-z0-9._:+=,/@%^*-]{1,8}$/;

/** Why a value cannot be the VRRP PASS password, or undefined. Never quotes the value. */
export function vrrpPasswordProblem(value: string): string | undefined {
  if (value.length > 8) return `has ${value.length} characters; VRRP PASS authentication uses at most 8`;
  if (!vrrpPasswordPattern.test(value)) {
    return 'must be 1 to 8 of letters, digits and . _ : + = , / @ % ^ * - ' +
      '(keepalived interprets "$", quotes, "#", "!", braces, backslashes and spaces)';
  }
  return undefined;
}

const pemBlock = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n[\s\S]*?-----END \1-----/g;

function pemBlocks(text: string): { label: string; text: string }[] {
  return [...text.matchAll(pemBlock)].map((m) => ({ label: m[1]!, text: m[0] }));
}

/** Whether a public key passes OpenSSL 3's default security level (112-bit security). */
function weakKeyProblem(key: KeyObject): string | undefined {
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'rsa': case 'rsa-pss':
      const bits = details.modulusLength ?? 0;
      return bits < 2048 ? `an RSA key of ${bits} bits; OpenSSL 3 needs at least 2048` : undefined;
    case 'ec':
      return ['prime256v1', 'secp384r1', 'secp521r1'].includes(details.namedCurve ?? '') ? undefined
        : `an EC key on curve ${details.namedCurve ?? 'unknown'}; use P-256, P-384 or P-521`;
    case 'ed25519': case 'ed448':
      return undefined;
    default:
      return `a ${key.asymmetricKeyType ?? 'unknown'} key, which HAProxy does not serve`;
  }
}

/**
 * Why HAProxy would refuse this tls.crt/tls.key pair (as one PEM file, chain then key), or
 * undefined: every certificate block parses, tls.crt holds certificates only (an appended
 * private key would be loaded instead of tls.key's), tls.key holds exactly one unencrypted
 * private key that matches the leaf, and every key is strong enough for OpenSSL 3's default
 * security level. Messages never quote key material.
 */
export function tlsPairProblem(cert: string, key: string): string | undefined {
  const certBlocks = pemBlocks(cert);
  if (!certBlocks.length) return 'tls.crt holds no PEM certificate';
  const other = certBlocks.find((b) => b.label !== 'CERTIFICATE');
  if (other) return `tls.crt holds a ${other.label} block; it must hold certificates only (the leaf first, then its chain)`;
  const certificates: X509Certificate[] = [];
  for (const [i, block] of certBlocks.entries()) {
    try {
      certificates.push(new X509Certificate(block.text));
    } catch {
      return `certificate ${i + 1} in tls.crt does not parse`;
    }
  }
  const keyBlocks = pemBlocks(key).filter((b) => b.label !== 'EC PARAMETERS');
  if (keyBlocks.length !== 1 || !/^(RSA |EC )?PRIVATE KEY$/.test(keyBlocks[0]!.label)) {
    return keyBlocks.some((b) => b.label === 'ENCRYPTED PRIVATE KEY')
      ? 'tls.key is encrypted; HAProxy would ask for a passphrase'
      : `tls.key must hold exactly one PEM private key; it holds ${keyBlocks.map((b) => b.label).join(', ') || 'none'}`;
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(keyBlocks[0]!.text);
  } catch {
    return 'tls.key is not a PEM private key';
  }
  const leaf = certificates[0]!;
  if (!leaf.checkPrivateKey(privateKey)) return 'tls.key does not match the first certificate in tls.crt';
  for (const [i, certificate] of certificates.entries()) {
    const weak = weakKeyProblem(certificate.publicKey);
    if (weak) return `certificate ${i + 1} in tls.crt has ${weak}`;
  }
  return undefined;
}

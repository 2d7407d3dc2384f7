// The certificates and keys a real control plane on 127.0.0.1 needs, made with the real openssl:
// one CA; the API server's serving certificate; client certificates for the admin (group
// system:masters) and for kube-controller-manager (its built-in RBAC identity); and the key pair
// that signs and verifies ServiceAccount tokens. Made once per state folder and kept, so a
// restarted API server serves the same certificate and honours the tokens it issued before.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ControlPlanePKI {
  dir: string;
  caCert: string;
  caKey: string;
  servingCert: string;
  servingKey: string;
  adminCert: string;
  adminKey: string;
  controllerManagerCert: string;
  controllerManagerKey: string;
  /** Signs ServiceAccount tokens (kube-apiserver, kube-controller-manager). */
  serviceAccountKey: string;
  /** Verifies them. */
  serviceAccountPublicKey: string;
}

/** The admin's identity: any name in system:masters has every right, as kubeadm's admin.conf. */
export const ADMIN_USER = 'halb-admin';

const DAYS = '3650';

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function ecKey(path: string): void {
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path]);
}

/** A certificate for `subject` signed by the CA, with the given X.509v3 extensions. */
function signed(pki: ControlPlanePKI, name: string, subject: string, extensions: string[]): void {
  const key = join(pki.dir, `${name}.key`);
  const csr = join(pki.dir, `${name}.csr`);
  const ext = join(pki.dir, `${name}.ext`);
  ecKey(key);
  openssl(['req', '-new', '-key', key, '-subj', subject, '-out', csr]);
  writeFileSync(ext, `${extensions.join('\n')}\n`);
  openssl(['x509', '-req', '-in', csr, '-CA', pki.caCert, '-CAkey', pki.caKey, '-CAcreateserial',
    '-days', DAYS, '-sha256', '-extfile', ext, '-out', join(pki.dir, `${name}.crt`)]);
}

/** Creates the PKI in `dir` unless it is there already; returns its file paths. */
export function ensurePKI(dir: string): ControlPlanePKI {
  const pki: ControlPlanePKI = {
    dir,
    caCert: join(dir, 'ca.crt'), caKey: join(dir, 'ca.key'),
    servingCert: join(dir, 'apiserver.crt'), servingKey: join(dir, 'apiserver.key'),
    adminCert: join(dir, 'admin.crt'), adminKey: join(dir, 'admin.key'),
    controllerManagerCert: join(dir, 'controller-manager.crt'), controllerManagerKey: join(dir, 'controller-manager.key'),
    serviceAccountKey: join(dir, 'sa.key'), serviceAccountPublicKey: join(dir, 'sa.pub'),
  };
  if (existsSync(pki.serviceAccountPublicKey)) return pki;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  ecKey(pki.caKey);
  openssl(['req', '-x509', '-new', '-key', pki.caKey, '-subj', '/CN=halb-sandbox-ca', '-days', DAYS, '-sha256',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', pki.caCert]);
  const client = ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=clientAuth'];
  signed(pki, 'apiserver', '/CN=kube-apiserver', [
    'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=serverAuth',
    // What clients dial: 127.0.0.1 from this machine; the in-cluster names for completeness.
    'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc',
  ]);
  signed(pki, 'admin', `/O=system:masters/CN=${ADMIN_USER}`, client);
  signed(pki, 'controller-manager', '/CN=system:kube-controller-manager', client);
  ecKey(pki.serviceAccountKey);
  openssl(['pkey', '-in', pki.serviceAccountKey, '-pubout', '-out', pki.serviceAccountPublicKey]);
  return pki;
}

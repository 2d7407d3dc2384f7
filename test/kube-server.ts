// Which Kubernetes API server the end-to-end suite runs on. HALB_KUBE=emulator or HALB_KUBE=real
// chooses; without it, the real upstream server when test/upstream/build.sh has built it, else the
// emulator. HALB_KUBE=real without the build is an error naming the build command, not a fallback.
import type { KubeKind } from '../src/sandbox/sandbox.ts';
import { CONTROL_PLANE_TOOLS, upstreamBinaries, upstreamBuilt, upstreamVersion } from '../src/sandbox/kube-real/upstream.ts';

export function e2eKube(): KubeKind {
  const asked = process.env.HALB_KUBE;
  if (asked === 'emulator') return 'emulator';
  if (asked === 'real') {
    upstreamBinaries(CONTROL_PLANE_TOOLS);
    return 'real';
  }
  if (asked) throw new Error(`HALB_KUBE must be emulator or real; got ${JSON.stringify(asked)}`);
  return upstreamBuilt(CONTROL_PLANE_TOOLS) ? 'real' : 'emulator';
}

/** One line saying which server that is, for the test output. */
export function describeE2EKube(): string {
  try {
    if (e2eKube() === 'emulator') {
      return `emulator (src/sandbox/kube)${process.env.HALB_KUBE ? ', as HALB_KUBE says' : '; test/upstream/build.sh builds the real one'}`;
    }
    const paths = upstreamBinaries(CONTROL_PLANE_TOOLS);
    const apiserver = upstreamVersion(paths['kube-apiserver'], 'kube-apiserver');
    return `real kube-apiserver ${apiserver} with etcd ${upstreamVersion(paths.etcd, 'etcd')}, RBAC enforced`;
  } catch (err) {
    return `none: ${(err as Error).message}`;
  }
}

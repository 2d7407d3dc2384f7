// `halb sandbox image`: builds the sandbox's Debian 13 droplet image ahead of time. It downloads
// from Debian's mirror, so it runs before a sandbox routes its ranges (and on CI before tests).
import { pino } from 'pino';
import { DEBIAN_13, cachedRootfs, ensureRootfs, imageCacheDir } from '../fabric/index.ts';
import { parseCommandArgs, runCommand } from '../../cli/args.ts';

const USAGE = `Usage: halb sandbox image [--check]

Builds the ${DEBIAN_13.slug} droplet image (Debian ${DEBIAN_13.suite} with debootstrap from
${DEBIAN_13.mirror}) into the image cache, unless it is there already. Needs root and
debootstrap; downloads about 100 MB. The cache is $HALB_IMAGE_CACHE or ~/.cache/halb-images.

Options:
  --check     only say whether the image is built (exit 0 if it is, 1 if not)
  -h, --help  this help
`;

export function sandboxImageCommand(argv: string[]): Promise<number> {
  return runCommand(async () => {
    const parsed = parseCommandArgs(argv, { check: { type: 'boolean' } }, USAGE);
    if (!parsed) return 0;
    const cached = cachedRootfs();
    if (parsed.values.check) {
      console.log(cached ? `${DEBIAN_13.slug}: built (${cached})` : `${DEBIAN_13.slug}: not built (cache ${imageCacheDir()})`);
      return cached ? 0 : 1;
    }
    const rootfs = await ensureRootfs({ log: pino({ name: 'sandbox-image', level: 'info' }, pino.destination(2)) });
    console.log(`${DEBIAN_13.slug}: ${cached ? 'already built' : 'built'} at ${rootfs}`);
    return 0;
  });
}

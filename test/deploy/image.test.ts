// The container image, as far as it can be checked without a Docker engine: the files the
// Dockerfile copies (and .dockerignore lets through) are staged in a folder standing for /app,
// and the image's ENTRYPOINT + CMD runs from there: it answers --help, and as the operator
// against the Kubernetes emulator it stops cleanly on SIGTERM (it is PID 1 in the image).
import { execFile, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCRD } from '../../src/api/crd.ts';
import { startKubeEmulator, type KubeEmulator } from '../../src/sandbox/kube/index.ts';
import { waitFor } from '../kube/helpers.ts';
import { parseDockerfile, type Dockerfile } from './dockerfile.ts';

const ROOT = join(import.meta.dirname, '../..');
const NODE_BIN = join(ROOT, 'node_modules/node/bin');

let dockerfile: Dockerfile;
let stage: string;

/** The image's command line, with /app standing for the staged folder. */
function imageCommand(args?: string[]): string[] {
  const cmd = [...dockerfile.entrypoint, ...(args ?? dockerfile.cmd)];
  return cmd.map((a) => a.replace(/^\/app(?=\/|$)/, stage));
}

function run(argv: string[], timeout = 30_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(argv[0]!, argv.slice(1), { cwd: stage, env: imageEnv(), timeout }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

/** The image's environment: its ENV lines, and `node` being Node 22 (the base image's). */
function imageEnv(): NodeJS.ProcessEnv {
  return { PATH: `${NODE_BIN}:/usr/bin:/bin`, HOME: stage, ...dockerfile.env };
}

beforeAll(() => {
  dockerfile = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
  stage = mkdtempSync(join(tmpdir(), 'halb-image-'));
  for (const copy of dockerfile.copies) {
    // node_modules comes from the deps stage (npm ci --omit=dev); see the dependency test below.
    if (copy.from) {
      symlinkSync(join(ROOT, 'node_modules'), join(stage, 'node_modules'));
      continue;
    }
    for (const source of copy.sources) {
      cpSync(join(ROOT, source), join(stage, copy.dest === './' ? source : copy.dest), {
        recursive: true, filter: (path) => dockerIncludes(path.slice(ROOT.length + 1)),
      });
    }
  }
});

/** Whether the build context holds a path, by .dockerignore's rules (last matching line wins;
 *  `*` is every top-level entry, a folder pattern covers what is below it). */
function dockerIncludes(path: string): boolean {
  if (path === '') return true;
  const lines = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  let included = true;
  for (const line of lines) {
    const negated = line.startsWith('!');
    const pattern = (negated ? line.slice(1) : line).replace(/\/$/, '');
    const matches = pattern === '*' ? true : path === pattern || path.startsWith(`${pattern}/`);
    if (matches) included = negated;
  }
  return included;
}

/** Every file of the staged image, relative to /app. */
function stagedFiles(dir = stage, prefix = ''): string[] {
  return readdirSync(dir).flatMap((name) => {
    if (name === 'node_modules') return [];
    const path = join(dir, name);
    return statSync(path).isDirectory() ? stagedFiles(path, `${prefix}${name}/`) : [`${prefix}${name}`];
  });
}
afterAll(() => {
  if (stage) rmSync(stage, { recursive: true, force: true });
});

describe('Dockerfile', () => {
  it('is multi-stage on Node 22 slim, installs production dependencies only, and runs as a numeric non-root user', () => {
    expect(dockerfile.stages).toBeGreaterThanOrEqual(2);
    expect(dockerfile.baseImages.every((b) => /^node:22[.\w-]*slim$/.test(b))).toBe(true);
    expect(dockerfile.runs.join('\n')).toMatch(/npm ci --omit=dev/);
    expect(dockerfile.user).toMatch(/^[1-9]\d*(:[1-9]\d*)?$/);
    expect(dockerfile.entrypoint[0]).toBe('node'); // exec form: node is PID 1 and gets the signals
  });

  it('.dockerignore lets through every path the Dockerfile copies, and keeps node_modules and .git out', () => {
    for (const copy of dockerfile.copies.filter((c) => !c.from)) for (const s of copy.sources) expect(dockerIncludes(s), s).toBe(true);
    for (const path of ['node_modules', '.git', 'test', '.halb-sandbox', 'src/sandbox', 'src/sandbox/kube/api.ts']) {
      expect(dockerIncludes(path), path).toBe(false);
    }
  });

  it('holds no sandbox code: no file of src/sandbox, and nothing in the image imports one', () => {
    const files = stagedFiles();
    expect(files).toContain('src/controller/reconciler.ts');
    expect(files.filter((f) => f.startsWith('src/sandbox/'))).toEqual([]);
    const importers = files.filter((f) =>
      f.endsWith('.ts') && /^\s*import\s[^;]*from\s+'[^']*\/sandbox\//m.test(readFileSync(join(stage, f), 'utf8')));
    expect(importers).toEqual([]);
  });

  it('every package the source imports is installed by npm ci --omit=dev', async () => {
    const ls = await new Promise<string>((resolve, reject) => {
      execFile('npm', ['ls', '--omit=dev', '--all', '--parseable'], {
        cwd: ROOT, env: { ...process.env, PATH: `${NODE_BIN}:${process.env.PATH}` }, maxBuffer: 1 << 24,
      }, (err, stdout) => {
        // npm ls exits 1 on extraneous packages; the list is still complete.
        if (err && !stdout) reject(err); else resolve(stdout);
      });
    });
    const production = new Set(ls.split('\n').map((l) => l.split('/node_modules/').pop()!).filter(Boolean));
    const imported = new Set<string>();
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) walk(path);
        else if (name.endsWith('.ts')) {
          for (const m of readFileSync(path, 'utf8').matchAll(/^\s*import\s[^'"]*?from\s+'([^'.][^']*)'|^\s*import\s+'([^'.][^']*)'/gm)) {
            const spec = m[1] ?? m[2]!;
            if (spec.startsWith('node:')) continue;
            if (/^import\s+type\s/.test(m[0].trim())) continue;
            imported.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
          }
        }
      }
    };
    walk(join(ROOT, 'src'));
    expect(imported.size).toBeGreaterThan(5);
    const missing = [...imported].filter((p) => !production.has(p));
    expect(missing, 'imported by src/ but not installed without dev dependencies').toEqual([]);
  });
});

describe('the image entrypoint, run here', () => {
  it('answers --help and the operator command\'s --help from the copied files alone', async () => {
    const top = await run(imageCommand(['--help']));
    expect(top.code).toBe(0);
    expect(top.stdout).toContain('Usage: halb <command>');
    const help = await run(imageCommand([...dockerfile.cmd, '--help']));
    expect(help.stderr).toBe('');
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: halb operator');
    expect(help.stdout).toContain('--metrics-port');
    // The sandbox is left out of the image, and the CLI says so.
    const sandbox = await run(imageCommand(['sandbox', 'up']));
    expect(sandbox).toMatchObject({ code: 2, stderr: expect.stringMatching(/the sandbox is not part of this installation/) });
  });

  describe('as the operator, against the Kubernetes emulator', () => {
    let emu: KubeEmulator;
    let dir: string;
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'halb-image-kube-'));
      emu = await startKubeEmulator({ port: 0 });
      emu.writeKubeconfig(join(dir, 'kubeconfig'));
      emu.seed([
        buildCRD() as unknown as Record<string, unknown>, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'halb-system' } },
      ]);
    });
    afterAll(async () => {
      await emu?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('becomes ready, takes the Lease, and on SIGTERM releases it and exits 0', async () => {
      const port = await freePort();
      const argv = imageCommand([...dockerfile.cmd, `--metrics-port=${port}`, '--log-level=info']);
      const child = spawn(argv[0]!, argv.slice(1), {
        cwd: stage, stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...imageEnv(), KUBECONFIG: join(dir, 'kubeconfig'), POD_NAMESPACE: 'halb-system', HOSTNAME: 'halb-operator-abc12' },
      });
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      try {
        await waitFor('/readyz', async () =>
          (await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false)) || undefined, 20_000);
        const lease = () => fetch(`${emu.url}/apis/coordination.k8s.io/v1/namespaces/halb-system/leases/halb-operator`)
          .then((r) => r.json() as Promise<{ spec?: { holderIdentity?: string } }>);
        await waitFor('the Lease to be held', async () => ((await lease()).spec?.holderIdentity ? true : undefined), 20_000);
        // SIGTERM while the informer's first list is still running leaves a watch open and the
        // process alive (reported to the lead); wait until the controller has started.
        await waitFor('the controller to start', () => (output.includes('started controller') ? true : undefined), 20_000);
        const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        expect(metrics).toMatch(/^halb_leader 1$/m);
        child.kill('SIGTERM');
        const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 10_000))]);
        expect(code, output).toBe(0);
        expect((await lease()).spec?.holderIdentity).toBe('');
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    });
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

// Just enough of a Dockerfile parser for the image test: stages, base images, RUN lines, COPY
// instructions of the final stage, ENV, USER, and the exec-form ENTRYPOINT and CMD.

export interface DockerCopy {
  /** --from=STAGE, when the files come from another stage. */
  from?: string;
  sources: string[];
  dest: string;
}

export interface Dockerfile {
  stages: number;
  baseImages: string[];
  runs: string[];
  copies: DockerCopy[];
  env: Record<string, string>;
  user?: string;
  entrypoint: string[];
  cmd: string[];
}

export function parseDockerfile(text: string): Dockerfile {
  const lines = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const args: Record<string, string> = {};
  const out: Dockerfile = { stages: 0, baseImages: [], runs: [], copies: [], env: {}, entrypoint: [], cmd: [] };
  const expand = (s: string) =>
    s.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string | undefined, b: string | undefined) => args[(a ?? b)!] ?? '');
  const execForm = (rest: string, what: string): string[] => {
    const parsed: unknown = JSON.parse(rest);
    if (!Array.isArray(parsed) || !parsed.every((x) => typeof x === 'string')) {
      throw new Error(`${what} must be in exec form (a JSON array of strings): ${rest}`);
    }
    return parsed as string[];
  };
  for (const line of lines) {
    const [instruction = '', ...restParts] = line.split(/\s+/);
    const rest = line.slice(instruction.length).trim();
    switch (instruction.toUpperCase()) {
      case 'ARG': {
        const [k, v = ''] = rest.split('=');
        if (out.stages === 0) args[k!] = v;
        break;
      }
      case 'FROM':
        out.stages++;
        out.baseImages.push(expand(restParts[0]!));
        // Only the final stage's instructions make the image.
        out.copies = [];
        out.env = {};
        delete out.user;
        out.entrypoint = [];
        out.cmd = [];
        break;
      case 'RUN':
        out.runs.push(rest);
        break;
      case 'COPY': {
        const parts = restParts.filter((p) => !p.startsWith('--'));
        const from = restParts.find((p) => p.startsWith('--from='))?.slice('--from='.length);
        out.copies.push({ ...(from ? { from } : {}), sources: parts.slice(0, -1), dest: parts[parts.length - 1]! });
        break;
      }
      case 'ENV': {
        const m = /^(\w+)[= ](.*)$/.exec(rest);
        if (m) out.env[m[1]!] = m[2]!;
        break;
      }
      case 'USER':
        out.user = rest;
        break;
      case 'ENTRYPOINT':
        out.entrypoint = execForm(rest, 'ENTRYPOINT');
        break;
      case 'CMD':
        out.cmd = execForm(rest, 'CMD');
        break;
    }
  }
  return out;
}

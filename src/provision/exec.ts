import { spawn } from 'node:child_process';

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

export class CommandError extends Error {
  constructor(
    readonly cmd: string,
    readonly args: readonly string[],
    readonly code: number | null,
    readonly stderr: string,
  ) {
    super(`${cmd} ${args.join(' ')} exited ${code}: ${stderr.trim().slice(0, 2000)}`);
  }
}

/**
 * Runs a program with an argument array and no shell. A non-zero exit rejects with the command
 * and its stderr, unless the caller lists that exit code as an answer (svnauthz uses 3 for "no").
 */
export function run(
  cmd: string,
  args: readonly string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string; okCodes?: number[] } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => reject(new CommandError(cmd, args, null, e.message)));
    child.on('close', (code) => {
      const res = { stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), code: code ?? -1 };
      if (code === 0 || (code !== null && opts.okCodes?.includes(code))) resolve(res);
      else reject(new CommandError(cmd, args, code, res.stderr || res.stdout));
    });
    if (child.stdin) {
      child.stdin.on('error', () => {}); // the program may exit without reading; its exit code tells
      child.stdin.end(opts.input);
    }
  });
}

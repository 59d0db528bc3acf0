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

export interface RunOptions {
  input?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Exit codes that are answers, not failures (svnauthz uses 3 for "no"). */
  okCodes?: number[];
  /** Killed (SIGKILL) after this long; the promise rejects saying so. */
  timeoutMs?: number;
  /** Killed (SIGKILL) when this aborts; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Keep at most this much of stdout (the end of it); default: all. */
  maxStdout?: number;
}

/**
 * Runs a program with an argument array and no shell. A non-zero exit rejects with the command
 * and its stderr, unless the caller lists that exit code as an answer. A timeout or an abort kills
 * the program and rejects.
 */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) return reject(opts.signal.reason);
    const child = spawn(cmd, args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let out = Buffer.alloc(0);
    const err: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => {
      out = Buffer.concat([out, b]);
      if (opts.maxStdout !== undefined && out.length > opts.maxStdout) out = out.subarray(out.length - opts.maxStdout);
    });
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    let stopped: Error | undefined;
    const stop = (why: Error) => {
      stopped ??= why;
      child.kill('SIGKILL');
    };
    const timer =
      opts.timeoutMs !== undefined
        ? setTimeout(() => stop(new CommandError(cmd, args, null, `killed after ${opts.timeoutMs} ms`)), opts.timeoutMs)
        : undefined;
    const onAbort = () => stop(opts.signal!.reason instanceof Error ? opts.signal!.reason : new Error(String(opts.signal!.reason)));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const done = () => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
    };
    child.on('error', (e) => {
      done();
      reject(new CommandError(cmd, args, null, e.message));
    });
    child.on('close', (code) => {
      done();
      if (stopped) return reject(stopped);
      const res = { stdout: out.toString(), stderr: Buffer.concat(err).toString(), code: code ?? -1 };
      if (code === 0 || (code !== null && opts.okCodes?.includes(code))) resolve(res);
      else reject(new CommandError(cmd, args, code, (res.stderr || res.stdout).slice(-8000)));
    });
    if (child.stdin) {
      child.stdin.on('error', () => {}); // the program may exit without reading; its exit code tells
      child.stdin.end(opts.input);
    }
  });
}

import { spawn, type ChildProcess } from 'node:child_process';
import { CommandError } from '../provision/exec.js';

/** Why a run stopped early because of space: recorded as `refused` with the numbers. */
export class SpaceAbort extends Error {}

export interface Progress {
  phase: string;
  bytesDone: number;
  bytesTotal: number;
}

/**
 * One backup or restore in progress: the children it runs (so an abort can kill them), its
 * abort reason, and its progress. Every long step checks `throwIfAborted()` between units of work.
 */
export class RunControl {
  aborted: Error | undefined;
  private children = new Set<ChildProcess>();
  bytesDone = 0;
  bytesTotal = 0;
  phase = 'starting';

  constructor(private readonly onProgress?: (p: Progress) => void) {}

  abort(e: Error): void {
    if (this.aborted) return;
    this.aborted = e;
    for (const c of this.children) c.kill('SIGKILL');
  }

  throwIfAborted(): void {
    if (this.aborted) throw this.aborted;
  }

  progress(phase: string, add = 0): void {
    this.phase = phase;
    this.bytesDone += add;
    this.onProgress?.({ phase, bytesDone: this.bytesDone, bytesTotal: this.bytesTotal });
  }

  /** Runs a program (argument array, no shell) that an abort kills. Rejects on a non-zero exit. */
  run(cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv): Promise<string> {
    this.throwIfAborted();
    return new Promise((resolve, reject) => {
      const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
      this.children.add(child);
      let out = '';
      let err = '';
      child.stdout!.on('data', (b: Buffer) => (out = (out + b.toString()).slice(-100_000)));
      child.stderr!.on('data', (b: Buffer) => (err = (err + b.toString()).slice(-8000)));
      child.on('error', (e) => {
        this.children.delete(child);
        reject(new CommandError(cmd, args, null, e.message));
      });
      child.on('close', (code) => {
        this.children.delete(child);
        if (this.aborted) return reject(this.aborted);
        if (code === 0) resolve(out);
        else reject(new CommandError(cmd, args, code, err || out));
      });
    });
  }
}

/** ENOSPC / EDQUOT from any write: the volume is full, whatever the watcher last saw. */
export function isNoSpace(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return true;
  const msg = String((e as Error)?.message ?? e);
  return /No space left on device|ENOSPC|database or disk is full|SQLITE_FULL|Disk quota exceeded/i.test(msg);
}

import { run } from '../sys/process.js';

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
  /** Aborted with the reason: kills the programs this run started. */
  private readonly controller = new AbortController();
  bytesDone = 0;
  bytesTotal = 0;
  phase = 'starting';

  constructor(private readonly onProgress?: (p: Progress) => void) {}

  abort(e: Error): void {
    if (this.aborted) return;
    this.aborted = e;
    this.controller.abort(e);
  }

  /** A caller's signal (a job's timeout) aborts this run with its reason. */
  follow(signal: AbortSignal | undefined): void {
    if (!signal) return;
    const onAbort = () => this.abort(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
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
  async run(cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv): Promise<string> {
    this.throwIfAborted();
    return (await run(cmd, args, { env, signal: this.controller.signal, maxStdout: 100_000 })).stdout;
  }
}

/** ENOSPC / EDQUOT from any write: the volume is full, whatever the watcher last saw. */
export function isNoSpace(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return true;
  const msg = String((e as Error)?.message ?? e);
  return /No space left on device|ENOSPC|database or disk is full|SQLITE_FULL|Disk quota exceeded/i.test(msg);
}

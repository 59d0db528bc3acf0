import { run } from '../sys/process.js';

/** Which limit a refusal hit: the volume's free space, a quota over the backup directory, or the budget. */
export type LimitKind = 'volume' | 'quota' | 'budget';

/** Why a run stopped early because of space: recorded as `refused` with the numbers. */
export class SpaceAbort extends Error {
  constructor(
    message: string,
    readonly limit: LimitKind = 'volume',
  ) {
    super(message);
  }
}

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

/** ENOSPC / EDQUOT from any write (copy_file_range, copyfile, svnadmin, SQLite): the volume or its quota is full, whatever the watcher last saw. */
export function isNoSpace(e: unknown): boolean {
  const x = e as NodeJS.ErrnoException;
  if (x?.code === 'ENOSPC' || x?.code === 'EDQUOT') return true;
  // Node names errno 122 (EDQUOT) on some paths only as "Unknown system error -122" (copyfile).
  if (x?.errno === -122 || x?.errno === 122) return true;
  const msg = String(x?.message ?? e);
  return /No space left on device|ENOSPC|EDQUOT|database or disk is full|SQLITE_FULL|Disk quota exceeded|system error -122\b/i.test(msg);
}

/**
 * A write or create that failed the way SQLite reports EDQUOT (it knows only ENOSPC as "full"):
 * SQLITE_IOERR_* ("disk I/O error"), or SQLITE_CANTOPEN ("unable to open database file") when the
 * copy or its journal could not be created; or EIO.
 */
export function isWriteError(e: unknown): boolean {
  const x = e as NodeJS.ErrnoException;
  return (
    /^SQLITE_(IOERR|CANTOPEN)/.test(String(x?.code ?? '')) ||
    x?.code === 'EIO' ||
    /disk I\/O error|unable to open database file/i.test(String(x?.message ?? e))
  );
}

/** EDQUOT in any of its forms: a quota, not the volume, is full. */
export function isQuotaExceeded(e: unknown): boolean {
  const x = e as NodeJS.ErrnoException;
  return (
    x?.code === 'EDQUOT' ||
    x?.errno === -122 ||
    x?.errno === 122 ||
    /EDQUOT|Disk quota exceeded|system error -122\b/i.test(String(x?.message ?? e))
  );
}

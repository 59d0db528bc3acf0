import type { DB } from '../store/db.js';
import { claim, complete, deleteHeartbeat, fail, heartbeat, recoverAbandoned, workerId, writeHeartbeat, type Job } from '../store/jobs.js';
import { log } from '../sys/log.js';

/** Runs one job; `signal` aborts when the job's time is up (or the worker stops): stop then. */
export type Handler = (job: Job, signal: AbortSignal) => Promise<void>;

/** A kind's handler and how long one run may take. */
export interface JobKind {
  run: Handler;
  timeoutMs: number;
}

export class JobTimeoutError extends Error {}

export interface WorkerOptions {
  concurrency: number;
  pollMs?: number;
  heartbeatMs?: number;
  staleMs?: number;
  onFailed?: (job: Job, error: string, final: boolean) => void;
}

/**
 * Claims and runs jobs. stop() is graceful: nothing new is claimed and the jobs in hand finish.
 * The worker also writes its own heartbeat row, which the health check reads.
 */
export class Worker {
  readonly id = workerId();
  private running = new Map<number, Promise<void>>();
  private stopping = false;
  private timer: NodeJS.Timeout | undefined;
  private beat: NodeJS.Timeout | undefined;
  private wakePending = false;
  private readonly pollMs: number;
  private readonly heartbeatMs: number;
  private readonly staleMs: number;

  constructor(
    private readonly db: DB,
    private readonly kinds: Record<string, JobKind>,
    private readonly opts: WorkerOptions,
  ) {
    this.pollMs = opts.pollMs ?? 500;
    this.heartbeatMs = opts.heartbeatMs ?? 2000;
    this.staleMs = opts.staleMs ?? 30_000;
  }

  start(): void {
    recoverAbandoned(this.db, this.staleMs);
    this.writeHeartbeat();
    this.beat = setInterval(() => this.onBeat(), this.heartbeatMs);
    this.beat.unref();
    this.wake();
  }

  /** Called in-process when work was enqueued, so a new project does not wait for a poll. */
  wake(): void {
    if (this.stopping || this.wakePending) return;
    this.wakePending = true;
    setImmediate(() => {
      this.wakePending = false;
      this.fill();
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    await Promise.allSettled([...this.running.values()]);
    if (this.beat) clearInterval(this.beat);
    deleteHeartbeat(this.db, `worker:${this.id}`);
  }

  get busy(): number {
    return this.running.size;
  }

  private writeHeartbeat(): void {
    writeHeartbeat(this.db, `worker:${this.id}`, { running: this.running.size });
  }

  private onBeat(): void {
    try {
      this.writeHeartbeat();
      for (const id of this.running.keys()) heartbeat(this.db, id, this.id);
      recoverAbandoned(this.db, this.staleMs);
    } catch (e) {
      log.error('worker heartbeat failed', { error: String(e) });
    }
  }

  private fill(): void {
    if (this.stopping) return;
    if (this.timer) clearTimeout(this.timer);
    try {
      while (this.running.size < this.opts.concurrency) {
        const job = claim(this.db, this.id);
        if (!job) break;
        const p = this.run(job).finally(() => {
          this.running.delete(job.id);
          this.wake();
        });
        this.running.set(job.id, p);
      }
    } catch (e) {
      log.error('claiming a job failed', { error: String(e) });
    }
    this.timer = setTimeout(() => this.fill(), this.pollMs);
    this.timer.unref();
  }

  /**
   * A run past its kind's timeout has its signal aborted; the worker still waits for the handler
   * to return (so a project's jobs never overlap), then records the run as failed: it is retried
   * with backoff like any failure.
   */
  private async run(job: Job): Promise<void> {
    const kind = this.kinds[job.kind];
    const t0 = Date.now();
    const ac = new AbortController();
    const timer = kind
      ? setTimeout(
          () =>
            ac.abort(
              new JobTimeoutError(
                `${job.kind} timed out after ${kind.timeoutMs < 10_000 ? `${kind.timeoutMs} ms` : `${Math.round(kind.timeoutMs / 1000)} s`}`,
              ),
            ),
          kind.timeoutMs,
        )
      : undefined;
    try {
      if (!kind) throw new Error(`no handler for job kind ${job.kind}`);
      await kind.run(job, ac.signal);
      if (ac.signal.aborted) throw ac.signal.reason;
      complete(this.db, job.id, this.id);
      log.info('job done', { id: job.id, kind: job.kind, project: job.project_id, ms: Date.now() - t0 });
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      const state = fail(this.db, job, this.id, msg);
      log.error('job failed', {
        id: job.id,
        kind: job.kind,
        project: job.project_id,
        attempt: job.attempts,
        retry: state === 'pending',
        error: msg,
      });
      this.opts.onFailed?.(job, msg, state === 'failed');
    } finally {
      clearTimeout(timer);
    }
  }
}

import os from 'node:os';
import type { DB } from './db.js';
import { pidAlive } from '../sys/liveness.js';

/** The job kinds the use cases queue; their handlers live in src/provision/ and src/backup/. */
export const JOB_RECONCILE = 'reconcile_project';
export const JOB_CREDENTIALS = 'sync_credentials';
/** The job that brings every quota file in line with the database (limits and the default). */
export const JOB_STORAGE = 'storage_limits';

export interface Job {
  id: number;
  kind: string;
  project_id: number | null;
  payload: string;
  state: 'pending' | 'running' | 'done' | 'failed';
  attempts: number;
  max_attempts: number;
  run_after: number;
  claimed_by: string | null;
  heartbeat_at: number | null;
  last_error: string | null;
}

/**
 * Work is rows: a change enqueues in the same transaction that records it. Enqueues a job, or
 * joins the one of that kind and project already waiting; `merge` then says what the waiting
 * job's payload becomes (from its current payload), else it keeps its own. One IMMEDIATE
 * transaction (a savepoint inside the caller's): a worker cannot claim the job halfway.
 */
export function enqueue(
  db: DB,
  kind: string,
  projectId: number | null,
  payload: object = {},
  runAfter = Date.now(),
  merge?: (pending: string) => object,
): void {
  db.transaction(() => {
    const now = Date.now();
    // The partial unique index (kind, project) WHERE pending coalesces a burst of changes into
    // one waiting job; a job that is already running stays, and the new one runs after it.
    const r = db
      .prepare(
        `INSERT OR IGNORE INTO jobs (kind, project_id, payload, state, run_after, created_at)
         VALUES (?, ?, ?, 'pending', ?, ?)`,
      )
      .run(kind, projectId, JSON.stringify(payload), runAfter, now);
    if (r.changes !== 0) return;
    // A waiting job exists (perhaps backing off after a failure): a new change makes it due now.
    db.prepare(
      `UPDATE jobs SET run_after = min(run_after, ?)
       WHERE state = 'pending' AND kind = ? AND ifnull(project_id, 0) = ifnull(?, 0)`,
    ).run(runAfter, kind, projectId);
    if (!merge) return;
    const w = db
      .prepare(`SELECT id, payload FROM jobs WHERE state = 'pending' AND kind = ? AND ifnull(project_id, 0) = ifnull(?, 0)`)
      .get(kind, projectId) as { id: number; payload: string } | undefined;
    if (w) db.prepare(`UPDATE jobs SET payload = ? WHERE id = ? AND state = 'pending'`).run(JSON.stringify(merge(w.payload)), w.id);
  }).immediate();
}

export function workerId(): string {
  return `${os.hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
}

function claimerIsDeadHere(claimedBy: string | null): boolean {
  if (!claimedBy) return true;
  const [host, pidText] = claimedBy.split(':');
  if (host !== os.hostname()) return false;
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return true;
  if (pid === process.pid) return false;
  return !pidAlive(pid);
}

/**
 * Gives back the jobs of workers that died: those whose heartbeat went stale, and at once those
 * claimed by a process on this host that no longer exists. A job that cannot go back to
 * pending because a newer one waits for the same project is closed: the newer one covers it.
 */
export function recoverAbandoned(db: DB, staleMs: number, now = Date.now()): number {
  const running = db.prepare(`SELECT id, kind, project_id, claimed_by, heartbeat_at FROM jobs WHERE state = 'running'`).all() as Pick<
    Job,
    'id' | 'kind' | 'project_id' | 'claimed_by' | 'heartbeat_at'
  >[];
  let n = 0;
  for (const j of running) {
    const stale = (j.heartbeat_at ?? 0) < now - staleMs;
    if (!stale && !claimerIsDeadHere(j.claimed_by)) continue;
    const why = `worker ${j.claimed_by ?? '?'} stopped before finishing`;
    db.transaction(() => {
      const back = db
        .prepare(
          `UPDATE OR IGNORE jobs SET state = 'pending', claimed_by = NULL, run_after = ?, last_error = ?
           WHERE id = ? AND state = 'running'`,
        )
        .run(now, why, j.id);
      if (back.changes === 0) {
        db.prepare(`UPDATE jobs SET state = 'failed', finished_at = ?, last_error = ? WHERE id = ? AND state = 'running'`).run(
          now,
          `${why}; superseded by a newer waiting job`,
          j.id,
        );
      }
    })();
    n++;
  }
  return n;
}

/**
 * Claims one due job with a conditional UPDATE (the "grab"): SQLite serializes writers, so two
 * workers can never claim the same row. Jobs of one project never run at the same time.
 */
export function claim(db: DB, worker: string, now = Date.now()): Job | undefined {
  return db
    .prepare(
      `UPDATE jobs SET state = 'running', claimed_by = ?, heartbeat_at = ?, attempts = attempts + 1
       WHERE id = (
         SELECT j.id FROM jobs j
         WHERE j.state = 'pending' AND j.run_after <= ?
           AND (j.project_id IS NULL OR NOT EXISTS (
             SELECT 1 FROM jobs r WHERE r.state = 'running' AND r.project_id = j.project_id))
         ORDER BY j.run_after, j.id LIMIT 1)
       AND state = 'pending'
       RETURNING *`,
    )
    .get(worker, now, now) as Job | undefined;
}

/** Returns false when the job is no longer ours (it was recovered from us as stale). */
export function heartbeat(db: DB, id: number, worker: string, now = Date.now()): boolean {
  return (
    db.prepare(`UPDATE jobs SET heartbeat_at = ? WHERE id = ? AND claimed_by = ? AND state = 'running'`).run(now, id, worker).changes === 1
  );
}

export function complete(db: DB, id: number, worker: string, now = Date.now()): void {
  db.prepare(
    `UPDATE jobs SET state = 'done', finished_at = ?, heartbeat_at = ?
     WHERE id = ? AND claimed_by = ? AND state = 'running'`,
  ).run(now, now, id, worker);
}

export function backoffMs(attempts: number): number {
  const base = Math.min(1000 * 2 ** Math.max(0, attempts - 1), 5 * 60_000);
  return Math.round(base * (0.75 + Math.random() * 0.5));
}

/** Records the error and either schedules a retry with backoff or gives up. Returns the new state. */
export function fail(db: DB, job: Job, worker: string, error: string, now = Date.now()): 'pending' | 'failed' {
  const msg = error.slice(0, 4000);
  if (job.attempts < job.max_attempts) {
    const r = db
      .prepare(
        `UPDATE OR IGNORE jobs SET state = 'pending', claimed_by = NULL, run_after = ?, last_error = ?
         WHERE id = ? AND claimed_by = ? AND state = 'running'`,
      )
      .run(now + backoffMs(job.attempts), msg, job.id, worker);
    if (r.changes === 1) return 'pending';
  }
  db.prepare(`UPDATE jobs SET state = 'failed', finished_at = ?, last_error = ? WHERE id = ? AND claimed_by = ?`).run(
    now,
    msg,
    job.id,
    worker,
  );
  return 'failed';
}

/** A component's heartbeat (the worker beats every few seconds; health reads the newest). */
export function writeHeartbeat(db: DB, component: string, details: object, now = Date.now()): void {
  db.prepare(
    `INSERT INTO heartbeats (component, at, details) VALUES (?, ?, ?)
     ON CONFLICT(component) DO UPDATE SET at = excluded.at, details = excluded.details`,
  ).run(component, now, JSON.stringify(details));
}
export function deleteHeartbeat(db: DB, component: string): void {
  db.prepare(`DELETE FROM heartbeats WHERE component = ?`).run(component);
}

/** What health reports: the database answers, the newest worker heartbeat, jobs waiting or running. */
export function healthFacts(db: DB): { database: boolean; workerBeatAt: number | null; jobsQueued: number | null } {
  try {
    if ((db.prepare('SELECT 1 AS one').get() as { one: number }).one !== 1) throw new Error('no answer');
  } catch {
    return { database: false, workerBeatAt: null, jobsQueued: null };
  }
  const at = db.prepare(`SELECT max(at) FROM heartbeats WHERE component LIKE 'worker:%'`).pluck().get() as number | null;
  const n = db.prepare(`SELECT count(*) FROM jobs WHERE state IN ('pending','running')`).pluck().get() as number;
  return { database: true, workerBeatAt: at, jobsQueued: n };
}

export interface JobRow extends Job {
  created_at: number;
  finished_at: number | null;
}

export function getJob(db: DB, id: number): JobRow | undefined {
  return db.prepare(`SELECT * FROM jobs WHERE id = ?`).get(id) as JobRow | undefined;
}

/**
 * A new pending job, due now; returns its id. Only for kinds outside the `jobs_one_pending`
 * coalescing index (restores, migration 6): for the others a second pending job of the same
 * project violates it.
 */
export function insertJob(db: DB, j: { kind: string; projectId: number | null; payload: object; maxAttempts: number }): number {
  const now = Date.now();
  const r = db
    .prepare(
      `INSERT INTO jobs (kind, project_id, payload, state, max_attempts, run_after, created_at)
       VALUES (?, ?, ?, 'pending', ?, ?, ?)`,
    )
    .run(j.kind, j.projectId, JSON.stringify(j.payload), j.maxAttempts, now, now);
  return Number(r.lastInsertRowid);
}

/**
 * Finished reconcile and credentials jobs (the coalescing queue's history) that ended before
 * `beforeMs`. Restores and backups keep theirs: their rows are what their status pages read.
 */
export function deleteFinishedJobsBefore(db: DB, beforeMs: number, batch: number): number {
  return db
    .prepare(
      `DELETE FROM jobs WHERE id IN (
         SELECT id FROM jobs WHERE state IN ('done', 'failed') AND kind IN (?, ?) AND finished_at < ? LIMIT ?)`,
    )
    .run(JOB_RECONCILE, JOB_CREDENTIALS, beforeMs, batch).changes;
}

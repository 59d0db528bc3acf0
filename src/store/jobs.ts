/**
 * Reading one job, and inserting one that is never coalesced (src/jobs/queue.ts's `enqueue`
 * coalesces pending jobs by kind and project and returns nothing).
 */
import type { DB } from './db.js';
import type { Job } from '../jobs/queue.js';

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

/**
 * Per-tenant limits' rows (issue 17): how many projects a user owns and their own limit
 * (`users.max_projects`, migration 8), and the retention sweeps that keep Keelson's database
 * growing with the work done rather than with the calls made. Every sweep deletes at most
 * `batch` rows in one statement, so the caller can give the write lock back between batches.
 */
import type { DB } from './db.js';
import { JOB_CREDENTIALS, JOB_RECONCILE } from './model.js';

// ---- projects per user ----

/** Projects `userId` owns that take a place on the host (not deleted, nor being deleted). */
export function ownedProjectCount(db: DB, userId: number): number {
  return db
    .prepare(
      `SELECT count(*) FROM memberships m JOIN projects p ON p.id = m.project_id
       WHERE m.user_id = ? AND m.role = 'owner' AND p.state NOT IN ('deleted', 'deleting')`,
    )
    .pluck()
    .get(userId) as number;
}

/** Sets a user's own project limit (null: the operator's default). */
export function setUserMaxProjects(db: DB, userId: number, max: number | null): void {
  db.prepare(`UPDATE users SET max_projects = ? WHERE id = ?`).run(max, userId);
}

// ---- retention ----

/** Audit rows written before `beforeIso` (ISO times compare as text). */
export function deleteAuditBefore(db: DB, beforeIso: string, batch: number): number {
  return db.prepare(`DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < ? ORDER BY at LIMIT ?)`).run(beforeIso, batch)
    .changes;
}

/** Projects with more than `keep` rows in `table` (a read: it takes no write lock). */
export function projectsOver(db: DB, table: 'permission_history' | 'authz_publishes', keep: number): number[] {
  return db.prepare(`SELECT project_id FROM ${table} GROUP BY project_id HAVING count(*) > ?`).pluck().all(keep) as number[];
}

/**
 * One project's permission versions older than its newest `keep`, never the version on disk
 * (`published_version`: what a publisher or an operator may need to compare with) and never the
 * newest (a new change numbers itself from it).
 */
export function trimPermissionHistory(db: DB, projectId: number, keep: number, batch: number): number {
  return db
    .prepare(
      `DELETE FROM permission_history WHERE id IN (
         SELECT h.id FROM permission_history h
         WHERE h.project_id = @pid
           AND h.version < (SELECT version FROM permission_history WHERE project_id = @pid ORDER BY version DESC LIMIT 1 OFFSET @keep - 1)
           AND h.version IS NOT (SELECT published_version FROM projects WHERE id = @pid)
         ORDER BY h.version LIMIT @batch)`,
    )
    .run({ pid: projectId, keep: Math.max(1, keep), batch }).changes;
}

/** One project's publish records older than its newest `keep` (the authz status shows the last 20). */
export function trimPublishes(db: DB, projectId: number, keep: number, batch: number): number {
  return db
    .prepare(
      `DELETE FROM authz_publishes WHERE id IN (
         SELECT id FROM authz_publishes
         WHERE project_id = @pid
           AND id < (SELECT id FROM authz_publishes WHERE project_id = @pid ORDER BY id DESC LIMIT 1 OFFSET @keep - 1)
         ORDER BY id LIMIT @batch)`,
    )
    .run({ pid: projectId, keep: Math.max(1, keep), batch }).changes;
}

/** Sessions that expired before `beforeMs`. */
export function deleteSessionsExpiredBefore(db: DB, beforeMs: number, batch: number): number {
  return db.prepare(`DELETE FROM sessions WHERE rowid IN (SELECT rowid FROM sessions WHERE expires_at < ? LIMIT ?)`).run(beforeMs, batch)
    .changes;
}

/** Throttle windows that started before `beforeMs` (no window is longer than a day). */
export function deleteThrottlesBefore(db: DB, beforeMs: number, batch: number): number {
  return db.prepare(`DELETE FROM throttles WHERE key IN (SELECT key FROM throttles WHERE window_start < ? LIMIT ?)`).run(beforeMs, batch)
    .changes;
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

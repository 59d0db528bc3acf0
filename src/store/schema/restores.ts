/**
 * Migration 6: a restore through the API is a job (kind 'restore', src/backup/restore-job.ts).
 *
 * - `jobs_one_pending` no longer covers restores: the queue coalesces a burst of changes into one
 *   waiting job per (kind, project), which is right for a reconcile and wrong for a restore (two
 *   restores are two different requests, and every restore into a new slug has project NULL).
 * - `restore_jobs`: one row per restore job, what it restores (backup, target slug, mode) and its
 *   outcome: `result` (the RestoreResult, JSON) is written in the restore's own recording
 *   transaction, so a worker killed after that point still leaves the restore recorded as done;
 *   `error` ({status, code, message}, JSON) when it failed; `started_at` once a worker began it
 *   (a job claimed again with started_at set was interrupted: it is not re-run blindly).
 *   A table of its own rather than columns on `jobs`: the generic queue stays as it is, and the
 *   migration can be applied again (an existing install re-running migrations from an older
 *   user_version) without failing on columns that already exist.
 */
export const RESTORE_SCHEMA = `
  DROP INDEX IF EXISTS jobs_one_pending;
  CREATE UNIQUE INDEX jobs_one_pending ON jobs(kind, ifnull(project_id, 0)) WHERE state = 'pending' AND kind <> 'restore';
  CREATE TABLE IF NOT EXISTS restore_jobs (
    job_id     INTEGER PRIMARY KEY REFERENCES jobs(id),
    backup_id  INTEGER NOT NULL REFERENCES backups(id),
    target     TEXT NOT NULL,
    mode       TEXT NOT NULL CHECK (mode IN ('in-place','new')),
    started_at TEXT,
    result     TEXT,
    error      TEXT
  );
  CREATE INDEX IF NOT EXISTS restore_jobs_target ON restore_jobs(target);
`;

/**
 * Migration 7: a lease says whose it is, `backup` or `restore`. An in-place restore holds the
 * project's lease naming the backup it reads; the use cases that must wait for it (suspend,
 * resume, delete: src/domain/projects.ts) ask for a restore's lease, not any lease of the scope.
 * The table is rebuilt rather than altered, so the migration can be applied again (SQLite has no
 * ADD COLUMN IF NOT EXISTS); leases held meanwhile are kept (as `backup` leases when re-applied).
 */
export const LEASE_KIND_SCHEMA = `
  CREATE TABLE IF NOT EXISTS backup_leases_v7 (
    scope      TEXT PRIMARY KEY,
    backup_id  INTEGER NOT NULL,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    kind       TEXT NOT NULL DEFAULT 'backup' CHECK (kind IN ('backup', 'restore'))
  );
  INSERT OR IGNORE INTO backup_leases_v7 (scope, backup_id, holder, expires_at)
    SELECT scope, backup_id, holder, expires_at FROM backup_leases;
  DROP TABLE backup_leases;
  ALTER TABLE backup_leases_v7 RENAME TO backup_leases;
`;

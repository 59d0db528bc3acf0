/**
 * The backup catalog's SQL (tables of migration 3, src/store/schema/backups.ts): backup rows, the
 * project look-ups backups and restores need, and the rows of restores run as jobs (migration 6).
 * The leases that keep one backup or restore per scope are src/store/leases.ts's; the API's views
 * of backup rows live in src/domain/backups.ts.
 */
import type { DB } from './db.js';
import { insertJob } from './jobs.js';

export type BackupState = 'running' | 'verifying' | 'verified' | 'refused' | 'failed' | 'aborted' | 'expired';
export type BackupKind = 'full' | 'incremental';

export interface BackupRow {
  id: number;
  project_id: number | null;
  slug: string | null;
  repo_uuid: string | null;
  kind: BackupKind;
  base_id: number | null;
  rev_from: number | null;
  rev_to: number | null;
  state: BackupState;
  reason: string | null;
  path: string | null;
  staging_path: string | null;
  bytes: number;
  logical_bytes: number;
  files: number;
  manifest_sha256: string | null;
  fingerprint: string | null;
  needed_bytes: number | null;
  free_bytes: number | null;
  reserve_bytes: number | null;
  needed_inodes: number | null;
  free_inodes: number | null;
  reserve_inodes: number | null;
  trigger: string;
  actor: string;
  holder: string | null;
  started_at: string;
  finished_at: string | null;
  duration_ms: number | null;
  confirmed_at: string | null;
  test_restored_at: string | null;
  test_restore_ok: number | null;
}

export interface NewBackup {
  projectId: number | null;
  slug: string | null;
  repoUuid: string | null;
  kind: BackupKind;
  baseId: number | null;
  trigger: string;
  actor: string;
  holder: string;
  startedAt: string;
}

// ---- backup rows ----

export function getBackup(db: DB, id: number): BackupRow | undefined {
  return db.prepare(`SELECT * FROM backups WHERE id = ?`).get(id) as BackupRow | undefined;
}

/** A new row in state `running`; returns its id. */
export function insertBackup(db: DB, b: NewBackup): number {
  const r = db
    .prepare(
      `INSERT INTO backups (project_id, slug, repo_uuid, kind, base_id, state, trigger, actor, holder, started_at)
       VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?)`,
    )
    .run(b.projectId, b.slug, b.repoUuid, b.kind, b.baseId, b.trigger, b.actor, b.holder, b.startedAt);
  return Number(r.lastInsertRowid);
}

export function updateBackup(db: DB, id: number, fields: Partial<Omit<BackupRow, 'id'>>): void {
  const keys = Object.keys(fields);
  if (keys.length === 0) return;
  const sets = keys.map((k) => `${k} = @${k}`).join(', ');
  db.prepare(`UPDATE backups SET ${sets} WHERE id = @id`).run({ ...fields, id });
}

/** The newest verified backup of a scope (project id, or null for Keelson's own database). */
export function newestVerified(db: DB, projectId: number | null): BackupRow | undefined {
  return db.prepare(`SELECT * FROM backups WHERE project_id IS ? AND state = 'verified' ORDER BY id DESC LIMIT 1`).get(projectId) as
    BackupRow | undefined;
}

/** Every verified backup of a scope (retention chooses among them). */
export function verifiedBackups(db: DB, projectId: number | null): BackupRow[] {
  return db.prepare(`SELECT * FROM backups WHERE project_id IS ? AND state = 'verified'`).all(projectId) as BackupRow[];
}

/** The last finished attempts of a scope, newest first (for the back-off after refusals). */
export function recentAttempts(db: DB, projectId: number | null, n: number): BackupRow[] {
  return db
    .prepare(`SELECT * FROM backups WHERE project_id IS ? AND state NOT IN ('running','verifying') ORDER BY id DESC LIMIT ?`)
    .all(projectId, n) as BackupRow[];
}

/** Rows still `running` or `verifying` (their process may be gone). */
export function unfinishedBackups(db: DB): BackupRow[] {
  return db.prepare(`SELECT * FROM backups WHERE state IN ('running','verifying')`).all() as BackupRow[];
}

/** Every backup that holds files or will: verified, or still being made (retention within the budget chooses among them). */
export function keptBackups(db: DB): BackupRow[] {
  return db.prepare(`SELECT * FROM backups WHERE state IN ('verified', 'running', 'verifying')`).all() as BackupRow[];
}

/** Backups a restore reads or is queued to read: the source of a live lease, and of every pending or running restore job. */
export function backupsInUse(db: DB, now = Date.now()): number[] {
  return db
    .prepare(
      `SELECT backup_id FROM backup_leases WHERE expires_at > ?
       UNION SELECT r.backup_id FROM restore_jobs r JOIN jobs j ON j.id = r.job_id WHERE j.state IN ('pending', 'running')`,
    )
    .pluck()
    .all(now) as number[];
}

/** Retention: the row becomes `expired` with the reason; when it finished and how long it took stay. */
export function expireBackup(db: DB, id: number, reason: string): void {
  db.prepare(`UPDATE backups SET state = 'expired', reason = ?, holder = NULL WHERE id = ?`).run(reason, id);
}

export function listBackups(db: DB, projectId?: number | null, limit = 500): BackupRow[] {
  if (projectId === undefined) return db.prepare(`SELECT * FROM backups ORDER BY id DESC LIMIT ?`).all(limit) as BackupRow[];
  return db.prepare(`SELECT * FROM backups WHERE project_id IS ? ORDER BY id DESC LIMIT ?`).all(projectId, limit) as BackupRow[];
}

/** The verified backups tested longest ago (or never) first: the scheduled test restore's sample. */
export function testRestoreCandidates(db: DB, n: number): BackupRow[] {
  return db
    .prepare(`SELECT * FROM backups WHERE state = 'verified' ORDER BY test_restored_at IS NOT NULL, test_restored_at, id LIMIT ?`)
    .all(n) as BackupRow[];
}

/** Per live project: when its last good (verified) backup was taken, or confirmed still current. */
export function lastGood(db: DB, projectId?: number) {
  const rows = db
    .prepare(
      `SELECT p.slug, (SELECT max(max(b.finished_at), ifnull(max(b.confirmed_at), '')) FROM backups b
                       WHERE b.project_id = p.id AND b.state = 'verified') AS at
       FROM projects p WHERE p.state <> 'deleted' ${projectId !== undefined ? 'AND p.id = ?' : ''} ORDER BY p.slug`,
    )
    .all(...(projectId !== undefined ? [projectId] : [])) as { slug: string; at: string | null }[];
  const now = Date.now();
  return rows.map((r) => ({
    slug: r.slug,
    lastGoodAt: r.at || null,
    lastGoodAgeSeconds: r.at ? Math.round((now - Date.parse(r.at)) / 1000) : null,
  }));
}

// ---- projects, as backups and restores see them ----

/** Slugs of the projects that are backed up (active or suspended), in order. */
export function backedUpSlugs(db: DB): string[] {
  return db.prepare(`SELECT slug FROM projects WHERE state IN ('active','suspended') ORDER BY slug`).pluck().all() as string[];
}

/** Ids of the projects that are backed up (active or suspended). */
export function backedUpProjectIds(db: DB): number[] {
  return db.prepare(`SELECT id FROM projects WHERE state IN ('active','suspended')`).pluck().all() as number[];
}

/** The slug of a project that is backed up, or undefined when it is not (any more). */
export function backedUpSlugOf(db: DB, projectId: number): string | undefined {
  return db.prepare(`SELECT slug FROM projects WHERE id = ? AND state IN ('active','suspended')`).pluck().get(projectId) as
    string | undefined;
}

/** The id of a live (not deleted) project by slug. */
export function liveProjectId(db: DB, slug: string): number | undefined {
  return db.prepare(`SELECT id FROM projects WHERE slug = ? AND state <> 'deleted'`).pluck().get(slug) as number | undefined;
}

/** A restored copy is a new repository: the project records its UUID. */
export function setProjectRepoUuid(db: DB, projectId: number, uuid: string): void {
  db.prepare(`UPDATE projects SET repo_uuid = ? WHERE id = ?`).run(uuid, projectId);
}

/** Trac's permission table came from a backup: the next reconcile converges it whatever version it records. */
export function forgetTracPermVersion(db: DB, projectId: number): void {
  db.prepare(`UPDATE projects SET trac_perm_version = NULL WHERE id = ?`).run(projectId);
}

/** Keelson's own database: its size in pages (for the space check of its backup). */
export function databasePages(db: DB): { pages: number; pageSize: number } {
  return {
    pages: db.pragma('page_count', { simple: true }) as number,
    pageSize: db.pragma('page_size', { simple: true }) as number,
  };
}

// ---- restores run as jobs (migration 6, src/store/schema/restores.ts) ----

export interface RestoreJobRow {
  job_id: number;
  backup_id: number;
  target: string;
  mode: 'in-place' | 'new';
  started_at: string | null;
  /** JSON: the RestoreResult, written in the restore's recording transaction. */
  result: string | null;
  /** JSON: {status, code, message} of a failed restore. */
  error: string | null;
}

export function getRestoreJob(db: DB, jobId: number): RestoreJobRow | undefined {
  return db.prepare(`SELECT * FROM restore_jobs WHERE job_id = ?`).get(jobId) as RestoreJobRow | undefined;
}

/** True while a restore job over this project (in place) is running. */
export function inPlaceRestoreRunning(db: DB, projectId: number): boolean {
  return !!db
    .prepare(
      `SELECT 1 FROM restore_jobs r JOIN jobs j ON j.id = r.job_id
       WHERE j.project_id = ? AND r.mode = 'in-place' AND j.state = 'running' LIMIT 1`,
    )
    .get(projectId);
}

/** The restore job into a slug that is pending or running, if any. */
export function activeRestoreInto(db: DB, target: string): { id: number; state: 'pending' | 'running' } | undefined {
  return db
    .prepare(
      `SELECT j.id, j.state FROM restore_jobs r JOIN jobs j ON j.id = r.job_id
       WHERE r.target = ? AND j.state IN ('pending','running') ORDER BY j.id LIMIT 1`,
    )
    .get(target) as { id: number; state: 'pending' | 'running' } | undefined;
}

/**
 * Queues a restore job (one attempt) and its row, in one IMMEDIATE transaction, unless a restore
 * into the same slug is pending or running: then nothing is queued and that one is returned.
 */
export function insertRestoreJob(
  db: DB,
  r: { kind: string; backupId: number; target: string; mode: 'in-place' | 'new'; projectId: number | null; payload: object },
): { id: number; busy?: undefined } | { id?: undefined; busy: { id: number; state: 'pending' | 'running' } } {
  return db
    .transaction(() => {
      const busy = activeRestoreInto(db, r.target);
      if (busy) return { busy };
      const id = insertJob(db, { kind: r.kind, projectId: r.projectId, payload: r.payload, maxAttempts: 1 });
      db.prepare(`INSERT INTO restore_jobs (job_id, backup_id, target, mode) VALUES (?, ?, ?, ?)`).run(id, r.backupId, r.target, r.mode);
      return { id };
    })
    .immediate();
}

/** A worker began the restore (a job claimed again with this set was interrupted). */
export function markRestoreStarted(db: DB, jobId: number, at: string): void {
  db.prepare(`UPDATE restore_jobs SET started_at = ? WHERE job_id = ?`).run(at, jobId);
}

export function setRestoreResult(db: DB, jobId: number, result: object): void {
  db.prepare(`UPDATE restore_jobs SET result = ?, error = NULL WHERE job_id = ?`).run(JSON.stringify(result), jobId);
}

export function setRestoreError(db: DB, jobId: number, error: { status: number; code: string; message: string }): void {
  db.prepare(`UPDATE restore_jobs SET error = ? WHERE job_id = ?`).run(JSON.stringify(error), jobId);
}

/**
 * Bytes the catalog's backups hold: what each verified backup wrote (shared files counted once,
 * where they were written), and for a run in progress the larger of what it wrote and the
 * estimate it was admitted on (so runs admitted at once see each other's share).
 */
export function heldBytes(db: DB): number {
  return db
    .prepare(
      `SELECT coalesce(sum(CASE WHEN state = 'verified' THEN bytes ELSE max(bytes, coalesce(needed_bytes, 0)) END), 0)
       FROM backups WHERE state IN ('verified', 'running', 'verifying')`,
    )
    .pluck()
    .get() as number;
}

import os from 'node:os';
import type { DB } from '../store/db.js';
import { nowIso } from '../store/db.js';
import { ConflictError } from '../errors.js';
import type { SpaceNumbers } from './space.js';

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

export const holderId = (): string => `${os.hostname()}:${process.pid}`;

export function getBackup(db: DB, id: number): BackupRow | undefined {
  return db.prepare(`SELECT * FROM backups WHERE id = ?`).get(id) as BackupRow | undefined;
}

export function insertBackup(
  db: DB,
  b: {
    projectId: number | null;
    slug: string | null;
    repoUuid: string | null;
    kind: BackupKind;
    baseId: number | null;
    trigger: string;
    actor: string;
  },
): number {
  const r = db
    .prepare(
      `INSERT INTO backups (project_id, slug, repo_uuid, kind, base_id, state, trigger, actor, holder, started_at)
       VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?)`,
    )
    .run(b.projectId, b.slug, b.repoUuid, b.kind, b.baseId, b.trigger, b.actor, holderId(), nowIso());
  return Number(r.lastInsertRowid);
}

export function updateBackup(db: DB, id: number, fields: Partial<Omit<BackupRow, 'id'>>): void {
  const keys = Object.keys(fields);
  if (keys.length === 0) return;
  const sets = keys.map((k) => `${k} = @${k}`).join(', ');
  db.prepare(`UPDATE backups SET ${sets} WHERE id = @id`).run({ ...fields, id });
}

/** Ends a row: state, reason, space numbers, duration. */
export function finishBackup(db: DB, id: number, state: BackupState, reason: string | null, numbers?: SpaceNumbers): void {
  const row = getBackup(db, id);
  const now = new Date();
  updateBackup(db, id, {
    state,
    reason,
    finished_at: now.toISOString(),
    duration_ms: row ? now.getTime() - Date.parse(row.started_at) : null,
    holder: null,
    ...(numbers
      ? {
          needed_bytes: numbers.neededBytes,
          free_bytes: numbers.freeBytes,
          reserve_bytes: numbers.reserveBytes,
          needed_inodes: numbers.neededInodes,
          free_inodes: numbers.freeInodes,
          reserve_inodes: numbers.reserveInodes,
        }
      : {}),
  });
}

/** The newest verified backup of a scope (project id, or null for Keelson's own database). */
export function newestVerified(db: DB, projectId: number | null): BackupRow | undefined {
  return db.prepare(`SELECT * FROM backups WHERE project_id IS ? AND state = 'verified' ORDER BY id DESC LIMIT 1`).get(projectId) as
    BackupRow | undefined;
}

/** The last finished attempts of a scope, newest first (for the back-off after refusals). */
export function recentAttempts(db: DB, projectId: number | null, n: number): BackupRow[] {
  return db
    .prepare(`SELECT * FROM backups WHERE project_id IS ? AND state NOT IN ('running','verifying') ORDER BY id DESC LIMIT ?`)
    .all(projectId, n) as BackupRow[];
}

// ---- leases: one backup or restore per scope at a time ----

const LEASE_MS = 60_000;

function holderAlive(holder: string): boolean {
  const [host, pidText] = holder.split(':');
  if (host !== os.hostname()) return true; // another machine: trust the expiry
  const pid = Number(pidText);
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export const scopeOf = (projectId: number | null): string => (projectId === null ? 'control' : `project:${projectId}`);

/**
 * Takes the scope's lease for a backup or restore, or throws ConflictError naming who holds it.
 * A lease whose holder's process is gone, or that was not renewed in time, is taken over:
 * a killed backup never blocks the next one.
 */
export function acquireLease(db: DB, scope: string, backupId: number, now = Date.now()): void {
  db.transaction(() => {
    const cur = db.prepare(`SELECT * FROM backup_leases WHERE scope = ?`).get(scope) as
      { backup_id: number; holder: string; expires_at: number } | undefined;
    if (cur && cur.expires_at > now && holderAlive(cur.holder)) {
      throw new ConflictError(`a backup or restore of ${scope} is already running (#${cur.backup_id}, ${cur.holder})`);
    }
    db.prepare(
      `INSERT INTO backup_leases (scope, backup_id, holder, expires_at) VALUES (?, ?, ?, ?)
       ON CONFLICT(scope) DO UPDATE SET backup_id = excluded.backup_id, holder = excluded.holder, expires_at = excluded.expires_at`,
    ).run(scope, backupId, holderId(), now + LEASE_MS);
  }).immediate();
}

export function renewLease(db: DB, scope: string, backupId: number): boolean {
  return (
    db
      .prepare(`UPDATE backup_leases SET expires_at = ? WHERE scope = ? AND backup_id = ? AND holder = ?`)
      .run(Date.now() + LEASE_MS, scope, backupId, holderId()).changes === 1
  );
}

export function releaseLease(db: DB, scope: string, backupId: number): void {
  db.prepare(`DELETE FROM backup_leases WHERE scope = ? AND backup_id = ? AND holder = ?`).run(scope, backupId, holderId());
}

/** Rows left 'running'/'verifying' by a process that no longer exists: they were interrupted. */
export function markInterrupted(db: DB): BackupRow[] {
  const rows = db.prepare(`SELECT * FROM backups WHERE state IN ('running','verifying')`).all() as BackupRow[];
  const dead = rows.filter((r) => !r.holder || !holderAlive(r.holder));
  for (const r of dead) finishBackup(db, r.id, 'aborted', `interrupted: ${r.holder ?? 'its process'} stopped before finishing`);
  return dead;
}

// ---- the API's view ----

export function backupView(r: BackupRow) {
  return {
    id: r.id,
    project: r.slug,
    kind: r.kind,
    state: r.state,
    bytes: r.bytes,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    durationMs: r.duration_ms,
    reason: r.reason,
    ...(r.needed_bytes !== null ? { needed: r.needed_bytes, free: r.free_bytes, reserve: r.reserve_bytes } : {}),
    baseId: r.base_id,
    revFrom: r.rev_from,
    revTo: r.rev_to,
    files: r.files,
    logicalBytes: r.logical_bytes,
    trigger: r.trigger,
    testRestoredAt: r.test_restored_at,
    testRestoreOk: r.test_restore_ok === null ? null : !!r.test_restore_ok,
  };
}

export function listBackups(db: DB, projectId?: number | null, limit = 500): BackupRow[] {
  if (projectId === undefined) return db.prepare(`SELECT * FROM backups ORDER BY id DESC LIMIT ?`).all(limit) as BackupRow[];
  return db.prepare(`SELECT * FROM backups WHERE project_id IS ? ORDER BY id DESC LIMIT ?`).all(projectId, limit) as BackupRow[];
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

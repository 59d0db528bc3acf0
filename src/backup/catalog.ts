import os from 'node:os';
import type { DB } from '../store/db.js';
import { nowIso } from '../store/db.js';
import * as store from '../store/backups.js';
import type { BackupKind, BackupRow, BackupState } from '../store/backups.js';
import { ConflictError } from '../errors.js';
import type { SpaceNumbers } from './space.js';

// The rows and their queries are the store's (src/store/backups.ts); this adds who holds them.
export type { BackupKind, BackupRow, BackupState } from '../store/backups.js';
export { getBackup, lastGood, listBackups, newestVerified, recentAttempts, updateBackup } from '../store/backups.js';

export const holderId = (): string => `${os.hostname()}:${process.pid}`;

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
  return store.insertBackup(db, { ...b, holder: holderId(), startedAt: nowIso() });
}

/** Ends a row: state, reason, space numbers, duration. */
export function finishBackup(db: DB, id: number, state: BackupState, reason: string | null, numbers?: SpaceNumbers): void {
  const row = store.getBackup(db, id);
  const now = new Date();
  store.updateBackup(db, id, {
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

// ---- leases: one backup or restore per scope at a time ----

const LEASE_MS = 60_000;

export function holderAlive(holder: string): boolean {
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
/** The lease scope of a restore into a new project: it holds the slug while it runs. */
export const restoreScopeOf = (slug: string): string => `restore:${slug}`;

/** Whether a lease still holds: not expired and its holder's process alive. */
const holds = (cur: store.LeaseRow, now: number): boolean => cur.expires_at > now && holderAlive(cur.holder);

const busyMessage = (scope: string, cur: store.LeaseRow): string =>
  `a backup or restore of ${scope} is already running (#${cur.backup_id}, ${cur.holder})`;

/**
 * Takes the scope's lease for a backup or restore, or throws ConflictError naming who holds it.
 * A lease whose holder's process is gone, or that was not renewed in time, is taken over:
 * a killed backup never blocks the next one.
 */
export function acquireLease(db: DB, scope: string, backupId: number, kind: store.LeaseRow['kind'] = 'backup', now = Date.now()): void {
  const cur = store.takeLease(db, { scope, backupId, holder: holderId(), expiresAt: now + LEASE_MS, kind }, (c) => holds(c, now));
  if (cur) throw new ConflictError(busyMessage(scope, cur));
}

/** Throws the ConflictError acquireLease would throw now, without taking the lease. */
export function assertLeaseFree(db: DB, scope: string, now = Date.now()): void {
  const cur = store.getLease(db, scope);
  if (cur && holds(cur, now)) throw new ConflictError(busyMessage(scope, cur));
}

/**
 * True while an in-place restore runs over this project: its worker's job is running, or a restore
 * holds the project's lease. A holder on this machine counts while its process lives, even past
 * the lease's expiry (a stalled restore renews an expired lease nobody took over and goes on);
 * one on another machine while the lease has not expired.
 */
export function restoreRunningOver(db: DB, projectId: number, now = Date.now()): boolean {
  if (store.inPlaceRestoreRunning(db, projectId)) return true;
  const cur = store.getLease(db, scopeOf(projectId));
  if (!cur || cur.kind !== 'restore') return false;
  return cur.holder.split(':')[0] === os.hostname() ? holderAlive(cur.holder) : cur.expires_at > now;
}

/** True while a restore into this slug is queued or running: no one else may take the slug meanwhile. */
export function slugHeldByRestore(db: DB, slug: string, now = Date.now()): boolean {
  if (store.activeRestoreInto(db, slug)) return true;
  const cur = store.getLease(db, restoreScopeOf(slug));
  return !!cur && holds(cur, now);
}

/** The live holder of a scope's lease, if any. */
export function liveLeaseHolder(db: DB, scope: string, now = Date.now()): string | undefined {
  const cur = store.getLease(db, scope);
  return cur && holds(cur, now) ? cur.holder : undefined;
}

export function renewLease(db: DB, scope: string, backupId: number): boolean {
  return store.renewLease(db, scope, backupId, holderId(), Date.now() + LEASE_MS);
}

export function releaseLease(db: DB, scope: string, backupId: number): void {
  store.releaseLease(db, scope, backupId, holderId());
}

/** The backup running in a scope (the one whose lease is held), if any. */
export function leasedBackupId(db: DB, scope: string): number | undefined {
  return store.getLease(db, scope)?.backup_id;
}

/** Rows left 'running'/'verifying' by a process that no longer exists: they were interrupted. */
export function markInterrupted(db: DB): BackupRow[] {
  const rows = store.unfinishedBackups(db);
  const dead = rows.filter((r) => !r.holder || !holderAlive(r.holder));
  for (const r of dead) finishBackup(db, r.id, 'aborted', `interrupted: ${r.holder ?? 'its process'} stopped before finishing`);
  return dead;
}

// ---- the API's view ----

/**
 * A backup row as a project's owner sees it: a refusal's reason and numbers describe the shared
 * backup volume, quota and budget (other tenants' usage among them), which are the operator's.
 */
export function ownerBackupView(r: BackupRow) {
  const v: Partial<ReturnType<typeof backupView>> & { free?: number; reserve?: number | null } = backupView(r);
  if (r.state !== 'refused') return v;
  delete v.free;
  delete v.reserve;
  return { ...v, reason: 'refused: the backup space shared by this host was short (the operator is alerted and has the details)' };
}

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
    ...(r.needed_bytes !== null ? { needed: r.needed_bytes } : {}),
    ...(r.free_bytes !== null ? { free: r.free_bytes, reserve: r.reserve_bytes } : {}),
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

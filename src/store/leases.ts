/**
 * Leases: one backup or restore per scope (a project, Keelson's own database, or a slug a restore
 * creates) at a time. The rows of `backup_leases` (migrations 3 and 7, src/store/schema/), who
 * holds them (a host and process, alive or not), and the questions the rest of Keelson asks of
 * them: may this run start, is a restore running over this project, does a restore hold this slug.
 */
import os from 'node:os';
import type { DB } from './db.js';
import { activeRestoreInto, inPlaceRestoreRunning } from './backups.js';
import { ConflictError } from '../errors.js';
import { pidAlive } from '../sys/liveness.js';

export interface LeaseRow {
  scope: string;
  backup_id: number;
  holder: string;
  expires_at: number;
  kind: 'backup' | 'restore';
}

const LEASE_MS = 60_000;

// ---- the rows ----

function getLease(db: DB, scope: string): LeaseRow | undefined {
  return db.prepare(`SELECT * FROM backup_leases WHERE scope = ?`).get(scope) as LeaseRow | undefined;
}

/**
 * Takes the scope's lease in one IMMEDIATE transaction unless `blocks` says its current holder
 * keeps it; returns that blocking lease, or undefined when the lease is now ours.
 */
function takeLease(
  db: DB,
  l: { scope: string; backupId: number; holder: string; expiresAt: number; kind: LeaseRow['kind'] },
  blocks: (cur: LeaseRow) => boolean,
): LeaseRow | undefined {
  return db
    .transaction(() => {
      const cur = getLease(db, l.scope);
      if (cur && blocks(cur)) return cur;
      db.prepare(
        `INSERT INTO backup_leases (scope, backup_id, holder, expires_at, kind) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(scope) DO UPDATE SET backup_id = excluded.backup_id, holder = excluded.holder,
           expires_at = excluded.expires_at, kind = excluded.kind`,
      ).run(l.scope, l.backupId, l.holder, l.expiresAt, l.kind);
      return undefined;
    })
    .immediate();
}

/** Pushes the expiry out; false when the lease is no longer this holder's. */
function extendLease(db: DB, scope: string, backupId: number, holder: string, expiresAt: number): boolean {
  return (
    db
      .prepare(`UPDATE backup_leases SET expires_at = ? WHERE scope = ? AND backup_id = ? AND holder = ?`)
      .run(expiresAt, scope, backupId, holder).changes === 1
  );
}

function deleteLease(db: DB, scope: string, backupId: number, holder: string): void {
  db.prepare(`DELETE FROM backup_leases WHERE scope = ? AND backup_id = ? AND holder = ?`).run(scope, backupId, holder);
}

// ---- who holds them ----

/** This process, as a lease (and a running backup row) names its holder: `host:pid`. */
export const holderId = (): string => `${os.hostname()}:${process.pid}`;

/** Whether a holder may still be working: one on another machine is trusted (its lease's expiry decides), one here while its process lives. */
export function holderAlive(holder: string): boolean {
  const [host, pidText] = holder.split(':');
  if (host !== os.hostname()) return true; // another machine: trust the expiry
  const pid = Number(pidText);
  if (pid === process.pid) return true;
  return pidAlive(pid);
}

export const scopeOf = (projectId: number | null): string => (projectId === null ? 'control' : `project:${projectId}`);
/** The lease scope of a restore into a new project: it holds the slug while it runs. */
export const restoreScopeOf = (slug: string): string => `restore:${slug}`;

/** Whether a lease still holds: not expired and its holder's process alive. */
const holds = (cur: LeaseRow, now: number): boolean => cur.expires_at > now && holderAlive(cur.holder);

const busyMessage = (scope: string, cur: LeaseRow): string =>
  `a backup or restore of ${scope} is already running (#${cur.backup_id}, ${cur.holder})`;

/**
 * Takes the scope's lease for a backup or restore, or throws ConflictError naming who holds it.
 * A lease whose holder's process is gone, or that was not renewed in time, is taken over:
 * a killed backup never blocks the next one.
 */
export function acquireLease(db: DB, scope: string, backupId: number, kind: LeaseRow['kind'] = 'backup', now = Date.now()): void {
  const cur = takeLease(db, { scope, backupId, holder: holderId(), expiresAt: now + LEASE_MS, kind }, (c) => holds(c, now));
  if (cur) throw new ConflictError(busyMessage(scope, cur));
}

/** Throws the ConflictError acquireLease would throw now, without taking the lease. */
export function assertLeaseFree(db: DB, scope: string, now = Date.now()): void {
  const cur = getLease(db, scope);
  if (cur && holds(cur, now)) throw new ConflictError(busyMessage(scope, cur));
}

/**
 * True while an in-place restore runs over this project: its worker's job is running, or a restore
 * holds the project's lease. A holder on this machine counts while its process lives, even past
 * the lease's expiry (a stalled restore renews an expired lease nobody took over and goes on);
 * one on another machine while the lease has not expired.
 */
export function restoreRunningOver(db: DB, projectId: number, now = Date.now()): boolean {
  if (inPlaceRestoreRunning(db, projectId)) return true;
  const cur = getLease(db, scopeOf(projectId));
  if (!cur || cur.kind !== 'restore') return false;
  return cur.holder.split(':')[0] === os.hostname() ? holderAlive(cur.holder) : cur.expires_at > now;
}

/** True while a restore into this slug is queued or running: no one else may take the slug meanwhile. */
export function slugHeldByRestore(db: DB, slug: string, now = Date.now()): boolean {
  if (activeRestoreInto(db, slug)) return true;
  const cur = getLease(db, restoreScopeOf(slug));
  return !!cur && holds(cur, now);
}

/** The live holder of a scope's lease, if any. */
export function liveLeaseHolder(db: DB, scope: string, now = Date.now()): string | undefined {
  const cur = getLease(db, scope);
  return cur && holds(cur, now) ? cur.holder : undefined;
}

/** Pushes this process's lease out by another minute; false when it is no longer ours (taken over). */
export function renewLease(db: DB, scope: string, backupId: number): boolean {
  return extendLease(db, scope, backupId, holderId(), Date.now() + LEASE_MS);
}

export function releaseLease(db: DB, scope: string, backupId: number): void {
  deleteLease(db, scope, backupId, holderId());
}

/** The backup running in a scope (the one whose lease is held), if any. */
export function leasedBackupId(db: DB, scope: string): number | undefined {
  return getLease(db, scope)?.backup_id;
}

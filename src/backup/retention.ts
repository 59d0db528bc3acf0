import fs from 'node:fs';
import type { DB } from '../store/db.js';
import { log } from '../sys/log.js';
import type { BackupSettings } from './settings.js';
import { backupsInUse, expireBackup, keptBackups, verifiedBackups, type BackupRow } from '../store/backups.js';
import { fmtBytes } from '../sys/bytes.js';

const day = (d: Date) => d.toISOString().slice(0, 10);
const month = (d: Date) => d.toISOString().slice(0, 7);
/** ISO week: the Thursday of the week decides its year. */
function week(d: Date): string {
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const dow = t.getUTCDay() || 7;
  t.setUTCDate(t.getUTCDate() + 4 - dow);
  const y0 = new Date(Date.UTC(t.getUTCFullYear(), 0, 1));
  return `${t.getUTCFullYear()}-W${Math.ceil(((t.getTime() - y0.getTime()) / 86_400_000 + 1) / 7)}`;
}

/**
 * Which verified backups of one scope to keep: the newest always; the newest of each of the last
 * `keepDaily` days, `keepWeekly` weeks and `keepMonthly` months that have one; and every backup a
 * kept one was built on (its base, back to the full), so a chain is never broken. Pure: rows in,
 * ids out.
 */
export function retained(rows: BackupRow[], s: Pick<BackupSettings, 'keepDaily' | 'keepWeekly' | 'keepMonthly'>): Set<number> {
  const verified = rows.filter((r) => r.state === 'verified').sort((a, b) => b.started_at.localeCompare(a.started_at) || b.id - a.id);
  const keep = new Set<number>();
  if (verified[0]) keep.add(verified[0].id);
  for (const [n, key] of [
    [s.keepDaily, day],
    [s.keepWeekly, week],
    [s.keepMonthly, month],
  ] as const) {
    const seen = new Set<string>();
    for (const r of verified) {
      const k = key(new Date(r.started_at));
      if (seen.has(k)) continue;
      if (seen.size >= n) break;
      seen.add(k);
      keep.add(r.id);
    }
  }
  const byId = new Map(rows.map((r) => [r.id, r]));
  for (const id of [...keep]) {
    let b = byId.get(id)?.base_id ?? null;
    while (b !== null && !keep.has(b)) {
      keep.add(b);
      b = byId.get(b)?.base_id ?? null;
    }
  }
  return keep;
}

/**
 * Applies retention to one scope (project id, or null for Keelson's database). Called only after a
 * new backup verified. The rows are marked `expired` first, in one transaction, and only then are
 * their files deleted: a crash or an error in between leaves files no row uses (logged), never a
 * `verified` row whose files are partly gone (which a restore or the next incremental would use).
 */
export function applyRetention(db: DB, s: BackupSettings, projectId: number | null): number[] {
  const expired = db
    .transaction(() => {
      const rows = verifiedBackups(db, projectId);
      const keep = retained(rows, s);
      const out: BackupRow[] = [];
      for (const r of rows) {
        if (keep.has(r.id)) continue;
        // When it finished and how long it took stay the backup's own.
        expireBackup(db, r.id, `expired by retention (daily ${s.keepDaily}, weekly ${s.keepWeekly}, monthly ${s.keepMonthly})`);
        out.push(r);
      }
      return out;
    })
    .immediate();
  removeFiles(expired);
  const ids = expired.map((r) => r.id);
  if (ids.length) log.info('backups expired', { project: projectId, ids });
  return ids;
}

/** Deletes the files of rows already marked `expired` (a failure leaves files no row uses, logged). */
function removeFiles(expired: BackupRow[]): void {
  for (const r of expired) {
    if (!r.path) continue;
    try {
      fs.rmSync(r.path, { recursive: true, force: true });
    } catch (e) {
      log.error('expired backup files not removed', { backup: r.id, path: r.path, error: String(e) });
    }
  }
}

const newer = (a: BackupRow, b: BackupRow) => a.started_at.localeCompare(b.started_at) || a.id - b.id;

/**
 * Retention within the budget: which backups to expire, oldest first, to free `toFree` bytes.
 * Never the newest verified backup of a scope (each project, and Keelson's database), never a
 * backup a kept one is built on: the newest's chain and the chain of a run in progress are
 * protected, and so is a backup a restore reads or is queued to read (`inUse`, with its chain);
 * a backup goes together with every backup built on it (an incremental without its base is no
 * restore point). `rows` are every verified or running row, of every scope.
 * Returns what to expire, or how much the rules allow to free when that is not enough (then
 * nothing is expired: no backup is lost for a run that would be refused anyway).
 */
export function roomPlan(rows: BackupRow[], toFree: number, inUse: number[] = []): { expire: BackupRow[] } | { freeable: number } {
  if (toFree <= 0) return { expire: [] };
  const byId = new Map(rows.map((r) => [r.id, r]));
  const keep = new Set<number>();
  const protect = (id: number | null) => {
    for (let b = id; b !== null && !keep.has(b); b = byId.get(b)?.base_id ?? null) keep.add(b);
  };
  const newest = new Map<number | null, BackupRow>();
  for (const r of rows) {
    if (r.state !== 'verified') protect(r.base_id);
    else if (!newest.has(r.project_id) || newer(r, newest.get(r.project_id)!) > 0) newest.set(r.project_id, r);
  }
  for (const r of newest.values()) protect(r.id);
  for (const id of inUse) protect(id);
  const children = new Map<number, BackupRow[]>();
  for (const r of rows) if (r.base_id !== null) children.set(r.base_id, [...(children.get(r.base_id) ?? []), r]);
  const candidates = rows.filter((r) => r.state === 'verified' && !keep.has(r.id)).sort(newer);
  const gone = new Set<number>();
  const expire: BackupRow[] = [];
  let freed = 0;
  for (const c of candidates) {
    if (freed >= toFree) break;
    // The oldest left, with everything built on it (none of which is protected: a protected
    // backup's whole chain is).
    const unit = [c];
    for (let i = 0; i < unit.length; i++) unit.push(...(children.get(unit[i]!.id) ?? []).filter((k) => !gone.has(k.id)));
    for (const r of unit) {
      if (gone.has(r.id)) continue;
      gone.add(r.id);
      expire.push(r);
      freed += r.bytes;
    }
  }
  return freed >= toFree ? { expire } : { freeable: freed };
}

/**
 * Makes room within the budget for backup `forId`: expires what roomPlan chooses (rows first, in
 * one transaction that re-reads the catalog, then files), logs it, and says in each row why.
 * Returns the expired rows, or the reason nothing was.
 */
export function expireForBudget(db: DB, forId: number, forWhat: string, toFree: number): { expired: BackupRow[] } | { why: string } {
  const r = db
    .transaction(() => {
      const plan = roomPlan(keptBackups(db), toFree, backupsInUse(db));
      if (!('expire' in plan)) return plan;
      for (const b of plan.expire)
        expireBackup(
          db,
          b.id,
          `expired by retention within the budget (KEELSON_BACKUP_BUDGET_RETENTION): made room for backup #${forId} of ${forWhat}, which needed ${fmtBytes(toFree)} more`,
        );
      return plan;
    })
    .immediate();
  if (!('expire' in r))
    return {
      why: `retention within the budget may expire only ${fmtBytes(r.freeable)} (never the newest verified backup of a project, never a base a kept backup needs), not the ${fmtBytes(toFree)} needed; nothing was expired`,
    };
  removeFiles(r.expire);
  if (r.expire.length)
    log.info('backups expired within the budget', {
      for: forId,
      ids: r.expire.map((b) => b.id),
      bytes: r.expire.reduce((a, b) => a + b.bytes, 0),
      needed: toFree,
    });
  return { expired: r.expire };
}

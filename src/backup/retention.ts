import fs from 'node:fs';
import path from 'node:path';
import type { DB } from '../store/db.js';
import { log } from '../sys/log.js';
import type { BackupSettings } from '../settings/backup.js';
import { backupsInUse, expireBackup, heldBytes, keptBackups, verifiedBackups, type BackupRow } from '../store/backups.js';
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
export function applyRetention(db: DB, s: BackupSettings, projectId: number | null, root: string): number[] {
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
  removeFiles(expired, root);
  const ids = expired.map((r) => r.id);
  if (ids.length) log.info('backups expired', { project: projectId, ids });
  return ids;
}

/**
 * Deletes the files of rows already marked `expired` (a failure leaves files no row uses, logged).
 * Only below the backup directory: a row is data, and whoever could write the database (the API
 * runs apart as its own user in production) must not steer root's recursive delete elsewhere.
 */
function removeFiles(expired: BackupRow[], root: string): void {
  const top = path.resolve(root) + path.sep;
  for (const r of expired) {
    if (!r.path) continue;
    // Below the backup directory, and not in its working folders (.staging, .restore-aside).
    if (path.resolve(r.path) !== r.path || !r.path.startsWith(top) || r.path.slice(top.length).startsWith('.')) {
      log.error('expired backup row names a path outside the backup directory; not removed', { backup: r.id, path: r.path });
      continue;
    }
    try {
      fs.rmSync(r.path, { recursive: true, force: true });
    } catch (e) {
      log.error('expired backup files not removed', { backup: r.id, path: r.path, error: String(e) });
    }
  }
}

/**
 * Retention within the budget: which backups to expire to free `toFree` bytes for a run of
 * `scope` (a project id, or null for Keelson's database). What may go: never the newest verified
 * backup of a scope (each project, and Keelson's database), nor the newest whose test restore did
 * not fail; never a backup a kept one is built on (the chains of those, and of a run in
 * progress); never a backup a restore reads or is queued to read (`inUse`, with its chain). A
 * backup goes together with every backup built on it (an incremental without its base is no
 * restore point). Who pays: the run's own scope first, then the scope that holds the most, but
 * only while it holds more than the run's scope will (its holdings and `need`); within a scope the
 * oldest first (by id: ids only grow, clocks may step back). `rows` are every verified
 * or running row, of every scope. Returns what to expire, or how much the rules allow to free when
 * that is not enough (then nothing is expired: no backup is lost for a run refused anyway).
 */
export function roomPlan(
  rows: BackupRow[],
  toFree: number,
  o: { scope?: number | null; need?: number; inUse?: number[] } = {},
): { expire: BackupRow[] } | { freeable: number } {
  if (toFree <= 0) return { expire: [] };
  const byId = new Map(rows.map((r) => [r.id, r]));
  const keep = new Set<number>();
  const protect = (id: number | null) => {
    for (let b = id; b !== null && !keep.has(b); b = byId.get(b)?.base_id ?? null) keep.add(b);
  };
  const verified = rows.filter((r) => r.state === 'verified').sort((a, b) => b.id - a.id);
  for (const r of rows) if (r.state !== 'verified') protect(r.base_id);
  const newest = new Set<number | null>();
  const newestGood = new Set<number | null>();
  for (const r of verified) {
    if (!newest.has(r.project_id)) {
      newest.add(r.project_id);
      protect(r.id);
    }
    if (!newestGood.has(r.project_id) && r.test_restore_ok !== 0) {
      newestGood.add(r.project_id);
      protect(r.id);
    }
  }
  for (const id of o.inUse ?? []) protect(id);
  const children = new Map<number, BackupRow[]>();
  for (const r of rows) if (r.base_id !== null) children.set(r.base_id, [...(children.get(r.base_id) ?? []), r]);
  // Each scope's candidates, oldest first, and what each scope holds.
  const queues = new Map<number | null, BackupRow[]>();
  const holds = new Map<number | null, number>();
  for (const r of [...verified].reverse()) {
    holds.set(r.project_id, (holds.get(r.project_id) ?? 0) + r.bytes);
    if (!keep.has(r.id)) queues.set(r.project_id, [...(queues.get(r.project_id) ?? []), r]);
  }
  // Another project pays only while it holds more than the run's own will (what it holds and
  // needs): a project that grows cannot strip smaller tenants' history to make room for itself.
  const own = o.scope === undefined ? -Infinity : (holds.get(o.scope) ?? 0) + (o.need ?? 0);
  const gone = new Set<number>();
  const expire: BackupRow[] = [];
  let freed = 0;
  while (freed < toFree) {
    for (const [k, q] of queues) if (!q.some((r) => !gone.has(r.id))) queues.delete(k);
    let scope: number | null | undefined = o.scope !== undefined && queues.has(o.scope) ? o.scope : undefined;
    if (scope === undefined)
      for (const k of queues.keys()) if (holds.get(k)! > own && (scope === undefined || holds.get(k)! > holds.get(scope)!)) scope = k;
    if (scope === undefined) return { freeable: freed };
    const c = queues.get(scope!)!.find((r) => !gone.has(r.id))!;
    // The oldest left, with everything built on it (none of it protected: a protected backup's
    // whole chain is, and chains stay within a scope).
    const unit = [c];
    for (let i = 0; i < unit.length; i++) unit.push(...(children.get(unit[i]!.id) ?? []).filter((k) => !gone.has(k.id)));
    for (const r of unit) {
      if (gone.has(r.id)) continue;
      gone.add(r.id);
      expire.push(r);
      freed += r.bytes;
      holds.set(r.project_id, holds.get(r.project_id)! - r.bytes);
    }
  }
  return { expire };
}

/**
 * Makes room within the budget for backup `forId` of `scope`, which needs `needBytes` with the
 * budget's reserve left: how much to free is computed in the same transaction that re-reads the
 * catalog and marks rows `expired` (so two runs making room at once do not both expire for the
 * same shortfall), then files are deleted and a log line says what went and for what. The rows
 * say only that retention within the budget expired them: the run they made room for may be
 * another tenant's, whose name is not theirs to read.
 */
export function expireForBudget(
  db: DB,
  run: { id: number; scope: number | null; what: string },
  needBytes: number,
  budget: { bytes: number; reserveBytes: number },
  root: string,
): { expired: BackupRow[] } | { why: string } {
  const r = db
    .transaction(() => {
      const toFree = heldBytes(db) + needBytes + budget.reserveBytes - budget.bytes;
      const plan = roomPlan(keptBackups(db), toFree, { scope: run.scope, need: needBytes, inUse: backupsInUse(db) });
      if ('expire' in plan)
        for (const b of plan.expire)
          expireBackup(
            db,
            b.id,
            'expired by retention within the budget (KEELSON_BACKUP_BUDGET_RETENTION) to make room for a newer backup',
          );
      return { plan, toFree };
    })
    .immediate();
  const { plan, toFree } = r;
  if (!('expire' in plan))
    return {
      why: `retention within the budget may expire only ${fmtBytes(plan.freeable)}, not the ${fmtBytes(toFree)} needed (it keeps every project's newest backups and what they are built on, backups restores read, and takes from other projects only while they hold more than this one); nothing was expired`,
    };
  removeFiles(plan.expire, root);
  if (plan.expire.length)
    log.info('backups expired within the budget', {
      for: run.id,
      of: run.what,
      expired: plan.expire.map((b) => ({ id: b.id, project: b.slug, bytes: b.bytes })),
      freed: plan.expire.reduce((a, b) => a + b.bytes, 0),
      needed: toFree,
    });
  return { expired: plan.expire };
}

import fs from 'node:fs';
import type { DB } from '../store/db.js';
import { log } from '../sys/log.js';
import type { BackupSettings } from './settings.js';
import { expireBackup, verifiedBackups, type BackupRow } from '../store/backups.js';

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
  for (const r of expired) {
    if (!r.path) continue;
    try {
      fs.rmSync(r.path, { recursive: true, force: true });
    } catch (e) {
      log.error('expired backup files not removed', { backup: r.id, path: r.path, error: String(e) });
    }
  }
  const ids = expired.map((r) => r.id);
  if (ids.length) log.info('backups expired', { project: projectId, ids });
  return ids;
}

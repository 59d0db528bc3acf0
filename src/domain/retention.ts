/**
 * What Keelson keeps of its own bookkeeping (issue 17), swept on a schedule (src/main/schedule.ts):
 * audit rows for KEELSON_AUDIT_RETENTION_DAYS, the newest KEELSON_PERMISSION_HISTORY_KEEP
 * permission versions (and publish records) of each project plus the version on disk, live
 * sessions, throttle windows for a day, finished reconcile and credentials
 * jobs as long as the audit rows. Rows go in batches, each its own short write transaction, with
 * the event loop given back between them, so requests and the worker are never held up for long.
 */
import { setImmediate as yieldLoop } from 'node:timers/promises';
import type { Config } from '../config.js';
import type { DB } from '../store/db.js';
import { deleteAuditBefore } from '../store/audit.js';
import { projectsOver, trimPermissionHistory, trimPublishes } from '../store/permissions.js';
import { deleteSessionsExpiredBefore } from '../store/sessions.js';
import { deleteThrottlesBefore } from '../store/throttles.js';
import { deleteFinishedJobsBefore } from '../store/jobs.js';

export interface SweepCounts {
  audit: number;
  history: number;
  publishes: number;
  sessions: number;
  throttles: number;
  jobs: number;
}

/** Rows one sweep statement deletes at most (a few milliseconds of write lock). */
export const SWEEP_BATCH = 500;
const DAY_MS = 86_400_000;

/** Runs `step` (which deletes at most `batch` rows) until it has nothing left; the rows deleted. */
async function drain(batch: number, step: () => number, signal?: AbortSignal): Promise<number> {
  let total = 0;
  for (;;) {
    signal?.throwIfAborted();
    const n = step();
    total += n;
    if (n < batch) return total;
    await yieldLoop();
  }
}

export async function sweepRetention(
  db: DB,
  cfg: Config,
  o: { now?: number; batch?: number; signal?: AbortSignal } = {},
): Promise<SweepCounts> {
  const now = o.now ?? Date.now();
  const batch = Math.max(1, o.batch ?? SWEEP_BATCH);
  const keep = Math.max(1, cfg.permissionHistoryKeep);
  const auditBefore = new Date(now - cfg.auditRetentionDays * DAY_MS).toISOString();
  const perProject = async (table: 'permission_history' | 'authz_publishes', trim: typeof trimPublishes) => {
    let total = 0;
    for (const id of projectsOver(db, table, keep)) total += await drain(batch, () => trim(db, id, keep, batch), o.signal);
    return total;
  };
  return {
    audit: await drain(batch, () => deleteAuditBefore(db, auditBefore, batch), o.signal),
    history: await perProject('permission_history', trimPermissionHistory),
    publishes: await perProject('authz_publishes', trimPublishes),
    // An expired session never signs anyone in again (a form typed into it travels with the sign-in).
    sessions: await drain(batch, () => deleteSessionsExpiredBefore(db, now, batch), o.signal),
    // No throttle window is longer than a day (src/config.ts).
    throttles: await drain(batch, () => deleteThrottlesBefore(db, now - DAY_MS, batch), o.signal),
    jobs: await drain(batch, () => deleteFinishedJobsBefore(db, now - cfg.auditRetentionDays * DAY_MS, batch), o.signal),
  };
}

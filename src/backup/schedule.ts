import type { DB } from '../store/db.js';
import { enqueue, type Job } from '../store/jobs.js';
import { log } from '../sys/log.js';
import type { BackupService } from './engine.js';
import { backedUpProjectIds, backedUpSlugOf, type BackupKind } from '../store/backups.js';

/** Job kind: one project's backup (project_id), or Keelson's own database (project_id NULL). */
export const JOB_BACKUP = 'backup';

export interface BackupJobPayload {
  kind?: BackupKind;
  trigger?: 'schedule' | 'api';
  actor?: string;
  /** An operator asked for this run too (it joined a scheduled one): it does not wait out a back-off. */
  requestedBy?: string;
}

/**
 * Enqueues one backup (a project's, or Keelson's database's with `projectId` null). A backup
 * already waiting for it is joined, keeping the stronger of both: a full over an incremental, the
 * scheduler's rules over an operator's request (a scheduled run backs off after refusals and may
 * make room within the budget; it must not be lost in an operator's request, nor the reverse).
 */
export function enqueueBackup(db: DB, projectId: number | null, p: Required<Omit<BackupJobPayload, 'requestedBy'>>): void {
  enqueue(db, JOB_BACKUP, projectId, p, Date.now(), (pending) => {
    const w = JSON.parse(pending || '{}') as BackupJobPayload;
    const scheduled = w.trigger === 'schedule' ? w : p.trigger === 'schedule' ? p : w;
    const requestedBy = w.requestedBy ?? (w.trigger === 'api' ? w.actor : p.trigger === 'api' ? p.actor : undefined);
    return {
      kind: w.kind === 'full' || p.kind === 'full' ? 'full' : (w.kind ?? p.kind),
      trigger: scheduled.trigger ?? 'schedule',
      actor: scheduled.actor ?? 'scheduler',
      ...(requestedBy && scheduled.trigger === 'schedule' ? { requestedBy } : {}),
    };
  });
}

/** Enqueues backups of every live project (coalesced: one waiting backup job per project). */
export function enqueueBackups(db: DB, kind: BackupKind, trigger: 'schedule' | 'api', actor = 'scheduler'): number {
  const ids = backedUpProjectIds(db);
  db.transaction(() => {
    for (const id of ids) enqueueBackup(db, id, { kind, trigger, actor });
  })();
  return ids.length;
}

/**
 * The worker's handler. A backup records its own outcome (verified, refused, failed) in the
 * catalog and alerts; it never throws to the queue, whose quick retries are wrong for backups:
 * a refusal backs off (see BackupService.backoffUntil) and a failure waits for the next schedule.
 */
export function backupJobHandler(svc: BackupService, db: DB) {
  return async (job: Job, signal?: AbortSignal): Promise<void> => {
    const p = JSON.parse(job.payload || '{}') as BackupJobPayload;
    const o = {
      kind: p.kind,
      trigger: p.trigger ?? 'schedule',
      actor: p.actor ?? 'scheduler',
      requested: !!p.requestedBy,
      signal,
    } as const;
    try {
      if (job.project_id === null) {
        await svc.runControl(o);
      } else {
        const slug = backedUpSlugOf(db, job.project_id);
        if (!slug) return;
        const r = await svc.runProject(slug, o);
        if (r.skipped !== undefined) log.debug('backup skipped', { project: slug, why: r.skipped });
      }
    } catch (e) {
      // A lease held by a running backup, or a project that went away: nothing to retry.
      log.warn('backup job not run', { project: job.project_id, error: (e as Error).message });
    }
  };
}

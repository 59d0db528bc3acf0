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
}

/** Enqueues backups of every live project (coalesced: one waiting backup job per project). */
export function enqueueBackups(db: DB, kind: BackupKind, trigger: 'schedule' | 'api', actor = 'scheduler'): number {
  const ids = backedUpProjectIds(db);
  db.transaction(() => {
    for (const id of ids) enqueue(db, JOB_BACKUP, id, { kind, trigger, actor });
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
    const o = { kind: p.kind, trigger: p.trigger ?? 'schedule', actor: p.actor ?? 'scheduler', signal } as const;
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

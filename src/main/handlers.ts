/** The worker's handler table: each job kind, what runs it, and its timeout (KEELSON_JOB_TIMEOUT_*). */
import type { Config } from '../config.js';
import type { DB } from '../store/db.js';
import { JOB_CREDENTIALS, JOB_RECONCILE, JOB_STORAGE } from '../store/jobs.js';
import type { JobKind } from '../jobs/worker.js';
import type { Reconciler } from '../provision/reconciler.js';
import type { BackupService } from '../backup/engine.js';
import { JOB_BACKUP, backupJobHandler } from '../backup/schedule.js';
import { JOB_RESTORE, restoreJobHandler } from '../backup/restore-job.js';

export function jobHandlers(db: DB, cfg: Config, reconciler: Reconciler, backups: BackupService): Record<string, JobKind> {
  return {
    // A project's reconcile: Trac helper calls have their own timeouts inside it.
    [JOB_RECONCILE]: { run: (job) => reconciler.reconcile(job.project_id!), timeoutMs: cfg.jobTimeouts.reconcile },
    [JOB_CREDENTIALS]: { run: () => reconciler.syncCredentials(), timeoutMs: cfg.jobTimeouts.credentials },
    // Quota files after a storage limit changed (or the operator's default): rewritten from the rows.
    [JOB_STORAGE]: {
      run: async () => {
        await reconciler.init();
        await reconciler.usage.converge();
      },
      timeoutMs: cfg.jobTimeouts.credentials,
    },
    // A backup aborts (its programs killed, staging removed) when its time is up.
    [JOB_BACKUP]: { run: backupJobHandler(backups, db), timeoutMs: cfg.jobTimeouts.backup },
    // A restore through the API: one attempt; at its timeout it stops and puts back what it moved.
    [JOB_RESTORE]: { run: restoreJobHandler(backups), timeoutMs: cfg.jobTimeouts.restore },
  };
}

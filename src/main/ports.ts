/** The ports the use cases declare (src/domain/ports.ts), wired to the parts that do the work. */
import type { Config } from '../config.js';
import type { DB } from '../store/db.js';
import type { BackupPort } from '../domain/ports.js';
import { BackupService } from '../backup/engine.js';
import { enqueueBackup, enqueueBackups } from '../backup/schedule.js';
import { enqueueRestore, jobView } from '../backup/restore-job.js';
import { restoreBackup } from '../backup/restore.js';

/** Backups and restores of `db`: the engine runs them, the queue takes them for the worker. */
export function backupPort(db: DB, cfg: Config): BackupPort {
  // Made on first use: a context that never backs up never builds the engine.
  let engine: BackupService | undefined;
  const svc = () => (engine ??= new BackupService(db, cfg, cfg.backup));
  return {
    volume: () => svc().volume(),
    enqueueBackup: (projectId, o) => enqueueBackup(db, projectId, o),
    enqueueBackups: (kind, trigger, actor) => enqueueBackups(db, kind, trigger, actor),
    enqueueRestore: (backupId, o) => {
      const { job, plan } = enqueueRestore(svc(), backupId, o);
      return { job, target: plan.targetSlug, mode: plan.mode };
    },
    jobView: (job) => jobView(db, job),
    runControl: (o) => svc().runControl(o),
    runProject: (slug, o) => svc().runProject(slug, o),
    restoreNow: (backupId, o) => restoreBackup(svc(), backupId, o),
  };
}

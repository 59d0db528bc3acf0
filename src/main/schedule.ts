/**
 * Every timed thing a host does, in one table: what runs, when (cron, with seconds), and why.
 * The worker's per-kind timeouts are in src/main/handlers.ts; the commit spool is also drained on
 * every change the file watcher sees.
 */
import cron, { type ScheduledTask } from 'node-cron';
import type { Config } from '../config.js';
import type { DB } from '../store/db.js';
import { reconcileAll } from '../domain/projects.js';
import { noEffects } from '../domain/context.js';
import { log } from '../sys/log.js';
import { alert } from '../backup/alert.js';
import type { BackupService } from '../backup/engine.js';
import { enqueueBackup, enqueueBackups } from '../backup/schedule.js';
import { testRestoreSample } from '../backup/test-restore.js';
import { sampleDisk } from '../domain/capacity.js';
import { sweepRetention } from '../domain/retention.js';

export interface ScheduleEntry {
  name: string;
  /** A cron expression (six fields: seconds first); empty turns the entry off. */
  cron: string;
  run: () => unknown;
}

/** Enqueues a reconcile of every live project: `keelson reconcile --all` and the nightly drift repair. */
export const enqueueAll = (db: DB): number => reconcileAll({ db, fx: noEffects });

export interface ScheduleParts {
  db: DB;
  cfg: Config;
  backups: BackupService;
  wake: () => void;
  /** Present when this process runs the worker: the commit spool sweep. */
  drainSpool?: () => void;
  /** Present when this process runs the worker: the nightly full storage measure of every project. */
  measureUsage?: () => Promise<{ projects: number; ms: number }>;
  /** Present when this process runs the worker: idle uploads of projects over their limit removed. */
  sweepUploads?: () => Promise<string[]>;
  /** Present when this process runs Apache: the health check that restarts it. */
  apacheCheck?: () => Promise<void>;
}

/** The table. Entries whose part this process does not run are left out. */
export function scheduleTable(p: ScheduleParts): ScheduleEntry[] {
  const { db, cfg, wake } = p;
  const b = p.backups.settings;
  const t: ScheduleEntry[] = [];
  // Commits reach Trac through the spool the post-commit hooks write; swept for what the watcher missed.
  if (p.drainSpool) t.push({ name: 'commit-spool-sweep', cron: '*/5 * * * * *', run: p.drainSpool });
  // Backups (KEELSON_BACKUP_*_CRON): nightly incrementals, weekly fulls, Keelson's own database,
  // and the test restore of a rotating sample.
  t.push(
    {
      name: 'backup-incremental',
      cron: b.incrementalCron,
      run: () => (log.info('scheduled incremental backups', { projects: enqueueBackups(db, 'incremental', 'schedule') }), wake()),
    },
    {
      name: 'backup-full',
      cron: b.fullCron,
      run: () => (log.info('scheduled full backups', { projects: enqueueBackups(db, 'full', 'schedule') }), wake()),
    },
    {
      name: 'backup-control',
      cron: b.controlCron,
      run: () => (enqueueBackup(db, null, { kind: 'full', trigger: 'schedule', actor: 'scheduler' }), wake()),
    },
    {
      name: 'backup-test-restore',
      cron: b.testRestoreCron,
      run: async () => {
        const out = await testRestoreSample(p.backups, b.testRestoreSample, (id, reason) =>
          alert(b.alertWebhook, 'backup.test_restore_failed', { backup: id, reason }),
        ).catch((e) => [{ id: 0, ok: false, error: String(e) }]);
        log.info('backup test restore', { results: out });
      },
    },
  );
  // Disk usage of the data and backup volumes for the operator's chart.
  t.push({ name: 'disk-sample', cron: cfg.diskSampleCron, run: () => sampleDisk(db, cfg) });
  // Keelson's own rows (audit, permission history, sessions, throttles, finished jobs) within their
  // retention; hourly, in small batches, so the database grows with the work done, not the calls.
  t.push({
    name: 'retention',
    cron: '23 * * * *',
    run: async () => log.info('retention sweep', { deleted: await sweepRetention(db, cfg) }),
  });
  // Nightly drift repair: every project re-rendered from the database.
  t.push({ name: 'reconcile-all', cron: '17 3 * * *', run: () => (log.info('nightly reconcile', { projects: enqueueAll(db) }), wake()) });
  // Every project's storage measured whole (the commits' incremental measure drifts by a little).
  const measure = p.measureUsage;
  if (measure)
    t.push({ name: 'storage-measure', cron: cfg.usageCron, run: async () => log.info('nightly storage measure', await measure()) });
  if (p.sweepUploads) t.push({ name: 'upload-sweep', cron: '40 * * * * *', run: p.sweepUploads });
  if (p.apacheCheck) t.push({ name: 'apache-health', cron: '*/30 * * * * *', run: p.apacheCheck });
  return t;
}

/** Starts every entry; an entry that throws is logged and runs again at its next time. */
export function startSchedule(entries: ScheduleEntry[]): ScheduledTask[] {
  return entries
    .filter((e) => e.cron)
    .map((e) =>
      cron.schedule(
        e.cron,
        async () => {
          try {
            await e.run();
          } catch (err) {
            log.error('scheduled task failed', { task: e.name, error: String(err) });
          }
        },
        { name: e.name },
      ),
    );
}

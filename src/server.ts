import fs from 'node:fs';
import http from 'node:http';
import cron, { type ScheduledTask } from 'node-cron';
import { layout, type Config } from './config.js';
import { openDatabase, type DB } from './store/db.js';
import { createApp } from './api/app.js';
import { Apache } from './provision/apache.js';
import { Reconciler } from './provision/reconciler.js';
import { Worker } from './jobs/worker.js';
import { enqueue } from './jobs/queue.js';
import { JOB_CREDENTIALS, JOB_RECONCILE } from './store/model.js';
import { log } from './sys/log.js';
import { BackupService } from './backup/engine.js';
import { JOB_BACKUP, backupJobHandler, startBackupScheduler } from './backup/schedule.js';
import { JOB_RESTORE, restoreJobHandler } from './backup/restore-job.js';
import { sampleDisk } from './web/store.js';

export interface ServeOptions {
  api?: boolean;
  worker?: boolean;
  apache?: boolean;
  scheduler?: boolean;
}

export interface Running {
  db: DB;
  apache: Apache;
  reconciler: Reconciler;
  worker?: Worker;
  server?: http.Server;
  url?: string;
  stop(): Promise<void>;
}

/** Enqueues a reconcile of every live project: `keelson reconcile --all` and the nightly drift repair. */
export function enqueueAll(db: DB): number {
  const ids = db.prepare(`SELECT id FROM projects WHERE state <> 'deleted'`).pluck().all() as number[];
  db.transaction(() => {
    for (const id of ids) enqueue(db, JOB_RECONCILE, id);
    enqueue(db, JOB_CREDENTIALS, null);
  })();
  return ids.length;
}

/** Brings up the parts of a host: API and web UI, worker, scheduler, and the private Apache. */
export async function serve(cfg: Config, opts: ServeOptions = {}): Promise<Running> {
  const o = { api: true, worker: true, apache: true, scheduler: true, ...opts };
  const l = layout(cfg);
  fs.mkdirSync(cfg.dataDir, { recursive: true, mode: 0o755 });
  const db = openDatabase(l.db);
  const apache = new Apache(cfg, l);
  const reconciler = new Reconciler(cfg, l, db);
  const tasks: ScheduledTask[] = [];
  let worker: Worker | undefined;
  let server: http.Server | undefined;
  let watcher: fs.FSWatcher | undefined;
  let apacheStarted = false;
  const stop = async () => {
    for (const t of tasks) await t.stop();
    watcher?.close();
    if (server?.listening) await new Promise<void>((r) => server!.close(() => r()));
    await worker?.stop();
    reconciler.close();
    if (apacheStarted && process.env.KEELSON_KEEP_APACHE !== '1') await apache.stop();
    db.close();
  };
  // A part that fails to come up (a port taken, Apache refusing its config) takes down what
  // already started, so the caller is not left with a running Apache or an open database.
  try {
    return await startParts();
  } catch (e) {
    await stop().catch(() => {});
    throw e;
  }

  async function startParts(): Promise<Running> {
    if (o.worker || o.apache) await reconciler.init();
    if (o.apache) {
      apacheStarted = true;
      await apache.start();
    }

    if (o.worker) {
      worker = new Worker(
        db,
        {
          // A project's reconcile: Trac helper calls have their own timeouts inside it.
          [JOB_RECONCILE]: { run: (job) => reconciler.reconcile(job.project_id!), timeoutMs: cfg.jobTimeouts.reconcile },
          [JOB_CREDENTIALS]: { run: () => reconciler.syncCredentials(), timeoutMs: cfg.jobTimeouts.credentials },
          // A backup aborts (its programs killed, staging removed) when its time is up.
          [JOB_BACKUP]: { run: backupJobHandler(new BackupService(db, cfg, cfg.backup), db), timeoutMs: cfg.jobTimeouts.backup },
          // A restore through the API: one attempt; at its timeout it stops and puts back what it moved.
          [JOB_RESTORE]: { run: restoreJobHandler(new BackupService(db, cfg, cfg.backup)), timeoutMs: cfg.jobTimeouts.restore },
        },
        { concurrency: cfg.workerConcurrency, staleMs: Number(process.env.KEELSON_JOB_STALE_MS) || 30_000 },
      );
      worker.start();
      // Commits reach Trac through the spool the post-commit hooks write; watch it, and sweep it
      // now for whatever arrived while no worker ran.
      let draining = false;
      let again = false;
      const drain = () => {
        if (draining) return void (again = true);
        draining = true;
        reconciler
          .drainCommitSpool()
          .catch((e) => log.error('commit spool', { error: String(e) }))
          .finally(() => {
            draining = false;
            if (again) {
              again = false;
              drain();
            }
          });
      };
      watcher = fs.watch(l.commitSpool, () => drain());
      drain();
      tasks.push(cron.schedule('*/5 * * * * *', drain, { name: 'commit-spool-sweep' }));
    }

    if (o.scheduler) {
      tasks.push(...startBackupScheduler(new BackupService(db, cfg, cfg.backup), db, () => worker?.wake()));
      // Disk usage of the data and backup volumes for the operator's chart: one sample now, then on schedule.
      const sample = () => {
        try {
          sampleDisk(db, cfg);
        } catch (e) {
          log.error('disk sample', { error: String(e) });
        }
      };
      sample();
      tasks.push(cron.schedule(cfg.diskSampleCron, sample, { name: 'disk-sample' }));
      // Nightly drift repair: every project re-rendered from the database.
      tasks.push(cron.schedule('17 3 * * *', () => log.info('nightly reconcile', { projects: enqueueAll(db) }), { name: 'reconcile-all' }));
      if (o.apache) {
        tasks.push(
          cron.schedule(
            '*/30 * * * * *',
            async () => {
              if (!(await apache.healthy())) {
                log.error('apache is not answering; restarting it', { errorLog: apache.errorLog });
                await apache.start().catch((e) => log.error('apache restart failed', { error: String(e) }));
              }
            },
            { name: 'apache-health' },
          ),
        );
      }
    }

    let url: string | undefined;
    if (o.api) {
      const app = createApp({ db, cfg, onEnqueue: () => worker?.wake(), apacheHealthy: () => apache.healthy() });
      server = http.createServer(app);
      await new Promise<void>((resolve, reject) => {
        server!.once('error', reject);
        server!.listen(cfg.httpPort, cfg.httpHost, () => resolve());
      });
      const addr = server.address();
      url = `http://${cfg.httpHost}:${typeof addr === 'object' && addr ? addr.port : cfg.httpPort}`;
    }

    return {
      db,
      apache,
      reconciler,
      worker,
      server,
      url,
      stop,
    };
  }
}

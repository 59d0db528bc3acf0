/**
 * Wiring only: opens the store, starts the worker with its handler table, the schedule table, the
 * commit-spool watcher, the private Apache, and mounts HTTP.
 */
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import type { ScheduledTask } from 'node-cron';
import { layout, type Config } from '../config.js';
import { openDatabase, type DB } from '../store/db.js';
import { createApp } from './app.js';
import { Apache } from '../provision/apache.js';
import { Reconciler } from '../provision/reconciler.js';
import { Worker } from '../jobs/worker.js';
import { log } from '../sys/log.js';
import { alert } from '../backup/alert.js';
import { BackupService } from '../backup/engine.js';
import { makeContext } from './context.js';
import { checkTls } from '../files/apache/tls.js';
import { checkPortFree } from '../sys/port.js';
import { jobHandlers } from './handlers.js';
import { refreshQuotaFiles } from '../domain/storage.js';
import { noEffects } from '../domain/context.js';
import { scheduleTable, startSchedule, type ScheduleParts } from './schedule.js';
import { sampleDisk } from '../domain/capacity.js';

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

/**
 * Drains the commit spool on every call, without waiting for an earlier run: the spool delivers
 * each project at most once at a time and comes back to one whose commits arrived meanwhile, so a
 * project whose Trac hangs holds up neither the next run nor another project's commits.
 */
function spoolDrainer(reconciler: Reconciler): () => void {
  return (): void => {
    reconciler.drainCommitSpool().catch((e) => log.error('commit spool', { error: String(e) }));
  };
}

/** Restarts Apache when it stops answering. */
/**
 * Apache's health, every 30 s: an Apache whose main process is gone is started again; one that is
 * running but does not answer (every worker busy, e.g. under a flood) is an alert, never a restart:
 * a graceful restart of a busy server only cut the requests in flight.
 */
export const apacheCheck = (apache: Apache, webhook: string | undefined) => async () => {
  if (!apache.mainPid()) {
    log.error('apache is not running; starting it', { errorLog: apache.errorLog });
    await apache.start().catch((e) => log.error('apache start failed', { error: String(e) }));
    return;
  }
  if (!(await apache.healthy(5000))) {
    await alert(webhook, 'apache.unresponsive', { pid: apache.mainPid(), errorLog: apache.errorLog, action: 'none: left running' });
  }
};

/** The scheduler: leftovers of interrupted backup runs swept first, one disk sample now, then the schedule table. */
function startScheduler(p: ScheduleParts): ScheduledTask[] {
  try {
    p.backups.sweep();
  } catch (e) {
    log.error('backup sweep failed', { error: String(e) });
  }
  try {
    sampleDisk(p.db, p.cfg);
  } catch (e) {
    log.error('disk sample', { error: String(e) });
  }
  return startSchedule(scheduleTable(p));
}

/** Brings up the parts of a host: API and web UI, worker, scheduler, and the private Apache. */
export async function serve(cfg: Config, opts: ServeOptions = {}): Promise<Running> {
  const o = { api: true, worker: true, apache: true, scheduler: true, ...opts };
  const l = layout(cfg);
  fs.mkdirSync(cfg.dataDir, { recursive: true, mode: 0o755 });
  const db = openDatabase(l.db, { shared: !!cfg.apiUser });
  const apache = new Apache(cfg, l);
  const reconciler = new Reconciler(cfg, l, db);
  const backups = new BackupService(db, cfg, cfg.backup);
  const tasks: ScheduledTask[] = [];
  let worker: Worker | undefined;
  let server: http.Server | undefined;
  let watcher: fs.FSWatcher | undefined;
  let wakeWatcher: fs.FSWatcher | undefined;
  let apacheStarted = false;
  // An API apart from the worker (KEELSON_API_USER, two units) wakes it through a file the worker
  // watches; the worker's own poll (every 500 ms) is the fallback either way.
  const wake = o.worker ? () => worker?.wake() : () => touchWake(l.wakeDir, 'wake');
  const stop = async () => {
    for (const t of tasks) await t.stop();
    watcher?.close();
    wakeWatcher?.close();
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
    // A certificate Apache could not use, or the API's port taken, is named before anything is built or started.
    if (o.apache && cfg.tls) checkTls(cfg.tls);
    if (o.api && cfg.httpPort) await checkPortFree(cfg.httpHost, cfg.httpPort, 'KEELSON_HTTP_PORT');
    if (o.worker || o.apache) await reconciler.init();
    if (o.apache) {
      apacheStarted = true;
      await apache.start();
    }
    let drain: (() => void) | undefined;
    if (o.worker) {
      worker = new Worker(db, jobHandlers(db, cfg, reconciler, backups), {
        concurrency: cfg.workerConcurrency,
        staleMs: Number(process.env.KEELSON_JOB_STALE_MS) || 30_000,
      });
      // Every quota file checked against the database once per start (a limit changed while no
      // worker ran, a project never measured): a job, so it does not hold up the start.
      refreshQuotaFiles({ db, fx: noEffects });
      worker.start();
      // Commits reach Trac through the spool the post-commit hooks write; watch it, and sweep it
      // now for whatever arrived while no worker ran.
      drain = spoolDrainer(reconciler);
      watcher = fs.watch(l.commitSpool, () => drain!());
      drain();
      if (cfg.apiUser && fs.existsSync(l.wakeDir)) {
        // `credentials`: a token or a user changed: Apache's credentials are synced now, ahead of
        // every queued job (the queued sync stays as the fallback); `wake`: a job was queued.
        const credentialsNow = coalesced(() => reconciler.syncCredentials());
        wakeWatcher = fs.watch(l.wakeDir, (_event, name) => {
          if (name === 'credentials') credentialsNow();
          worker?.wake();
        });
      }
    }
    if (o.scheduler)
      tasks.push(
        ...startScheduler({
          db,
          cfg,
          backups,
          wake,
          drainSpool: drain,
          measureUsage: o.worker ? () => reconciler.usage.measureAll() : undefined,
          sweepUploads: o.worker ? () => reconciler.usage.sweepUploads() : undefined,
          apacheCheck: o.apache ? apacheCheck(apache, cfg.backup.alertWebhook) : undefined,
        }),
      );
    else if (drain) tasks.push(...startSchedule([{ name: 'commit-spool-sweep', cron: '*/5 * * * * *', run: drain }]));

    let url: string | undefined;
    if (o.api) {
      const ctx = makeContext(db, cfg, wake, {
        apart: !o.worker && !!cfg.apiUser ? { credentialsChanged: () => touchWake(l.wakeDir, 'credentials') } : undefined,
      });
      const app = createApp({ ctx, apacheHealthy: () => apache.healthy() });
      server = http.createServer(app);
      await new Promise<void>((resolve, reject) => {
        server!.once('error', reject);
        server!.listen(cfg.httpPort, cfg.httpHost, () => resolve());
      });
      const addr = server.address();
      url = `http://${cfg.httpHost}:${typeof addr === 'object' && addr ? addr.port : cfg.httpPort}`;
    }
    return { db, apache, reconciler, worker, server, url, stop };
  }
}

/** The API's half of the cross-process wake-up: touching the file is the signal; a failure only costs the poll's delay. */
/** Runs `fn` now, or once more right after the run in hand if asked again meanwhile; never two at a time. */
function coalesced(fn: () => Promise<void>): () => void {
  let running = false;
  let again = false;
  const go = (): void => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    fn()
      .catch((e) => log.error('credentials sync on wake-up', { error: String(e) }))
      .finally(() => {
        running = false;
        if (again) {
          again = false;
          go();
        }
      });
  };
  return go;
}

function touchWake(dir: string, name: 'wake' | 'credentials'): void {
  // A new time on the file the worker made for this user is the event its watch sees (inotify
  // IN_ATTRIB); this user may create nothing there.
  try {
    const now = new Date();
    fs.utimesSync(path.join(dir, name), now, now);
  } catch {
    /* no worker watching here: it polls */
  }
}

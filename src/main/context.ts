/** The use cases' context as a running host wires it: the credentials writer, the worker's wake-up, backups. */
import type { Ctx } from '../domain/context.js';
import { openDatabase, type DB } from '../store/db.js';
import { layout, type Config } from '../config.js';
import { syncUserCredential } from '../files/credentials/credentials.js';
import { backupPort } from './ports.js';
import { enqueue, JOB_CREDENTIALS } from '../store/jobs.js';

export function makeContext(db: DB, cfg: Config, wake: () => void = () => {}, o: { apart?: { credentialsChanged: () => void } } = {}): Ctx {
  const authDb = layout(cfg).authDb;
  return {
    db,
    cfg,
    fx: {
      // Apache reads this row on the next request: written before the use case returns. An API
      // running apart as its own user (KEELSON_API_USER) writes no file: it tells the worker,
      // which syncs at once, ahead of any queued job, and queues the sync as the fallback
      // (docs/production.md gives the time it takes).
      credentialChanged: o.apart
        ? () => {
            enqueue(db, JOB_CREDENTIALS, null);
            o.apart!.credentialsChanged();
          }
        : (user) => syncUserCredential(db, authDb, user),
      enqueued: wake,
    },
    backups: backupPort(db, cfg),
  };
}

/**
 * The context a one-shot command uses (`keelson token`, `keelson reconcile`): the store opened
 * from the configuration, credentials written directly, no worker to wake.
 */
export function openContext(cfg: Config): Ctx & { close(): void } {
  const db = openDatabase(layout(cfg).db, { shared: !!cfg.apiUser });
  return { ...makeContext(db, cfg), close: () => db.close() };
}

import type { DB } from '../store/db.js';

/** Database answers, a worker has beaten recently, Apache answers. */
export async function healthReport(db: DB, apacheHealthy?: () => Promise<boolean>) {
  let database = false;
  try {
    database = (db.prepare('SELECT 1 AS one').get() as { one: number }).one === 1;
  } catch {
    database = false;
  }
  const beat = database
    ? (db.prepare(`SELECT max(at) AS at FROM heartbeats WHERE component LIKE 'worker:%'`).get() as { at: number | null })
    : { at: null };
  const workerAgeMs = beat.at === null ? null : Date.now() - beat.at;
  const worker = workerAgeMs !== null && workerAgeMs < 15_000;
  const apache = apacheHealthy ? await apacheHealthy() : false;
  const pending = database
    ? (db.prepare(`SELECT count(*) AS n FROM jobs WHERE state IN ('pending','running')`).get() as { n: number }).n
    : null;
  return { ok: database && worker && apache, database, worker, workerAgeMs, apache, jobsQueued: pending };
}

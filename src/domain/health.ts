import type { DB } from '../store/db.js';
import { healthFacts } from '../store/jobs.js';

/** Database answers, a worker has beaten recently, Apache answers. */
export async function healthReport(db: DB, apacheHealthy?: () => Promise<boolean>) {
  const f = healthFacts(db);
  const workerAgeMs = f.workerBeatAt === null ? null : Date.now() - f.workerBeatAt;
  const worker = workerAgeMs !== null && workerAgeMs < 15_000;
  const apache = apacheHealthy ? await apacheHealthy() : false;
  return { ok: f.database && worker && apache, database: f.database, worker, workerAgeMs, apache, jobsQueued: f.jobsQueued };
}

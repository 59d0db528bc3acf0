import express from 'express';
import { z } from 'zod';
import type { DB } from '../../store/db.js';
import { getJob } from '../../store/jobs.js';
import { NotFoundError } from '../../errors.js';
import { requireAdmin } from '../auth.js';
import { jobView } from '../../backup/restore-job.js';

const jobParams = z.object({ id: z.coerce.number().int().positive('must be a job id') });

/** GET /jobs/:id (admin): a job's state, attempts, last error and times; for a restore its result or error. */
export function jobRoutes(deps: { db: DB }): express.Router {
  const r = express.Router();
  r.get('/jobs/:id', requireAdmin, (req, res) => {
    const { id } = jobParams.parse(req.params);
    const job = getJob(deps.db, id);
    if (!job) throw new NotFoundError(`no job #${id}`);
    res.json(jobView(deps.db, job));
  });
  return r;
}

import express from 'express';
import { z } from 'zod';
import type { Ctx } from '../domain/context.js';
import { job } from '../domain/backups.js';
import { actorOf, requireAdmin, type Authed } from '../http/auth.js';

const jobParams = z.object({ id: z.coerce.number().int().positive('must be a job id') });

/** GET /jobs/:id (admin): a job's state, attempts, last error and times; for a restore its result or error. */
export function jobRoutes(ctx: Ctx): express.Router {
  const r = express.Router();
  r.get('/jobs/:id', requireAdmin, (req: Authed, res) => {
    res.json(job(ctx, actorOf(req), jobParams.parse(req.params).id));
  });
  return r;
}

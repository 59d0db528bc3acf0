import express from 'express';
import { z } from 'zod';
import type { Ctx } from '../domain/context.js';
import * as backups from '../domain/backups.js';
import { actorOf, requireAdmin, requireProjectRole, type Authed } from '../http/auth.js';
import { slug, username } from '../http/schemas.js';

const listQuery = z.strictObject({ project: slug.optional() });
const runBody = z.strictObject({
  project: slug.optional(),
  /** Keelson's own database instead of a project. */
  control: z.boolean().optional(),
  kind: z.enum(['full', 'incremental']).default('incremental'),
});
const idParams = z.object({ id: z.coerce.number().int().positive('must be a backup id') });
const restoreBody = z.strictObject({
  to: slug.optional(),
  inPlace: z.boolean().default(false),
  owner: username.optional(),
});

/**
 * GET/POST /backups, POST /backups/:id/restore (admin); GET /projects/:slug/backups
 * (the project's owner).
 */
export function backupRoutes(ctx: Ctx): express.Router {
  const r = express.Router();

  r.get('/backups', requireAdmin, async (req: Authed, res) => {
    res.json(await backups.listBackups(ctx, actorOf(req), listQuery.parse(req.query).project));
  });
  r.get('/projects/:slug/backups', requireProjectRole(ctx, 'owner'), (req: Authed, res) => {
    res.json(backups.projectBackups(ctx, actorOf(req), slug.parse(req.params.slug)));
  });
  /** On demand: queues the backup for the worker. 202 with what was queued. */
  r.post('/backups', requireAdmin, (req: Authed, res) => {
    res.status(202).json(backups.runBackup(ctx, actorOf(req), runBody.parse(req.body ?? {})));
  });
  /** A restore runs as a job: 202 with the job to follow at `status`. */
  r.post('/backups/:id/restore', requireAdmin, (req: Authed, res) => {
    const { id } = idParams.parse(req.params);
    const { job, target, mode } = backups.restore(ctx, actorOf(req), id, restoreBody.parse(req.body ?? {}));
    const status = `/api/v1/jobs/${job.id}`;
    res
      .status(202)
      .location(status)
      .json({ job: { id: job.id, kind: job.kind, state: job.state }, status, backupId: id, target, mode });
  });
  return r;
}

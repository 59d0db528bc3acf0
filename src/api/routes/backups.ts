import express from 'express';
import { z } from 'zod';
import type { DB } from '../../store/db.js';
import type { Config } from '../../config.js';
import { enqueue } from '../../jobs/queue.js';
import { getProject, requireProject } from '../../store/model.js';
import { InputError, NotFoundError } from '../../errors.js';
import { actorLabel, requireAdmin, requireProjectRole, type Authed } from '../auth.js';
import { slug, username } from '../schemas.js';
import { BackupService } from '../../backup/engine.js';
import { backupView } from '../../backup/catalog.js';
import { lastGood, listBackups } from '../../store/backups.js';
import { enqueueRestore } from '../../backup/restore-job.js';
import { jobRoutes } from './jobs.js';
import { JOB_BACKUP, enqueueBackups } from '../../backup/schedule.js';

export interface BackupRouteDeps {
  db: DB;
  cfg: Config;
  onEnqueue?: () => void;
}

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

/** GET/POST /backups, POST /backups/:id/restore, GET /jobs/:id (admin); GET /projects/:slug/backups (the project's owner). */
export function backupRoutes(deps: BackupRouteDeps): express.Router {
  const { db, cfg } = deps;
  const svc = new BackupService(db, cfg, cfg.backup);
  const r = express.Router();

  const listing = (projectId?: number) => ({
    backups: listBackups(db, projectId).map(backupView),
    projects: lastGood(db, projectId),
    volume: svc.volume(),
  });

  r.get('/backups', requireAdmin, (req, res) => {
    const q = listQuery.parse(req.query);
    res.json(listing(q.project ? requireProject(db, q.project).id : undefined));
  });

  r.get('/projects/:slug/backups', requireProjectRole(db, 'owner'), (req, res) => {
    const p = requireProject(db, slug.parse(req.params.slug));
    const { volume, ...rest } = listing(p.id);
    void volume; // the volume is the operator's business
    res.json(rest);
  });

  /** On demand: queues the backup for the worker (it runs with the scheduled ones' rules). 202 with what was queued. */
  r.post('/backups', requireAdmin, (req: Authed, res) => {
    const b = runBody.parse(req.body ?? {});
    const actor = actorLabel(req);
    if (b.control && b.project) throw new InputError("control: back up either Keelson's database or a project, not both");
    let queued: (string | null)[];
    if (b.control) {
      enqueue(db, JOB_BACKUP, null, { kind: 'full', trigger: 'api', actor });
      queued = [null];
    } else if (b.project) {
      const p = getProject(db, b.project);
      if (!p) throw new NotFoundError(`no project ${b.project}`);
      if (p.state !== 'active' && p.state !== 'suspended')
        throw new InputError(`project: ${p.slug} is ${p.state}; only active or suspended projects are backed up`);
      enqueue(db, JOB_BACKUP, p.id, { kind: b.kind, trigger: 'api', actor });
      queued = [p.slug];
    } else {
      const n = enqueueBackups(db, b.kind, 'api', actor);
      queued = [`${n} projects`];
    }
    deps.onEnqueue?.();
    res.status(202).json({ queued, kind: b.control ? 'full' : b.kind });
  });

  /**
   * A restore runs as a job: everything that can be checked before it runs is checked here (same
   * errors as the restore would give), then it is queued; 202 with the job to follow at `status`.
   */
  r.post('/backups/:id/restore', requireAdmin, (req: Authed, res) => {
    const { id } = idParams.parse(req.params);
    const b = restoreBody.parse(req.body ?? {});
    const { job, plan } = enqueueRestore(svc, id, {
      inPlace: b.inPlace,
      to: b.to,
      owner: b.owner,
      admin: !!req.actor?.admin,
      actor: actorLabel(req),
    });
    deps.onEnqueue?.();
    const status = `/api/v1/jobs/${job.id}`;
    res
      .status(202)
      .location(status)
      .json({ job: { id: job.id, kind: job.kind, state: job.state }, status, backupId: id, target: plan.targetSlug, mode: plan.mode });
  });

  // GET /jobs/:id (admin): mounted here until src/api/app.ts settles (issue 10 re-layout).
  r.use(jobRoutes({ db }));

  return r;
}

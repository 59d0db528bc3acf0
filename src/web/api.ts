/**
 * The operator's side of the web UI as JSON, for the CLI (`keelson api`) and scripts: capacity
 * gate, waitlist and invites, suspension, disk samples. Admin only; the pages call the same
 * functions.
 */
import express from 'express';
import { z } from 'zod';
import type { DB } from '../store/db.js';
import type { Config } from '../config.js';
import * as model from '../store/model.js';
import * as s from '../api/schemas.js';
import * as web from './store.js';
import { actorLabel, requireAdmin, type Authed } from '../api/auth.js';

export function operatorRoutes(deps: { db: DB; cfg: Config; onEnqueue?: () => void }): express.Router {
  const { db, cfg } = deps;
  const r = express.Router();

  r.get('/capacity', requireAdmin, (_req, res) => {
    res.json(web.gate(db, cfg));
  });
  r.put('/capacity', requireAdmin, (req: Authed, res) => {
    web.setCapacity(db, actorLabel(req), s.capacityBody.parse(req.body));
    res.json(web.gate(db, cfg));
  });

  r.get('/waitlist', requireAdmin, (_req, res) => {
    res.json({
      waitlist: web.listWaitlist(db).map((w) => ({ email: w.email, createdAt: w.created_at, invitedAt: w.invited_at })),
      invites: web.listInvites(db).map((i) => ({
        email: i.email,
        createdAt: i.created_at,
        createdBy: i.created_by,
        usedAt: i.used_at,
        usedBy: i.used_by,
      })),
    });
  });
  r.post('/invites', requireAdmin, (req: Authed, res) => {
    const b = s.inviteBody.parse(req.body ?? {});
    // The code is shown once (here and in the log); only its hash is kept.
    res.status(201).json({ code: web.createInvite(db, actorLabel(req), b.email ?? null), email: b.email ?? null });
  });

  for (const act of ['suspend', 'resume'] as const) {
    r.post(`/projects/:slug/${act}`, requireAdmin, (req: Authed, res) => {
      const { slug } = s.slugParams.parse(req.params);
      const p = model.setSuspended(db, actorLabel(req), slug, act === 'suspend');
      deps.onEnqueue?.();
      res.json({ slug: p.slug, state: p.state });
    });
  }

  r.get('/disk-samples', requireAdmin, (req, res) => {
    const hours = z.coerce
      .number()
      .min(1)
      .max(720)
      .default(24)
      .parse(req.query.hours ?? undefined);
    res.json({
      samples: web.diskSamples(db, Date.now() - hours * 3_600_000).map((x) => ({
        at: new Date(x.at).toISOString(),
        volume: x.volume,
        path: x.path,
        totalBytes: x.total_bytes,
        freeBytes: x.free_bytes,
      })),
    });
  });
  return r;
}

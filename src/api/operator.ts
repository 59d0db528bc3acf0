/**
 * The operator's side of the web UI as JSON, for the CLI (`keelson api`) and scripts: capacity
 * gate, waitlist and invites, suspension, disk samples. Admin only; the pages call the same
 * domain functions.
 */
import express from 'express';
import { z } from 'zod';
import type { Ctx } from '../domain/context.js';
import * as capacity from '../domain/capacity.js';
import * as signin from '../domain/signin.js';
import { setSuspended } from '../domain/projects.js';
import * as s from '../http/schemas.js';
import { actorOf, requireAdmin, type Authed } from '../http/auth.js';

export function operatorRoutes(ctx: Ctx): express.Router {
  const r = express.Router();

  r.get('/capacity', requireAdmin, (_req, res) => {
    res.json(capacity.gate(ctx.db, ctx.cfg));
  });
  r.put('/capacity', requireAdmin, (req: Authed, res) => {
    res.json(capacity.setCapacity(ctx, actorOf(req), s.capacityBody.parse(req.body)));
  });

  r.get('/waitlist', requireAdmin, (_req, res) => {
    res.json({
      waitlist: signin.listWaitlist(ctx).map((w) => ({ email: w.email, createdAt: w.created_at, invitedAt: w.invited_at })),
      invites: signin.listInvites(ctx).map((i) => ({
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
    res.status(201).json({ code: signin.createInvite(ctx, actorOf(req), b.email ?? null), email: b.email ?? null });
  });

  for (const act of ['suspend', 'resume'] as const) {
    r.post(`/projects/:slug/${act}`, requireAdmin, (req: Authed, res) => {
      const { slug } = s.slugParams.parse(req.params);
      const p = setSuspended(ctx, actorOf(req), slug, act === 'suspend');
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
      samples: capacity.diskSamples(ctx.db, Date.now() - hours * 3_600_000).map((x) => ({
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

import express from 'express';
import { z } from 'zod';
import type { Ctx } from '../domain/context.js';
import * as perms from '../domain/permissions.js';
import { actorOf, requireProjectRole, type Authed } from '../http/auth.js';
import * as s from '../http/schemas.js';
import { ACCESSES, rulePathProblem, subjectProblem } from '../names.js';

const rulePath = z.string().superRefine((v, ctx) => {
  const p = rulePathProblem(v);
  if (p) ctx.addIssue({ code: 'custom', message: p });
});
const subject = z.string().superRefine((v, ctx) => {
  const p = subjectProblem(v);
  if (p) ctx.addIssue({ code: 'custom', message: p });
});
export const pathRulesBody = z.strictObject({
  rules: z.array(z.strictObject({ path: rulePath, subject, access: z.enum(ACCESSES) })).max(200, 'at most 200 rules'),
});
const versionParams = z.object({ slug: s.slug, version: z.coerce.number().int().min(1) });

/**
 * Path rules, permission history and revert, publish status. Every change bumps the project's
 * permission version and enqueues one coalesced publish.
 */
export function authzRoutes(ctx: Ctx): express.Router {
  const r = express.Router();

  r.get('/projects/:slug/path-rules', requireProjectRole(ctx, 'viewer'), (req: Authed, res) => {
    const { slug } = s.slugParams.parse(req.params);
    res.json({ rules: perms.pathRules(ctx, req.actor, slug) });
  });
  r.put('/projects/:slug/path-rules', requireProjectRole(ctx, 'owner'), (req: Authed, res) => {
    const { slug } = s.slugParams.parse(req.params);
    const { rules } = pathRulesBody.parse(req.body);
    res.json(perms.setPathRules(ctx, actorOf(req), slug, rules));
  });
  r.get('/projects/:slug/permission-history', requireProjectRole(ctx, 'owner'), (req: Authed, res) => {
    const { slug } = s.slugParams.parse(req.params);
    const limit = z.coerce
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(100)
      .parse(req.query.limit ?? undefined);
    res.json({ versions: perms.permissionHistory(ctx, actorOf(req), slug, limit) });
  });
  r.post('/projects/:slug/permission-history/:version/revert', requireProjectRole(ctx, 'owner'), (req: Authed, res) => {
    const { slug, version } = versionParams.parse(req.params);
    const v = perms.revertPermissions(ctx, actorOf(req), slug, version);
    res.status(201).json({ slug, revertedTo: version, version: v });
  });
  // Where publishing stands: the database's version, the one on disk, and the recent publishes.
  r.get('/projects/:slug/authz', requireProjectRole(ctx, 'owner'), (req: Authed, res) => {
    const { slug } = s.slugParams.parse(req.params);
    res.json(perms.authzStatus(ctx, actorOf(req), slug));
  });
  return r;
}

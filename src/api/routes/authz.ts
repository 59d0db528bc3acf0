import express from 'express';
import { z } from 'zod';
import { layout } from '../../config.js';
import type { AppDeps } from '../app.js';
import { actorLabel, requireAdmin, requireProjectRole, type Authed } from '../auth.js';
import * as s from '../schemas.js';
import * as model from '../../store/model.js';
import * as perms from '../../store/permissions.js';
import { ACCESSES, rulePathProblem, subjectProblem } from '../../names.js';
import { syncUserCredential } from '../../files/credentials/credentials.js';

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
const userPatchBody = z.strictObject({ disabled: z.boolean() });

/**
 * Issue 3's API: path rules, permission history and revert, publish status, and disabling users.
 * Every change bumps the project's permission version and enqueues one coalesced publish.
 */
export function authzRoutes(deps: AppDeps): express.Router {
  const { db } = deps;
  const r = express.Router();
  const changed = () => deps.onEnqueue?.();
  const authDb = layout(deps.cfg).authDb;

  r.get('/projects/:slug/path-rules', requireProjectRole(db, 'viewer'), (req, res) => {
    const { slug } = s.slugParams.parse(req.params);
    const p = model.requireProject(db, slug);
    res.json({ rules: perms.pathRules(db, p.id) });
  });
  r.put('/projects/:slug/path-rules', requireProjectRole(db, 'owner'), (req: Authed, res) => {
    const { slug } = s.slugParams.parse(req.params);
    const { rules } = pathRulesBody.parse(req.body);
    const version = perms.setPathRules(db, actorLabel(req), slug, rules);
    changed();
    const p = model.requireProject(db, slug);
    res.json({ rules: perms.pathRules(db, p.id), version });
  });

  r.get('/projects/:slug/permission-history', requireProjectRole(db, 'owner'), (req, res) => {
    const { slug } = s.slugParams.parse(req.params);
    const limit = z.coerce
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(100)
      .parse(req.query.limit ?? undefined);
    res.json({ versions: perms.permissionHistory(db, slug, limit) });
  });
  r.post('/projects/:slug/permission-history/:version/revert', requireProjectRole(db, 'owner'), (req: Authed, res) => {
    const { slug, version } = versionParams.parse(req.params);
    const v = perms.revertPermissions(db, actorLabel(req), slug, version);
    changed();
    res.status(201).json({ slug, revertedTo: version, version: v });
  });

  // Where publishing stands: the database's version, the one on disk, and the recent publishes.
  r.get('/projects/:slug/authz', requireProjectRole(db, 'owner'), (req, res) => {
    const { slug } = s.slugParams.parse(req.params);
    const p = db.prepare(`SELECT * FROM projects WHERE slug = ? AND state <> 'deleted'`).get(slug) as perms.VersionedProject;
    res.json({
      version: p.perm_version,
      published: p.published_version === null ? null : { version: p.published_version, checksum: p.published_checksum, at: p.published_at },
      inSync: p.published_version === p.perm_version,
      lastError: p.last_error,
      publishes: perms.publishes(db, p.id),
    });
  });

  r.patch('/users/:name', requireAdmin, (req: Authed, res) => {
    const { name } = s.userParams.parse(req.params);
    const { disabled } = userPatchBody.parse(req.body);
    perms.setUserDisabled(db, actorLabel(req), name, disabled);
    // Effective on the next request: Apache reads this row, no file to regenerate.
    syncUserCredential(db, authDb, name);
    changed();
    const u = model.requireUser(db, name);
    res.json({ name: u.name, disabled: !!u.disabled_at });
  });
  return r;
}

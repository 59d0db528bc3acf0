/**
 * Projects: operators see and change everything; a signed-in user sees their own projects (and
 * public ones by name), creates projects through the capacity gate, and manages them as owner.
 */
import express from 'express';
import type { Ctx } from '../domain/context.js';
import * as projects from '../domain/projects.js';
import * as s from '../http/schemas.js';
import { actorOf, requireProjectRole, requireSignedIn, type Authed } from '../http/auth.js';
import { projectView } from './views.js';
import { setStorageLimit } from '../domain/storage.js';

export function projectRoutes(ctx: Ctx): express.Router {
  const r = express.Router();
  const view = (p: projects.ProjectRow, actor?: Authed['actor']) => projectView(ctx, p, actor);

  r.get('/projects', requireSignedIn, (req: Authed, res) => {
    res.json({ projects: projects.listProjects(ctx, actorOf(req)).map((p) => view(p, req.actor)) });
  });
  r.post('/projects', requireSignedIn, (req: Authed, res) => {
    const a = actorOf(req);
    // Admin tokens name the owner; a signed-in user creates their own (an operator may name another).
    const b = a.kind === 'token' ? s.createProjectBody.parse(req.body) : s.ownProjectBody.parse(req.body);
    const p = projects.createProject(ctx, a, b);
    res.status(201).location(`/api/v1/projects/${p.slug}`).json(view(p));
  });
  r.get('/projects/:slug', requireProjectRole(ctx, 'viewer'), (req: Authed, res) => {
    const { slug } = s.slugParams.parse(req.params);
    res.json(view(projects.projectFor(ctx, req.actor, slug, 'viewer'), req.actor));
  });
  r.patch('/projects/:slug', requireProjectRole(ctx, 'owner'), (req: Authed, res) => {
    const { slug } = s.slugParams.parse(req.params);
    const { storageLimitBytes, ...changes } = s.patchProjectBody.parse(req.body);
    const a = actorOf(req);
    // The limit first: an owner's PATCH that includes it is refused whole (403), nothing changed.
    if (storageLimitBytes !== undefined) setStorageLimit(ctx, a, slug, storageLimitBytes);
    const p = changes.title !== undefined || changes.visibility !== undefined ? projects.updateProject(ctx, a, slug, changes) : undefined;
    res.json(view(p ?? projects.projectFor(ctx, req.actor, slug, 'viewer')));
  });
  r.delete('/projects/:slug', requireProjectRole(ctx, 'owner'), (req: Authed, res) => {
    const { slug } = s.slugParams.parse(req.params);
    projects.deleteProject(ctx, actorOf(req), slug);
    res.status(202).json({ slug, state: 'deleting' });
  });
  r.put('/projects/:slug/members/:user', requireProjectRole(ctx, 'owner'), (req: Authed, res) => {
    const { slug, user } = s.memberParams.parse(req.params);
    const { role } = s.memberBody.parse(req.body);
    projects.setMember(ctx, actorOf(req), slug, user, role);
    // The project as it is now (an owner who stepped down to nothing may no longer see it).
    res.json(view(projects.projectBySlug(ctx, slug)!));
  });
  r.delete('/projects/:slug/members/:user', requireProjectRole(ctx, 'owner'), (req: Authed, res) => {
    const { slug, user } = s.memberParams.parse(req.params);
    projects.removeMember(ctx, actorOf(req), slug, user);
    res.json(view(projects.projectBySlug(ctx, slug)!));
  });
  return r;
}

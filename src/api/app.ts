import express from 'express';
import path from 'node:path';
import type { DB } from '../store/db.js';
import type { Config } from '../config.js';
import { errorHandler, notFound } from './errors.js';
import * as model from '../store/model.js';
import * as s from './schemas.js';
import { bearerToken, requireAdmin, actorLabel, type Authed } from './auth.js';
import { PROJECT_ROOT } from '../paths.js';
import { healthReport } from './health.js';
import { authzRoutes } from './routes/authz.js';
import { syncUserCredential } from '../authz/credentials.js';
import { layout } from '../config.js';

export interface AppDeps {
  db: DB;
  cfg: Config;
  /** Called after a change enqueued work, so an in-process worker starts at once. */
  onEnqueue?: () => void;
  apacheHealthy?: () => Promise<boolean>;
}

function projectView(deps: AppDeps, p: model.ProjectRow) {
  return {
    slug: p.slug,
    title: p.title,
    visibility: p.visibility,
    state: p.state,
    svnUrl: `${deps.cfg.publicUrl}/svn/${p.slug}`,
    tracUrl: `${deps.cfg.publicUrl}/trac/${p.slug}`,
    members: model.members(deps.db, p.id),
    lastError: p.last_error,
    createdAt: p.created_at,
  };
}

function userView(u: model.UserRow) {
  return { name: u.name, email: u.email, admin: !!u.is_admin, createdAt: u.created_at, disabled: !!u.disabled_at };
}

export function createApp(deps: AppDeps): express.Express {
  const { db } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  app.use(express.json({ limit: '64kb' }));
  const admin = requireAdmin;
  const changed = () => deps.onEnqueue?.();
  const actor = actorLabel;

  const api = express.Router();
  api.use(bearerToken(db));
  api.get('/health', async (_req, res) => {
    const h = await healthReport(db, deps.apacheHealthy);
    res.status(h.ok ? 200 : 503).json(h);
  });

  api.get('/users', admin, (_req, res) => {
    res.json({ users: model.listUsers(db).map(userView) });
  });
  api.post('/users', admin, (req: Authed, res) => {
    const b = s.createUserBody.parse(req.body);
    const { user, accessToken } = model.createUser(db, actor(req), {
      name: b.name,
      email: b.email,
      password: b.password,
      isAdmin: b.admin,
    });
    syncUserCredential(db, layout(deps.cfg).authDb, user.name);
    changed();
    // The access token is what Subversion and Trac take as the password; it is shown only now.
    res.status(201).json({ ...userView(user), accessToken });
  });
  api.post('/users/:name/access-token', admin, (req: Authed, res) => {
    const { name } = s.userParams.parse(req.params);
    const accessToken = model.rotateAccessToken(db, actor(req), name);
    // The old token stops working on the next request.
    syncUserCredential(db, layout(deps.cfg).authDb, name);
    changed();
    res.status(201).json({ name, accessToken });
  });

  api.get('/projects', admin, (_req, res) => {
    res.json({ projects: model.listProjects(db).map((p) => projectView(deps, p)) });
  });
  api.post('/projects', admin, (req: Authed, res) => {
    const b = s.createProjectBody.parse(req.body);
    const p = model.createProject(db, actor(req), { slug: b.slug, title: b.title ?? b.slug, visibility: b.visibility, owner: b.owner });
    changed();
    res.status(201).location(`/api/v1/projects/${p.slug}`).json(projectView(deps, p));
  });
  api.get('/projects/:slug', admin, (req, res) => {
    const { slug } = s.slugParams.parse(req.params);
    res.json(projectView(deps, model.requireProject(db, slug)));
  });
  api.patch('/projects/:slug', admin, (req: Authed, res) => {
    const { slug } = s.slugParams.parse(req.params);
    const p = model.updateProject(db, actor(req), slug, s.patchProjectBody.parse(req.body));
    changed();
    res.json(projectView(deps, p));
  });
  api.delete('/projects/:slug', admin, (req: Authed, res) => {
    const { slug } = s.slugParams.parse(req.params);
    model.deleteProject(db, actor(req), slug);
    changed();
    res.status(202).json({ slug, state: 'deleting' });
  });
  api.put('/projects/:slug/members/:user', admin, (req: Authed, res) => {
    const { slug, user } = s.memberParams.parse(req.params);
    const { role } = s.memberBody.parse(req.body);
    model.setMember(db, actor(req), slug, user, role);
    changed();
    res.json(projectView(deps, model.requireProject(db, slug)));
  });
  api.delete('/projects/:slug/members/:user', admin, (req: Authed, res) => {
    const { slug, user } = s.memberParams.parse(req.params);
    model.removeMember(db, actor(req), slug, user);
    changed();
    res.json(projectView(deps, model.requireProject(db, slug)));
  });

  api.use(authzRoutes(deps));
  app.use('/api/v1', api);
  app.use('/api', notFound);
  app.use(express.static(path.join(PROJECT_ROOT, 'web'), { index: 'index.html', maxAge: '1h' }));
  app.use(notFound);
  app.use(errorHandler);
  return app;
}

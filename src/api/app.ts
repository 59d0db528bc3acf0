import express from 'express';
import path from 'node:path';
import type { DB } from '../store/db.js';
import type { Config } from '../config.js';
import { errorHandler, notFound } from './errors.js';
import * as model from '../store/model.js';
import * as s from './schemas.js';
import {
  bearerToken,
  requireAdmin,
  requireSignedIn,
  requireProjectRole,
  requireCsrf,
  sessionAuth,
  startSession,
  endSession,
  actorLabel,
  type Authed,
  type WebRequest,
} from './auth.js';
import { webRouter, webErrors } from '../web/routes.js';
import { addressOf, countSignupAttempt, login, signup } from '../web/flows.js';
import { createOwnProject } from '../web/store.js';
import { operatorRoutes } from '../web/api.js';
import { NotAllowedError } from '../errors.js';
import { PROJECT_ROOT } from '../paths.js';
import { healthReport } from './health.js';
import { backupRoutes } from './routes/backups.js';
import { authzRoutes } from './routes/authz.js';
import { syncUserCredential } from '../files/credentials/credentials.js';
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
  app.set('trust proxy', deps.cfg.trustProxy);
  app.use(express.json({ limit: '64kb' }));
  const admin = requireAdmin;
  const changed = () => deps.onEnqueue?.();
  const actor = actorLabel;

  const api = express.Router();
  api.use(bearerToken(db));
  // Browser sessions (the web UI calls this API too): a session cookie makes the actor the user;
  // then every state-changing call from a browser must carry the CSRF token (bearer calls need none).
  api.use(sessionAuth(db, deps.cfg));
  api.use(requireCsrf({ always: (req) => req.path === '/signup' || req.path === '/session' }));
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
  api.post('/users/:name/access-token', requireSignedIn, (req: Authed, res) => {
    const { name } = s.userParams.parse(req.params);
    if (!req.actor!.admin && req.actor!.user !== name) throw new NotAllowedError('you can only rotate your own access token');
    const accessToken = model.rotateAccessToken(db, actor(req), name);
    // The old token stops working on the next request.
    syncUserCredential(db, layout(deps.cfg).authDb, name);
    changed();
    res.status(201).json({ name, accessToken });
  });

  // Sessions for the web UI and scripts that sign in as a user.
  api.get('/session', (req: WebRequest, res) => {
    const a = req.actor;
    res.json({ user: a?.kind === 'user' ? { name: a.user, admin: a.admin } : null, csrfToken: req.csrfToken });
  });
  api.post('/session', async (req: WebRequest, res) => {
    const b = s.loginBody.parse(req.body);
    const user = await login(db, deps.cfg, b.username, b.password, addressOf(req));
    if (req.webCookies?.keelson_session) endSession(db, deps.cfg, req, res);
    startSession(db, deps.cfg, req, res, user.id);
    res.status(201).json({ user: { name: user.name, admin: !!user.is_admin }, csrfToken: req.csrfToken });
  });
  api.delete('/session', (req: WebRequest, res) => {
    endSession(db, deps.cfg, req, res);
    res.status(204).end();
  });
  api.post('/signup', (req: WebRequest, res) => {
    countSignupAttempt(db, deps.cfg, addressOf(req));
    const b = s.signupBody.parse(req.body);
    const out = signup(db, deps.cfg, b, addressOf(req));
    changed();
    startSession(db, deps.cfg, req, res, out.user.id);
    res.status(201).json({
      csrfToken: req.csrfToken,
      user: userView(out.user),
      accessToken: out.accessToken,
      project: out.project ? projectView(deps, out.project) : null,
    });
  });

  // Projects: admins see and change everything; a signed-in user sees their own projects (and
  // public ones by name), creates projects through the capacity gate, and manages them as owner.
  api.get('/projects', requireSignedIn, (req: Authed, res) => {
    const a = req.actor!;
    res.json({ projects: model.listProjects(db, a.admin ? undefined : (a.user ?? '')).map((p) => projectView(deps, p)) });
  });
  api.post('/projects', requireSignedIn, (req: Authed, res) => {
    const a = req.actor!;
    let p: model.ProjectRow;
    if (a.kind === 'token') {
      const b = s.createProjectBody.parse(req.body);
      p = model.createProject(db, actor(req), { slug: b.slug, title: b.title ?? b.slug, visibility: b.visibility, owner: b.owner });
    } else {
      const b = s.ownProjectBody.parse(req.body);
      if (b.owner !== undefined && b.owner !== a.user && !a.admin) throw new NotAllowedError('owner: you can only create projects you own');
      p = createOwnProject(db, deps.cfg, { user: b.owner ?? a.user!, admin: a.admin }, b);
    }
    changed();
    res.status(201).location(`/api/v1/projects/${p.slug}`).json(projectView(deps, p));
  });
  api.get('/projects/:slug', requireProjectRole(db, 'viewer'), (req, res) => {
    const { slug } = s.slugParams.parse(req.params);
    res.json(projectView(deps, model.requireProject(db, slug)));
  });
  api.patch('/projects/:slug', requireProjectRole(db, 'owner'), (req: Authed, res) => {
    const { slug } = s.slugParams.parse(req.params);
    const p = model.updateProject(db, actor(req), slug, s.patchProjectBody.parse(req.body));
    changed();
    res.json(projectView(deps, p));
  });
  api.delete('/projects/:slug', requireProjectRole(db, 'owner'), (req: Authed, res) => {
    const { slug } = s.slugParams.parse(req.params);
    model.deleteProject(db, actor(req), slug);
    changed();
    res.status(202).json({ slug, state: 'deleting' });
  });
  api.put('/projects/:slug/members/:user', requireProjectRole(db, 'owner'), (req: Authed, res) => {
    const { slug, user } = s.memberParams.parse(req.params);
    const { role } = s.memberBody.parse(req.body);
    model.setMember(db, actor(req), slug, user, role);
    changed();
    res.json(projectView(deps, model.requireProject(db, slug)));
  });
  api.delete('/projects/:slug/members/:user', requireProjectRole(db, 'owner'), (req: Authed, res) => {
    const { slug, user } = s.memberParams.parse(req.params);
    model.removeMember(db, actor(req), slug, user);
    changed();
    res.json(projectView(deps, model.requireProject(db, slug)));
  });

  api.use(operatorRoutes(deps));
  api.use(authzRoutes(deps));
  api.use(backupRoutes(deps));
  app.use('/api/v1', api);
  app.use('/api', notFound);
  app.use(express.static(path.join(PROJECT_ROOT, 'web'), { index: false, maxAge: '1h' }));
  // The web UI's pages (server-rendered forms; see src/web/routes.ts).
  app.use(webRouter({ db, cfg: deps.cfg, onEnqueue: deps.onEnqueue }));
  app.use(notFound);
  app.use(webErrors({ db, cfg: deps.cfg }));
  app.use(errorHandler);
  return app;
}

/**
 * The one Express app, assembled: the JSON API (src/api/) under /api/v1 and the web UI's pages
 * (web/), sibling adapters over the same domain calls, with what they share from src/http/
 * (authentication, sessions, CSRF and the one error middleware).
 */
import express from 'express';
import path from 'node:path';
import type { Ctx } from '../domain/context.js';
import { healthReport } from '../domain/health.js';
import { PROJECT_ROOT } from '../paths.js';
import { errorHandler, notFound } from '../http/errors.js';
import { bearerToken, requireCsrf, sessionAuth } from '../http/auth.js';
import { accessLog } from '../http/access-log.js';
import { peopleRoutes } from '../api/people.js';
import { projectRoutes } from '../api/projects.js';
import { operatorRoutes } from '../api/operator.js';
import { authzRoutes } from '../api/authz.js';
import { backupRoutes } from '../api/backups.js';
import { jobRoutes } from '../api/jobs.js';
import { webRouter, webErrors } from '../../web/routes.js';

export interface AppDeps {
  ctx: Ctx;
  apacheHealthy?: () => Promise<boolean>;
}

export function createApp(deps: AppDeps): express.Express {
  const { ctx } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', ctx.cfg.trustProxy);
  app.use(accessLog());
  app.use(express.json({ limit: '64kb' }));

  const api = express.Router();
  api.use(bearerToken(ctx));
  // Browser sessions (the web UI calls this API too): a session cookie makes the actor the user;
  // then every state-changing call from a browser must carry the CSRF token (bearer calls need none).
  api.use(sessionAuth(ctx));
  api.use(requireCsrf({ always: (req) => req.path === '/signup' || req.path === '/session' }));
  api.get('/health', async (_req, res) => {
    const h = await healthReport(ctx.db, deps.apacheHealthy);
    res.status(h.ok ? 200 : 503).json(h);
  });
  api.use(peopleRoutes(ctx));
  api.use(projectRoutes(ctx));
  api.use(operatorRoutes(ctx));
  api.use(authzRoutes(ctx));
  api.use(backupRoutes(ctx));
  api.use(jobRoutes(ctx));
  app.use('/api/v1', api);
  app.use('/api', notFound);
  // Only web/static/ is served as files: web/ also holds the pages' sources.
  app.use('/static', express.static(path.join(PROJECT_ROOT, 'web', 'static'), { index: false, maxAge: '1h' }));
  // The web UI's pages (server-rendered forms; see web/).
  app.use(webRouter(ctx));
  app.use(notFound);
  app.use(webErrors(ctx));
  app.use(errorHandler);
  return app;
}

/**
 * The web UI: server-rendered pages and plain HTML forms (they work without JavaScript; web/static/app.js
 * only adds copy buttons, live project state, and the panels that read the backups and path-rules
 * APIs). Every form is parsed with the same zod schemas as the JSON API and calls the same domain
 * functions; an invalid form is rendered again with the message next to the field. One file per
 * page group; the shared machinery is in kit.ts.
 */
import express, { type ErrorRequestHandler } from 'express';
import type { Ctx } from '../src/domain/context.js';
import { sessionAuth } from '../src/http/auth.js';
import { DomainError, ThrottledError } from '../src/errors.js';
import { log } from '../src/sys/log.js';
import { html, page } from './html.js';
import { makeKit, type Req } from './kit.js';
import { signinPages } from './signin.js';
import { dashboardPages } from './dashboard.js';
import { accountPages } from './account.js';
import { projectPages } from './project.js';
import { hostPages } from './host.js';
import { invitePages } from './invites.js';
import { backupPages } from './backups.js';

export { formObject } from './kit.js';

export function webRouter(ctx: Ctx): express.Router {
  const r = express.Router();
  r.use(express.urlencoded({ extended: false, limit: '32kb', parameterLimit: 100 }));
  r.use(sessionAuth(ctx));
  r.use((_req, res, next) => {
    res.set('cache-control', 'no-store');
    res.set('x-frame-options', 'DENY');
    res.set(
      'content-security-policy',
      "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
    );
    res.set('referrer-policy', 'same-origin');
    next();
  });
  const k = makeKit(ctx);
  dashboardPages(k, r);
  projectPages(k, r);
  signinPages(k, r);
  accountPages(k, r);
  hostPages(k, r);
  invitePages(k, r);
  backupPages(k, r);
  return r;
}

/** HTML answers for errors the pages did not handle themselves (CSRF refusals, malformed bodies). */
export function webErrors(_ctx: Ctx): ErrorRequestHandler {
  return (err, req: Req, res, next) => {
    if (res.headersSent || req.path.startsWith('/api/')) return next(err);
    const status =
      err instanceof DomainError
        ? err.status
        : typeof err?.status === 'number' && err.status >= 400 && err.status < 500
          ? (err.status as number)
          : 500;
    if (status === 500) log.error('page failed', { method: req.method, path: req.path, error: String(err?.stack ?? err) });
    if (err instanceof ThrottledError) res.set('retry-after', String(err.retryAfter));
    const message = status === 500 ? 'Something went wrong on our side; the error is in the server log.' : String(err?.message ?? err);
    const user = req.actor?.kind === 'user' && req.actor.user ? { name: req.actor.user, admin: req.actor.admin } : undefined;
    res
      .status(status)
      .type('html')
      .send(
        page({
          title: status === 403 ? 'Refused' : 'Error',
          user,
          csrf: req.csrfToken ?? '',
          body: html`<h1>${status === 403 ? 'Refused' : 'Error'}</h1>
            <p class="error banner" role="alert">${message}</p>
            <p><a href="/">Back to Keelson</a></p>`,
        }),
      );
  };
}

/**
 * The web UI: server-rendered pages and plain HTML forms (they work without JavaScript; web/static/app.js
 * only adds copy buttons, live project state, and the panels that read the backups and path-rules
 * APIs). Every form is parsed with the same zod schemas as the JSON API and calls the same domain
 * functions; an invalid form is rendered again with the message next to the field.
 */
import express, { type ErrorRequestHandler, type RequestHandler, type Response } from 'express';
import { ZodError, type ZodType } from 'zod';
import type { DB } from '../store/db.js';
import type { Config } from '../config.js';
import * as model from '../store/model.js';
import * as s from '../api/schemas.js';
import * as web from './store.js';
import { roleIn, requireCsrf, csrfValid, sessionAuth, startSession, endSession, type WebRequest } from '../api/auth.js';
import { DomainError } from '../errors.js';
import { setUserDisabled } from '../store/permissions.js';
import { syncUserCredential } from '../files/credentials/credentials.js';
import { layout } from '../config.js';
import { log } from '../sys/log.js';
import { ROLES, SLUG_RULE, USER_RULE, VISIBILITIES, type Role } from '../names.js';
import { addressOf, countSignupAttempt, login, rotateToken, signup, ThrottledError } from './flows.js';
import { emptyForm, field, formError, formMeta, html, page, raw, select, type FormState, type Html, type PageUser } from './html.js';
import { fmtBytes } from '../sys/bytes.js';
import { diskChart } from './chart.js';

export interface WebDeps {
  db: DB;
  cfg: Config;
  onEnqueue?: () => void;
}

type Req = WebRequest;
const PAGE_SIZE = 20;
const MEMBERS_PAGE = 40;

/** Form fields as an object; dotted names (`project.slug`) become nested objects; blanks are left out. */
export function formObject(body: unknown, keep: string[] = []): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries((body ?? {}) as Record<string, unknown>)) {
    if (k.startsWith('_') || typeof v !== 'string') continue;
    if (v === '' && !keep.includes(k)) continue;
    const parts = k.split('.');
    if (parts.some((p) => p === '__proto__' || p === 'constructor' || p === 'prototype')) continue;
    let o = out;
    for (const p of parts.slice(0, -1)) o = (o[p] ??= {}) as Record<string, unknown>;
    o[parts[parts.length - 1]!] = v;
  }
  return out;
}

/** What the user typed, for redisplay (never passwords or tokens). */
function typed(body: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries((body ?? {}) as Record<string, unknown>))
    if (typeof v === 'string' && !k.startsWith('_') && !/password|current|draft/.test(k)) out[k] = v.slice(0, 500);
  return out;
}

function zodForm(e: ZodError, values: Record<string, string>): FormState {
  const errors: Record<string, string> = {};
  for (const i of e.issues) {
    const k = i.path.length ? i.path.join('.') : '_';
    errors[k] ??= i.message;
  }
  const f: FormState = { values, errors };
  if (errors._) f.error = errors._;
  return f;
}

/** Domain errors name their field as a prefix ("username: ... is taken"); put the message there. */
function domainForm(e: DomainError, values: Record<string, string>, fields: string[]): FormState {
  const m = e.message.match(/^([a-zA-Z.]+): (.*)$/s);
  if (m && fields.includes(m[1]!)) return { values, errors: { [m[1]!]: m[2]! } };
  return { values, errors: {}, error: e.message };
}

function parse<T>(
  schema: ZodType<T>,
  obj: unknown,
  values: Record<string, string>,
): { ok: true; data: T } | { ok: false; form: FormState } {
  const r = schema.safeParse(obj);
  return r.success ? { ok: true, data: r.data } : { ok: false, form: zodForm(r.error, values) };
}

/** A local path to go back to after sign-in; anything that could leave the site ("//host", "/\\host") is dropped. */
function safeNext(n: unknown): string | undefined {
  return typeof n === 'string' && /^\/(?![/\\])[\x21-\x7e]*$/.test(n) && !n.includes('\\') && !n.startsWith('/login') ? n : undefined;
}

export function webRouter(deps: WebDeps): express.Router {
  const { db, cfg } = deps;
  const changed = () => deps.onEnqueue?.();
  const r = express.Router();
  r.use(express.urlencoded({ extended: false, limit: '32kb', parameterLimit: 100 }));
  r.use(sessionAuth(db, cfg));
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

  const me = (req: Req): PageUser | undefined =>
    req.actor?.kind === 'user' && req.actor.user ? { name: req.actor.user, admin: req.actor.admin } : undefined;
  const send = (res: Response, status: number, body: string): void => {
    res.status(status).type('html').send(body);
  };
  // Only a page that answers a form post replaces the address bar (with the page's own address).
  const render = (
    req: Req,
    res: Response,
    status: number,
    o: { title: string; body: Html; notice?: string; url?: string; current?: string },
  ) => send(res, status, page({ ...o, url: req.method === 'POST' ? o.url : undefined, user: me(req), csrf: req.csrfToken! }));

  /** Drafts saved at sign-in after an expired session: the fields typed on `path`, shown once. */
  function takeDraft(req: Req): Record<string, string> | undefined {
    const d = req.session?.draft;
    if (!d || !req.sessionToken) return undefined;
    const parsed = JSON.parse(d) as { path: string; fields: Record<string, string> };
    if (parsed.path !== req.path) return undefined;
    web.setDraft(db, req.sessionToken, null);
    return parsed.fields;
  }
  const DRAFT_NOTICE = 'Your session had expired. What you typed is filled in below: check it and submit again.';

  // CSRF on every state-changing request, signed in or not (login CSRF too).
  const csrf = requireCsrf();

  /** Pages for signed-in users. A form posted after the session expired goes through sign-in and comes back filled in. */
  const signedIn: RequestHandler = (req: Req, res, next) => {
    if (me(req)) return next();
    const pageOf = safeNext(req.body?._page) ?? '/dashboard';
    if (req.method === 'POST' && req.sessionExpired && csrfValid(req)) {
      return render(req, res, 401, {
        title: 'Sign in',
        notice: 'Your session has expired. Sign in again; what you typed is kept.',
        body: loginForm(req, emptyForm(), pageOf, JSON.stringify(typed(req.body))),
      });
    }
    const next_ = req.method === 'GET' ? req.originalUrl : pageOf;
    res.redirect(303, `/login?next=${encodeURIComponent(next_)}${req.sessionExpired ? '&expired=1' : ''}`);
  };
  const adminOnly: RequestHandler = (req: Req, res, next) => {
    if (me(req)?.admin) return next();
    render(req, res, 403, {
      title: 'Not allowed',
      body: html`<h1>Not allowed</h1>
        <p>The operator pages are for admin accounts.</p>`,
    });
  };

  // ---------- sign in / out ----------

  function loginForm(req: Req, f: FormState, next?: string, draft?: string): Html {
    return html`<h1>Sign in</h1>
      <form method="post" action="/login" class="card" novalidate>
        ${formMeta(req.csrfToken!, '/login')}
        ${next ? html`<input type="hidden" name="next" value="${next}" />` : ''}${draft ? html`<input type="hidden" name="draft" value="${draft}" />` : ''}
        ${formError(f)} ${field(f, 'login-username', 'username', 'User name', { autocomplete: 'username', required: true })}
        ${field(f, 'login-password', 'password', 'Password', { type: 'password', autocomplete: 'current-password', required: true })}
        <button type="submit">Sign in</button>
      </form>
      <p>No account yet? <a href="/signup">Sign up</a>.</p>`;
  }

  r.get('/login', (req: Req, res) => {
    if (me(req)) return res.redirect(303, safeNext(req.query.next) ?? '/dashboard');
    const notice = req.query.expired ? 'Your session has expired; sign in again.' : req.query.bye ? 'You are signed out.' : undefined;
    render(req, res, 200, { title: 'Sign in', notice, current: '/login', body: loginForm(req, emptyForm(), safeNext(req.query.next)) });
  });

  r.post('/login', csrf, async (req: Req, res) => {
    const b = req.body as Record<string, unknown>;
    const next = safeNext(b.next);
    const draft = typeof b.draft === 'string' && b.draft.length < 8000 ? b.draft : undefined;
    const values = { username: typeof b.username === 'string' ? b.username.slice(0, 200) : '' };
    const p = s.loginBody.safeParse({ username: b.username ?? '', password: b.password ?? '' });
    if (!p.success)
      return render(req, res, 400, {
        title: 'Sign in',
        body: loginForm(req, { values, errors: {}, error: 'Enter your user name and password.' }, next, draft),
      });
    try {
      const user = await login(db, cfg, p.data.username, p.data.password, addressOf(req));
      if (req.webCookies?.keelson_session) endSession(db, cfg, req, res);
      const token = startSession(db, cfg, req, res, user.id);
      if (draft && next) {
        try {
          const fields = JSON.parse(draft) as unknown;
          if (fields && typeof fields === 'object' && Object.values(fields).every((v) => typeof v === 'string'))
            web.setDraft(db, token, { path: next.split('?')[0]!, fields: fields as Record<string, string> });
        } catch {
          // A malformed draft is dropped; the sign-in itself succeeded.
        }
      }
      res.redirect(303, next ?? '/dashboard');
    } catch (e) {
      if (!(e instanceof DomainError)) throw e;
      if (e instanceof ThrottledError) res.set('retry-after', String(e.retryAfter));
      render(req, res, e.status, { title: 'Sign in', body: loginForm(req, { values, errors: {}, error: e.message }, next, draft) });
    }
  });

  r.post('/logout', csrf, (req: Req, res) => {
    endSession(db, cfg, req, res);
    res.redirect(303, '/login?bye=1');
  });

  // ---------- sign up, waitlist ----------

  function signupPage(req: Req, f: FormState, waitForm: FormState = emptyForm(), notice?: string): Html {
    const g = web.gate(db, cfg);
    const shut = !g.signupOpen;
    const why =
      g.capacity.signupMode === 'closed'
        ? 'Signup is closed on this host for now.'
        : g.full
          ? `Keelson is not taking new projects right now: ${g.full}.`
          : 'Signup on this host is by invitation.';
    const waitlist = html`<section class="card" id="waitlist" aria-labelledby="waitlist-h">
      <h2 id="waitlist-h">Join the waitlist</h2>
      <p>Leave your email address and the operator will send you an invite code when there is room.</p>
      <form method="post" action="/waitlist" novalidate>
        ${formMeta(req.csrfToken!, '/signup')}${formError(waitForm)}
        ${field(waitForm, 'wait-email', 'email', 'Email', { type: 'email', autocomplete: 'email', required: true })}
        <button type="submit">Join the waitlist</button>
      </form>
    </section>`;
    return html`<h1>${shut ? 'Sign up' : 'Get a Subversion repository and a Trac'}</h1>
      ${notice ? html`<p class="notice" role="status">${notice}</p>` : ''}
      ${
        shut
          ? html`<p class="notice warn" id="gate" role="status">${why} Join the waitlist, or sign up with an invite code.</p>
              ${waitlist}`
          : ''
      }
      <form method="post" action="/signup" class="card" novalidate aria-labelledby="signup-h">
        ${formMeta(req.csrfToken!, '/signup')}
        <h2 id="signup-h">${shut ? 'Sign up with an invite code' : 'Create your account'}</h2>
        ${formError(f)} ${field(f, 'su-username', 'username', 'User name', { autocomplete: 'username', required: true, hint: USER_RULE })}
        ${field(f, 'su-email', 'email', 'Email', { type: 'email', autocomplete: 'email', required: true })}
        ${field(f, 'su-password', 'password', 'Password', { type: 'password', autocomplete: 'new-password', required: true, hint: s.PASSWORD_RULE })}
        ${field(f, 'su-invite', 'invite', shut ? 'Invite code' : 'Invite code (if you have one)', { required: shut, autocomplete: 'off' })}
        <fieldset>
          <legend>First project (optional)</legend>
          ${field(f, 'su-slug', 'project.slug', 'Project name', { hint: SLUG_RULE, autocomplete: 'off' })}
          ${field(f, 'su-title', 'project.title', 'Title')}
          ${select(f, 'su-visibility', 'project.visibility', 'Visibility', VISIBILITIES, 'private')}
        </fieldset>
        <button type="submit">Sign up</button>
      </form>
      <p>Have an account? <a href="/login">Sign in</a>.</p>`;
  }

  r.get('/', (req: Req, res) => res.redirect(303, me(req) ? '/dashboard' : '/signup'));

  r.get('/signup', (req: Req, res) => {
    if (me(req)) return res.redirect(303, '/dashboard');
    render(req, res, 200, { title: 'Sign up', current: '/signup', body: signupPage(req, emptyForm()) });
  });

  r.post('/signup', csrf, (req: Req, res) => {
    const values = typed(req.body);
    const again = (status: number, f: FormState) =>
      render(req, res, status, { title: 'Sign up', current: '/signup', body: signupPage(req, f) });
    try {
      countSignupAttempt(db, cfg, addressOf(req));
    } catch (e) {
      if (!(e instanceof ThrottledError)) throw e;
      res.set('retry-after', String(e.retryAfter));
      return again(429, { values, errors: {}, error: e.message });
    }
    const obj = formObject(req.body);
    // The first project is optional: without a name, its other fields (visibility has a default) are ignored.
    if (!(obj.project as Record<string, unknown> | undefined)?.slug) delete obj.project;
    const p = parse(s.signupBody, obj, values);
    if (!p.ok) return again(400, p.form);
    try {
      const out = signup(db, cfg, p.data, addressOf(req));
      changed();
      startSession(db, cfg, req, res, out.user.id);
      req.actor = { kind: 'user', label: `user:${out.user.name}`, user: out.user.name, admin: false };
      const welcome = { token: out.accessToken };
      if (out.project) return projectPage(req, res, out.project.slug, 201, { welcome, url: `/p/${out.project.slug}` });
      return dashboard(req, res, 201, { welcome, url: '/dashboard' });
    } catch (e) {
      if (!(e instanceof DomainError)) throw e;
      again(e.status, domainForm(e, values, ['username', 'email', 'password', 'invite', 'project.slug']));
    }
  });

  r.post('/waitlist', csrf, (req: Req, res) => {
    const values = typed(req.body);
    const again = (status: number, w: FormState, notice?: string) =>
      render(req, res, status, { title: 'Sign up', current: '/signup', body: signupPage(req, emptyForm(), w, notice) });
    try {
      countSignupAttempt(db, cfg, addressOf(req));
    } catch (e) {
      if (!(e instanceof ThrottledError)) throw e;
      res.set('retry-after', String(e.retryAfter));
      return again(429, { values, errors: {}, error: e.message });
    }
    const p = parse(s.waitlistBody, formObject(req.body), values);
    if (!p.ok) return again(400, p.form);
    web.joinWaitlist(db, p.data.email);
    again(202, emptyForm(), `Thank you: ${p.data.email} is on the waitlist. The operator will send you an invite code.`);
  });

  // ---------- dashboard ----------

  function welcomeBanner(user: string, token: string, svnUrl?: string): Html {
    return html`<section class="card welcome" id="welcome" aria-labelledby="welcome-h">
      <h2 id="welcome-h">Your Subversion and Trac password</h2>
      <p>
        Subversion and Trac sign you in as <strong>${user}</strong> with this access token. It is shown <strong>only now</strong>: copy it
        to your password manager. You can make a new one on your <a href="/account">account page</a>.
      </p>
      <p class="copyline">
        <code id="access-token">${token}</code> <button type="button" class="copy" data-copy="access-token">Copy</button>
      </p>
      ${
        svnUrl
          ? html`<p>Check out your project:</p>
              <p class="copyline">
                <code id="welcome-checkout">svn checkout ${svnUrl} --username ${user}</code>
                <button type="button" class="copy" data-copy="welcome-checkout">Copy</button>
              </p>`
          : ''
      }
    </section>`;
  }

  const stateBadge = (slug: string, state: string) => html`<span class="state ${state}" data-state-of="${slug}">${state}</span>`;
  const svnUrl = (slug: string) => `${cfg.publicUrl}/svn/${slug}`;
  const tracUrl = (slug: string) => `${cfg.publicUrl}/trac/${slug}`;

  async function dashboard(
    req: Req,
    res: Response,
    status: number,
    o: { welcome?: { token: string }; url?: string; form?: FormState; notice?: string } = {},
  ) {
    const u = me(req)!;
    // Paged like every list here, so the page keeps to its size budget.
    const all = model.listProjects(db, u.name);
    const pageN = pageNo(req.query.page);
    const projects = all.slice((pageN - 1) * PAGE_SIZE, pageN * PAGE_SIZE);
    const rows = await Promise.all(
      projects.map(async (p) => {
        const role = model.members(db, p.id).find((m) => m.user === u.name)?.role ?? '';
        const usage = await web.projectUsage(cfg, p.slug);
        return html`<li class="project card">
          <h3><a href="/p/${p.slug}">${p.title}</a> <small>${p.slug}</small></h3>
          <p>${stateBadge(p.slug, p.state)} · <span class="role">${role}</span> · ${p.visibility} · ${fmtBytes(usage)} used</p>
          <p class="copyline">
            <code id="co-${p.slug}">svn checkout ${svnUrl(p.slug)}</code>
            <button type="button" class="copy" data-copy="co-${p.slug}">Copy</button>
          </p>
          <p><a href="${tracUrl(p.slug)}">Trac: ${tracUrl(p.slug)}</a></p>
        </li>`;
      }),
    );
    const g = web.gate(db, cfg);
    const f = o.form ?? emptyForm(takeDraft(req) ?? {});
    const drafted = !o.form && Object.keys(f.values).length > 0;
    const newForm =
      g.full && !u.admin
        ? html`<p class="notice warn" id="gate">New projects are paused on this host (${g.full}).</p>`
        : html`<form method="post" action="/projects" class="card" novalidate aria-labelledby="new-h">
            ${formMeta(req.csrfToken!, '/dashboard')}
            <h2 id="new-h">New project</h2>
            ${formError(f)} ${field(f, 'np-slug', 'slug', 'Project name', { hint: SLUG_RULE, required: true, autocomplete: 'off' })}
            ${field(f, 'np-title', 'title', 'Title')} ${select(f, 'np-visibility', 'visibility', 'Visibility', VISIBILITIES, 'private')}
            <button type="submit">Create project</button>
          </form>`;
    render(req, res, status, {
      title: 'My projects',
      current: '/dashboard',
      url: o.url ?? '/dashboard',
      notice: o.notice ?? (drafted ? DRAFT_NOTICE : undefined),
      body: html`${o.welcome ? welcomeBanner(u.name, o.welcome.token) : ''}
        <h1>My projects</h1>
        ${
          rows.length
            ? html`<ul class="projects">
                ${rows}
              </ul>`
            : html`<p>You are not in any project yet.</p>`
        }
        ${all.length > PAGE_SIZE ? pager('/dashboard', '', pageN, all.length) : ''} ${newForm}`,
    });
  }

  r.get('/dashboard', signedIn, async (req: Req, res) => {
    const notice = typeof req.query.deleted === 'string' ? `Project ${req.query.deleted.slice(0, 40)} is being deleted.` : undefined;
    await dashboard(req, res, 200, { notice });
  });

  r.post('/projects', csrf, signedIn, async (req: Req, res) => {
    const u = me(req)!;
    const values = typed(req.body);
    const p = parse(s.ownProjectBody.omit({ owner: true }), formObject(req.body), values);
    if (!p.ok) return dashboard(req, res, 400, { form: p.form });
    try {
      const proj = web.createOwnProject(db, cfg, { user: u.name, admin: u.admin }, p.data);
      changed();
      res.redirect(303, `/p/${proj.slug}`);
    } catch (e) {
      if (!(e instanceof DomainError)) throw e;
      const f = domainForm(e, values, ['slug', 'title', 'visibility']);
      if (e.status === 409 && !f.errors.slug) f.errors.slug = e.message;
      await dashboard(req, res, e.status, { form: f });
    }
  });

  // ---------- account ----------

  function accountPage(
    req: Req,
    res: Response,
    status: number,
    o: { form?: FormState; token?: string; notice?: string; url?: string } = {},
  ) {
    const u = me(req)!;
    const row = model.requireUser(db, u.name);
    const f = o.form ?? emptyForm();
    render(req, res, status, {
      title: 'Account',
      current: '/account',
      notice: o.notice,
      url: o.url ?? '/account',
      body: html`<h1>Account</h1>
        <p>Signed in as <strong>${u.name}</strong> (${row.email})${u.admin ? ' · operator' : ''}.</p>
        <section class="card" aria-labelledby="tok-h">
          <h2 id="tok-h">Subversion and Trac access token</h2>
          <p>
            Subversion and Trac do not take your web password: they take a generated access token, shown once when it is made. If you lost
            it, or it may have leaked, make a new one: the old one stops working within seconds.
          </p>
          ${
            o.token
              ? html`<p class="copyline">
                    <code id="access-token">${o.token}</code> <button type="button" class="copy" data-copy="access-token">Copy</button>
                  </p>
                  <p class="notice" role="status">This is your new access token; it is shown only now.</p>`
              : ''
          }
          <form method="post" action="/account/token">
            ${formMeta(req.csrfToken!, '/account')}<button type="submit">Make a new access token</button>
          </form>
        </section>
        <form method="post" action="/account/password" class="card" novalidate aria-labelledby="pw-h">
          ${formMeta(req.csrfToken!, '/account')}
          <h2 id="pw-h">Change password</h2>
          ${formError(f)}
          ${field(f, 'pw-current', 'current', 'Current password', { type: 'password', autocomplete: 'current-password', required: true })}
          ${field(f, 'pw-new', 'password', 'New password', { type: 'password', autocomplete: 'new-password', required: true, hint: s.PASSWORD_RULE })}
          <button type="submit">Change password</button>
        </form>`,
    });
  }

  r.get('/account', signedIn, (req: Req, res) => accountPage(req, res, 200));

  r.post('/account/password', csrf, signedIn, async (req: Req, res) => {
    const u = me(req)!;
    const b = formObject(req.body, ['current']);
    const p = parse(s.changePasswordBody, { ...b, username: u.name }, {});
    if (!p.ok) return accountPage(req, res, 400, { form: p.form });
    try {
      await login(db, cfg, u.name, p.data.current, addressOf(req));
    } catch (e) {
      if (!(e instanceof DomainError)) throw e;
      return accountPage(req, res, e.status === 401 ? 400 : e.status, {
        form: { values: {}, errors: { current: e.status === 401 ? 'this is not your current password' : e.message } },
      });
    }
    model.changePassword(db, `user:${u.name}`, u.name, p.data.password);
    web.deleteUserSessions(db, req.session!.user_id, req.sessionToken);
    accountPage(req, res, 200, { notice: 'Your password is changed. Your other sessions are signed out.' });
  });

  r.post('/account/token', csrf, signedIn, (req: Req, res) => {
    const u = me(req)!;
    const token = rotateToken(db, cfg, `user:${u.name}`, u.name);
    changed();
    accountPage(req, res, 201, { token, url: '/account' });
  });

  // ---------- project page ----------

  function visibleProject(req: Req, slug: string): { p: model.ProjectRow; role: Role | undefined } | undefined {
    if (s.slug.safeParse(slug).success === false) return undefined;
    const p = model.getProject(db, slug);
    if (!p) return undefined;
    const role = roleIn(db, req.actor, p.id);
    if (!role && p.visibility !== 'public') return undefined;
    return { p, role };
  }
  const notFoundPage = (req: Req, res: Response) =>
    render(req, res, 404, {
      title: 'Not found',
      body: html`<h1>Not found</h1>
        <p>There is no such project, or you are not a member of it.</p>`,
    });

  async function projectPage(
    req: Req,
    res: Response,
    slug: string,
    status: number,
    o: { welcome?: { token: string }; url?: string; forms?: Record<string, FormState>; notice?: string } = {},
  ) {
    const v = visibleProject(req, slug);
    if (!v) return notFoundPage(req, res);
    const { p, role } = v;
    const owner = role === 'owner';
    const u = me(req)!;
    const ms = model.members(db, p.id);
    const draft = takeDraft(req);
    const fm = (k: string) => o.forms?.[k] ?? emptyForm(draft ?? {});
    const base = `/p/${p.slug}`;
    const usage = await web.projectUsage(cfg, p.slug);
    // Members are paged (40 a page) so the page stays within its size budget for any team size.
    const mPages = Math.max(1, Math.ceil(ms.length / MEMBERS_PAGE));
    const mPage = Math.min(mPages, pageNo(req.query.members));
    const shown = ms.slice((mPage - 1) * MEMBERS_PAGE, mPage * MEMBERS_PAGE);
    // One form a row: "Change" posts the role, "Remove" posts the same form to the remove action.
    const memberRows = shown.map(
      (m) =>
        html`<tr>
          <th scope="row">${m.user}</th>
          <td>
            ${
              owner
                ? html`<form method="post" action="${base}/members/${m.user}/role" class="inline">
                    ${formMeta(req.csrfToken!, base)}<label class="sr" for="role-${m.user}">Role of ${m.user}</label
                    ><select id="role-${m.user}" name="role">
                      ${ROLES.map((r) => html`<option${r === m.role ? raw(' selected') : ''}>${r}</option>`)}
                    </select>
                    <button type="submit" class="small">Change</button>
                    <button type="submit" class="small danger" formaction="${base}/members/${m.user}/remove" aria-label="Remove ${m.user}">
                      Remove
                    </button>
                  </form>`
                : m.role
            }
          </td>
        </tr>`,
    );
    const memberPager =
      mPages > 1
        ? html`<nav class="pager" aria-label="Member pages">
            ${mPage > 1 ? html`<a href="${base}?members=${mPage - 1}">Previous</a>` : ''}<span
              >members ${(mPage - 1) * MEMBERS_PAGE + 1}-${Math.min(ms.length, mPage * MEMBERS_PAGE)} of ${ms.length}</span
            >${mPage < mPages ? html`<a href="${base}?members=${mPage + 1}">Next</a>` : ''}
          </nav>`
        : '';
    const fMember = fm('member');
    const fSettings = o.forms?.settings ?? emptyForm({ title: p.title, visibility: p.visibility, ...(draft ?? {}) });
    const fDelete = fm('delete');
    render(req, res, status, {
      title: p.title,
      url: o.url ?? `/p/${p.slug}`,
      notice: o.notice ?? (draft && Object.keys(draft).length ? DRAFT_NOTICE : undefined),
      body: html`${o.welcome ? welcomeBanner(u.name, o.welcome.token, svnUrl(p.slug)) : ''}
        <h1>${p.title} <small>${p.slug}</small></h1>
        <p>
          ${stateBadge(p.slug, p.state)} · ${p.visibility} · your role: <strong id="my-role">${role ?? 'none (public project)'}</strong> ·
          ${fmtBytes(usage)} used
        </p>
        ${p.last_error && owner ? html`<p class="error banner">Last provisioning error: ${p.last_error}</p>` : ''}
        <section class="card" aria-labelledby="co-h">
          <h2 id="co-h">Check out</h2>
          <p class="copyline">
            <code id="checkout">svn checkout ${svnUrl(p.slug)} --username ${u.name}</code>
            <button type="button" class="copy" data-copy="checkout">Copy</button>
          </p>
          <p>
            Password: your access token (see <a href="/account">Account</a>). Trac:
            <a id="trac-link" href="${tracUrl(p.slug)}">${tracUrl(p.slug)}</a>
          </p>
        </section>
        <section class="card" aria-labelledby="m-h">
          <h2 id="m-h">Members</h2>
          <table id="members">
            <thead>
              <tr>
                <th scope="col">user</th>
                <th scope="col">role</th>
              </tr>
            </thead>
            <tbody>
              ${memberRows}
            </tbody>
          </table>
          ${memberPager}
          ${
            owner
              ? html`<form method="post" action="${base}/members" novalidate aria-labelledby="add-h">
                  ${formMeta(req.csrfToken!, base)}
                  <h3 id="add-h">Add a member</h3>
                  ${formError(fMember)} ${field(fMember, 'add-user', 'user', 'User name', { autocomplete: 'off', required: true })}
                  ${select(fMember, 'add-role', 'role', 'Role', ROLES, 'developer')} <button type="submit">Add member</button>
                </form>`
              : html`<p class="muted">Only owners can change members.</p>`
          }
        </section>
        <section class="card" id="path-rules" data-slug="${p.slug}" data-editable="${owner ? '1' : ''}" aria-labelledby="pr-h">
          <h2 id="pr-h">Path rules</h2>
          <p class="muted" data-status>Loading path rules…</p>
          <noscript><p>Path rules need JavaScript on this page.</p></noscript>
        </section>
        ${
          owner
            ? html`<form method="post" action="${base}/settings" class="card" novalidate aria-labelledby="set-h">
                  ${formMeta(req.csrfToken!, base)}
                  <h2 id="set-h">Settings</h2>
                  ${formError(fSettings)} ${field(fSettings, 'set-title', 'title', 'Title', { required: true })}
                  ${select(fSettings, 'set-visibility', 'visibility', 'Visibility', VISIBILITIES, p.visibility)}
                  <p class="hint">Public: anyone may read the repository and Trac; only members write.</p>
                  <button type="submit">Save</button>
                </form>
                <form method="post" action="${base}/delete" class="card danger-zone" novalidate aria-labelledby="del-h">
                  ${formMeta(req.csrfToken!, base)}
                  <h2 id="del-h">Delete this project</h2>
                  <p>This removes the repository and the Trac environment. Type the project name <strong>${p.slug}</strong> to confirm.</p>
                  ${formError(fDelete)} ${field(fDelete, 'del-confirm', 'confirm', 'Project name', { autocomplete: 'off', required: true })}
                  <button type="submit" class="danger">Delete ${p.slug}</button>
                </form>`
            : ''
        }`,
    });
  }

  r.get('/p/:slug', signedIn, (req: Req, res) => projectPage(req, res, String(req.params.slug), 200));

  /** Owner-only project form posts: 404 if the project is not visible, 403 if not an owner. */
  function ownerPost(path: string, handle: (req: Req, res: Response, p: model.ProjectRow, actor: string) => Promise<unknown> | unknown) {
    r.post(path, csrf, signedIn, async (req: Req, res) => {
      const v = visibleProject(req, String(req.params.slug));
      if (!v) return notFoundPage(req, res);
      if (v.role !== 'owner')
        return render(req, res, 403, {
          title: 'Not allowed',
          body: html`<h1>Not allowed</h1>
            <p>Only owners of ${v.p.slug} can change it.</p>`,
        });
      await handle(req, res, v.p, `user:${me(req)!.name}`);
    });
  }
  const formFailed = async (
    req: Req,
    res: Response,
    slug: string,
    e: unknown,
    key: string,
    values: Record<string, string>,
    fields: string[],
  ) => {
    if (!(e instanceof DomainError)) throw e;
    await projectPage(req, res, slug, e.status, { forms: { [key]: domainForm(e, values, fields) } });
  };

  ownerPost('/p/:slug/members', async (req, res, p, actor) => {
    const values = typed(req.body);
    const parsed = parse(s.memberBody.extend({ user: s.username }), formObject(req.body), values);
    if (!parsed.ok) return projectPage(req, res, p.slug, 400, { forms: { member: parsed.form } });
    try {
      if (!model.getUser(db, parsed.data.user)) throw new DomainError(404, 'not_found', `user: there is no user ${parsed.data.user}`);
      model.setMember(db, actor, p.slug, parsed.data.user, parsed.data.role);
      changed();
      res.redirect(303, `/p/${p.slug}`);
    } catch (e) {
      await formFailed(req, res, p.slug, e, 'member', values, ['user', 'role']);
    }
  });
  ownerPost('/p/:slug/members/:user/role', async (req, res, p, actor) => {
    const parsed = parse(s.memberBody, formObject(req.body), {});
    const user = s.username.safeParse(req.params.user);
    if (!parsed.ok || !user.success)
      return projectPage(req, res, p.slug, 400, { forms: { member: { values: {}, errors: {}, error: 'choose one of the roles' } } });
    try {
      model.setMember(db, actor, p.slug, user.data, parsed.data.role);
      changed();
      res.redirect(303, `/p/${p.slug}`);
    } catch (e) {
      await formFailed(req, res, p.slug, e, 'member', {}, []);
    }
  });
  ownerPost('/p/:slug/members/:user/remove', async (req, res, p, actor) => {
    const user = s.username.safeParse(req.params.user);
    try {
      if (!user.success) throw new DomainError(404, 'not_found', 'no such member');
      model.removeMember(db, actor, p.slug, user.data);
      changed();
      res.redirect(303, `/p/${p.slug}`);
    } catch (e) {
      await formFailed(req, res, p.slug, e, 'member', {}, []);
    }
  });
  ownerPost('/p/:slug/settings', async (req, res, p, actor) => {
    const values = typed(req.body);
    const parsed = parse(s.patchProjectBody, formObject(req.body, ['title']), values);
    if (!parsed.ok) return projectPage(req, res, p.slug, 400, { forms: { settings: parsed.form } });
    model.updateProject(db, actor, p.slug, parsed.data);
    changed();
    res.redirect(303, `/p/${p.slug}`);
  });
  ownerPost('/p/:slug/delete', async (req, res, p, actor) => {
    const values = typed(req.body);
    if (values.confirm !== p.slug)
      return projectPage(req, res, p.slug, 400, {
        forms: { delete: { values, errors: { confirm: `type ${p.slug} exactly to confirm` } } },
      });
    model.deleteProject(db, actor, p.slug);
    changed();
    res.redirect(303, `/dashboard?deleted=${p.slug}`);
  });

  // ---------- operator pages ----------

  const adminNav = (cur: string) =>
    html`<nav class="sub" aria-label="Operator">
      ${[
        ['/admin', 'Host'],
        ['/admin/projects', 'Projects'],
        ['/admin/users', 'Users'],
        ['/admin/waitlist', 'Waitlist and invites'],
      ].map(([h, l]) => html`<a href="${h!}" ${h === cur ? raw(' aria-current="page"') : ''}>${l!}</a>`)}
    </nav>`;

  function hostPage(req: Req, res: Response, status: number, f?: FormState, notice?: string) {
    const g = web.gate(db, cfg);
    const c = g.capacity;
    const form =
      f ??
      emptyForm({
        maxProjects: c.maxProjects === null ? '' : String(c.maxProjects),
        minFreeBytes: String(c.minFreeBytes),
        signupMode: c.signupMode,
      });
    const now = Date.now();
    const span = 30 * 86_400_000;
    render(req, res, status, {
      title: 'Operator',
      url: '/admin',
      current: '/admin',
      notice,
      body: html`<h1>Operator</h1>
        ${adminNav('/admin')}
        <section class="card" aria-labelledby="gate-h">
          <h2 id="gate-h">Capacity gate</h2>
          <p id="gate-state">
            ${g.projects} project(s)${c.maxProjects !== null ? ` of at most ${c.maxProjects}` : ', no limit'} · ${fmtBytes(g.freeBytes)}
            free on the data volume${c.minFreeBytes ? ` (floor ${fmtBytes(c.minFreeBytes)})` : ''} · signup ${c.signupMode} ·
            ${g.full ? html`<strong class="state failed">closed to new projects: ${g.full}</strong>` : html`<strong class="state active">taking new projects</strong>`}
          </p>
          <form method="post" action="/admin/capacity" novalidate>
            ${formMeta(req.csrfToken!, '/admin')}${formError(form)}
            ${field(form, 'cap-max', 'maxProjects', 'Maximum projects', { inputmode: 'numeric', hint: 'empty for no limit' })}
            ${field(form, 'cap-free', 'minFreeBytes', 'Minimum free bytes on the data volume', { inputmode: 'numeric', hint: 'new projects stop below this; 0 for no floor' })}
            ${select(form, 'cap-mode', 'signupMode', 'Signup', web.SIGNUP_MODES, c.signupMode)} <button type="submit">Save</button>
          </form>
        </section>
        <section class="card" aria-labelledby="disk-h">
          <h2 id="disk-h">Disk usage</h2>
          ${diskChart(web.diskSamples(db, now - span), now, span)}
        </section>
        <section class="card" id="backups" aria-labelledby="bk-h">
          <h2 id="bk-h">Backups</h2>
          <p class="muted" data-status>Loading backups…</p>
          <noscript><p>The backup panel needs JavaScript.</p></noscript>
        </section>`,
    });
  }

  r.get('/admin', signedIn, adminOnly, (req: Req, res) => hostPage(req, res, 200));
  r.post('/admin/capacity', csrf, signedIn, adminOnly, (req: Req, res) => {
    const values = typed(req.body);
    const b = formObject(req.body, ['maxProjects']);
    const p = parse(
      s.capacityBody,
      { ...b, maxProjects: b.maxProjects === '' || b.maxProjects === undefined ? null : b.maxProjects },
      values,
    );
    if (!p.ok) return hostPage(req, res, 400, p.form);
    web.setCapacity(db, `user:${me(req)!.name}`, p.data);
    hostPage(req, res, 200, undefined, 'Capacity settings saved.');
  });

  const pageNo = (q: unknown) => Math.max(1, Math.min(100_000, Number.parseInt(String(q ?? '1'), 10) || 1));
  const qOf = (q: unknown) => (typeof q === 'string' ? q.slice(0, 100) : '');
  function pager(path: string, q: string, pageN: number, total: number): Html {
    const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
    const link = (n: number) => `${path}?q=${encodeURIComponent(q)}&page=${n}`;
    return html`<nav class="pager" aria-label="Pages">
      ${pageN > 1 ? html`<a href="${link(pageN - 1)}" rel="prev">Previous</a>` : ''}<span>page ${pageN} of ${pages} · ${total} in all</span
      >${pageN < pages ? html`<a href="${link(pageN + 1)}" rel="next">Next</a>` : ''}
    </nav>`;
  }
  const searchForm = (path: string, q: string, label: string) =>
    html`<form method="get" action="${path}" class="search" role="search">
      <label for="q">${label}</label><input id="q" name="q" type="search" value="${q}" /><button type="submit">Search</button>
    </form>`;

  r.get('/admin/projects', signedIn, adminOnly, async (req: Req, res) => {
    const q = qOf(req.query.q);
    const n = pageNo(req.query.page);
    const { rows, total } = model.searchProjects(db, q, PAGE_SIZE, (n - 1) * PAGE_SIZE);
    const body = await Promise.all(
      rows.map(async (p) => {
        const owners = model
          .members(db, p.id)
          .filter((m) => m.role === 'owner')
          .map((m) => m.user)
          .join(', ');
        const act = p.state === 'suspended' ? 'resume' : p.state === 'active' ? 'suspend' : '';
        return html`<tr>
          <th scope="row"><a href="/p/${p.slug}">${p.slug}</a></th>
          <td>${p.title}</td>
          <td>${stateBadge(p.slug, p.state)}</td>
          <td>${owners}</td>
          <td>${fmtBytes(await web.projectUsage(cfg, p.slug))}</td>
          <td>${p.created_at.slice(0, 10)}</td>
          <td>
            ${
              act
                ? html`<form method="post" action="/admin/projects/${p.slug}/${act}" class="inline">
                    ${formMeta(req.csrfToken!, '/admin/projects')}<button
                      type="submit"
                      class="small${act === 'suspend' ? ' danger' : ''}"
                      aria-label="${act} ${p.slug}"
                    >
                      ${act}
                    </button>
                  </form>`
                : ''
            }
          </td>
        </tr>`;
      }),
    );
    render(req, res, 200, {
      title: 'Projects',
      current: '/admin',
      notice: typeof req.query.done === 'string' ? req.query.done.slice(0, 100) : undefined,
      body: html`<h1>Projects</h1>
        ${adminNav('/admin/projects')}${searchForm('/admin/projects', q, 'Search projects')}
        <div class="scroll">
          <table id="all-projects">
            <thead>
              <tr>
                <th scope="col">slug</th>
                <th scope="col">title</th>
                <th scope="col">state</th>
                <th scope="col">owners</th>
                <th scope="col">storage</th>
                <th scope="col">created</th>
                <th scope="col"><span class="sr">actions</span></th>
              </tr>
            </thead>
            <tbody>
              ${body}
            </tbody>
          </table>
        </div>
        ${pager('/admin/projects', q, n, total)}`,
    });
  });

  /**
   * An operator's action on one row of an admin list (suspend a project, disable a user): the name
   * from the URL is checked with its schema, the action runs, and the list comes back with a notice,
   * or an error page with the domain error's status.
   */
  function adminAction<T>(
    list: 'projects' | 'users',
    param: string,
    schema: ZodType<T>,
    acts: readonly string[],
    perform: (req: Req, name: T, act: string) => string,
  ) {
    const title = list === 'projects' ? 'Projects' : 'Users';
    for (const act of acts) {
      r.post(`/admin/${list}/:${param}/${act}`, csrf, signedIn, adminOnly, (req: Req, res) => {
        const name = schema.safeParse(req.params[param]);
        if (!name.success) return notFoundPage(req, res);
        try {
          const done = perform(req, name.data, act);
          changed();
          res.redirect(303, `/admin/${list}?done=${encodeURIComponent(done)}`);
        } catch (e) {
          if (!(e instanceof DomainError)) throw e;
          render(req, res, e.status, {
            title,
            body: html`<h1>${title}</h1>
              <p class="error banner" role="alert">${e.message}</p>
              <p><a href="/admin/${list}">Back</a></p>`,
          });
        }
      });
    }
  }

  adminAction('projects', 'slug', s.slug, ['suspend', 'resume'], (req, slug, act) => {
    model.setSuspended(db, `user:${me(req)!.name}`, slug, act === 'suspend');
    return `${slug}: ${act === 'suspend' ? 'suspended' : 'resumed'}`;
  });

  r.get('/admin/users', signedIn, adminOnly, (req: Req, res) => {
    const q = qOf(req.query.q);
    const n = pageNo(req.query.page);
    const { rows, total } = model.searchUsers(db, q, PAGE_SIZE, (n - 1) * PAGE_SIZE);
    const count = db.prepare(`SELECT count(*) AS n FROM memberships WHERE user_id = ?`);
    render(req, res, 200, {
      title: 'Users',
      current: '/admin',
      notice: typeof req.query.done === 'string' ? req.query.done.slice(0, 100) : undefined,
      body: html`<h1>Users</h1>
        ${adminNav('/admin/users')}${searchForm('/admin/users', q, 'Search users')}
        <div class="scroll">
          <table id="all-users">
            <thead>
              <tr>
                <th scope="col">name</th>
                <th scope="col">email</th>
                <th scope="col">projects</th>
                <th scope="col">operator</th>
                <th scope="col">created</th>
                <th scope="col">state</th>
                <th scope="col"><span class="sr">actions</span></th>
              </tr>
            </thead>
            <tbody>
              ${rows.map((u) => {
                const act = u.disabled_at ? 'enable' : 'disable';
                return html`<tr>
                  <th scope="row">${u.name}</th>
                  <td>${u.email}</td>
                  <td>${(count.get(u.id) as { n: number }).n}</td>
                  <td>${u.is_admin ? 'yes' : ''}</td>
                  <td>${u.created_at.slice(0, 10)}</td>
                  <td>${u.disabled_at ? 'disabled' : 'active'}</td>
                  <td>
                    <form method="post" action="/admin/users/${u.name}/${act}" class="inline">
                      ${formMeta(req.csrfToken!, '/admin/users')}<button
                        type="submit"
                        class="small${act === 'disable' ? ' danger' : ''}"
                        aria-label="${act} ${u.name}"
                      >
                        ${act}
                      </button>
                    </form>
                  </td>
                </tr>`;
              })}
            </tbody>
          </table>
        </div>
        ${pager('/admin/users', q, n, total)}`,
    });
  });

  // Disabling takes the user's SVN/Trac credentials away on the next request and drops them from
  // every project's groups; their rows stay for enabling again.
  adminAction('users', 'name', s.username, ['disable', 'enable'], (req, name, act) => {
    if (act === 'disable' && name === me(req)!.name) throw new DomainError(409, 'conflict', 'you cannot disable your own account');
    setUserDisabled(db, `user:${me(req)!.name}`, name, act === 'disable');
    syncUserCredential(db, layout(cfg).authDb, name);
    return `${name}: ${act}d`;
  });

  function waitlistPage(
    req: Req,
    res: Response,
    status: number,
    o: { code?: { code: string; email: string | null }; form?: FormState } = {},
  ) {
    const waiting = web.listWaitlist(db);
    const pageN = pageNo(req.query.page);
    const list = waiting.slice((pageN - 1) * PAGE_SIZE, pageN * PAGE_SIZE);
    const invites = web.listInvites(db).slice(0, 50);
    const f = o.form ?? emptyForm();
    render(req, res, status, {
      title: 'Waitlist and invites',
      // A page answering a form post shows the page's own address (a reload must not post again).
      url: '/admin/waitlist',
      current: '/admin',
      body: html`<h1>Waitlist and invites</h1>
        ${adminNav('/admin/waitlist')}
        ${
          o.code
            ? html`<section class="card welcome" aria-labelledby="inv-h">
                <h2 id="inv-h">Invite code${o.code.email ? ` for ${o.code.email}` : ''}</h2>
                <p>
                  Send this code to the person (there is no mail server; the code is also in Keelson's log). It is shown only now and works
                  once.
                </p>
                <p class="copyline">
                  <code id="invite-code">${o.code.code}</code> <button type="button" class="copy" data-copy="invite-code">Copy</button>
                </p>
              </section>`
            : ''
        }
        <section class="card" aria-labelledby="wl-h">
          <h2 id="wl-h">Waitlist</h2>
          ${
            list.length
              ? html`<div class="scroll">
                  <table id="waitlist-table">
                    <thead>
                      <tr>
                        <th scope="col">email</th>
                        <th scope="col">since</th>
                        <th scope="col">invited</th>
                        <th scope="col"><span class="sr">actions</span></th>
                      </tr>
                    </thead>
                    <tbody>
                      ${list.map(
                        (w) =>
                          html`<tr>
                            <th scope="row">${w.email}</th>
                            <td>${w.created_at.slice(0, 16).replace('T', ' ')}</td>
                            <td>${w.invited_at ? w.invited_at.slice(0, 16).replace('T', ' ') : 'no'}</td>
                            <td>
                              <form method="post" action="/admin/invites" class="inline">
                                ${formMeta(req.csrfToken!, '/admin/waitlist')}<input type="hidden" name="email" value="${w.email}" /><button
                                  type="submit"
                                  class="small"
                                  aria-label="Invite ${w.email}"
                                >
                                  ${w.invited_at ? 'Invite again' : 'Invite'}
                                </button>
                              </form>
                            </td>
                          </tr>`,
                      )}
                    </tbody>
                  </table>
                </div>`
              : html`<p>Nobody is waiting.</p>`
          }
          ${waiting.length > PAGE_SIZE ? pager('/admin/waitlist', '', pageN, waiting.length) : ''}
        </section>
        <form method="post" action="/admin/invites" class="card" novalidate aria-labelledby="ni-h">
          ${formMeta(req.csrfToken!, '/admin/waitlist')}
          <h2 id="ni-h">New invite code</h2>
          ${formError(f)} ${field(f, 'inv-email', 'email', 'For (email, optional)', { type: 'email' })}<button type="submit">
            Create invite code
          </button>
        </form>
        <section class="card" aria-labelledby="il-h">
          <h2 id="il-h">Invites</h2>
          ${
            invites.length
              ? html`<div class="scroll">
                  <table>
                    <thead>
                      <tr>
                        <th scope="col">for</th>
                        <th scope="col">made</th>
                        <th scope="col">by</th>
                        <th scope="col">used</th>
                      </tr>
                    </thead>
                    <tbody>
                      ${invites.map(
                        (i) =>
                          html`<tr>
                            <td>${i.email ?? '—'}</td>
                            <td>${i.created_at.slice(0, 16).replace('T', ' ')}</td>
                            <td>${i.created_by}</td>
                            <td>${i.used_by ? `by ${i.used_by}` : 'not yet'}</td>
                          </tr>`,
                      )}
                    </tbody>
                  </table>
                </div>`
              : html`<p>None yet.</p>`
          }
        </section>`,
    });
  }

  r.get('/admin/waitlist', signedIn, adminOnly, (req: Req, res) => waitlistPage(req, res, 200));
  r.post('/admin/invites', csrf, signedIn, adminOnly, (req: Req, res) => {
    const values = typed(req.body);
    const p = parse(s.inviteBody, formObject(req.body), values);
    if (!p.ok) return waitlistPage(req, res, 400, { form: p.form });
    const code = web.createInvite(db, `user:${me(req)!.name}`, p.data.email ?? null);
    waitlistPage(req, res, 201, { code: { code, email: p.data.email ?? null } });
  });

  return r;
}

/** HTML answers for errors the pages did not handle themselves (CSRF refusals, malformed bodies). */
export function webErrors(deps: WebDeps): ErrorRequestHandler {
  return (err, req: Req, res, next) => {
    if (res.headersSent || req.path.startsWith('/api/')) return next(err);
    const status =
      err instanceof DomainError
        ? err.status
        : typeof err?.status === 'number' && err.status >= 400 && err.status < 500
          ? (err.status as number)
          : 500;
    if (status === 500) log.error('page failed', { method: req.method, path: req.path, error: String(err?.stack ?? err) });
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
    void deps;
  };
}

/**
 * What every page group shares: form parsing and redisplay, the page frame, who is signed in,
 * the guards (signed in, operator, CSRF), drafts kept across an expired session, pagers and badges.
 */
import { type RequestHandler, type Response } from 'express';
import { ZodError, type ZodType } from 'zod';
import type { Ctx } from '../src/domain/context.js';
import { saveDraft } from '../src/domain/sessions.js';
import { visibleProject as visibleTo, type ProjectRow } from '../src/domain/projects.js';
import * as s from '../src/http/schemas.js';
import { requireCsrf, csrfValid, type WebRequest } from '../src/http/auth.js';
import { DomainError } from '../src/errors.js';
import { storageOfProject, type Storage } from '../src/domain/storage.js';
import { fmtBytes } from '../src/sys/bytes.js';
import type { Role } from '../src/names.js';
import { emptyForm, field, formError, formMeta, html, page, raw, type FormState, type Html, type PageUser } from './html.js';

export type Req = WebRequest;
export const PAGE_SIZE = 20;
export const MEMBERS_PAGE = 40;

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
export function typed(body: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries((body ?? {}) as Record<string, unknown>))
    if (typeof v === 'string' && !k.startsWith('_') && !/password|current|draft/.test(k)) out[k] = v.slice(0, 500);
  return out;
}

export function zodForm(e: ZodError, values: Record<string, string>): FormState {
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
export function domainForm(e: DomainError, values: Record<string, string>, fields: string[]): FormState {
  const m = e.message.match(/^([a-zA-Z.]+): (.*)$/s);
  if (m && fields.includes(m[1]!)) return { values, errors: { [m[1]!]: m[2]! } };
  return { values, errors: {}, error: e.message };
}

export function parse<T>(
  schema: ZodType<T>,
  obj: unknown,
  values: Record<string, string>,
): { ok: true; data: T } | { ok: false; form: FormState } {
  const r = schema.safeParse(obj);
  return r.success ? { ok: true, data: r.data } : { ok: false, form: zodForm(r.error, values) };
}

/** A local path to go back to after sign-in; anything that could leave the site ("//host", "/\\host") is dropped. */
export function safeNext(n: unknown): string | undefined {
  return typeof n === 'string' && /^\/(?![/\\])[\x21-\x7e]*$/.test(n) && !n.includes('\\') && !n.startsWith('/login') ? n : undefined;
}

export type Kit = ReturnType<typeof makeKit>;

type RenderOpts = { title: string; body: Html; notice?: string; url?: string; current?: string; refreshSeconds?: number };

export const me = (req: Req): PageUser | undefined =>
  req.actor?.kind === 'user' && req.actor.user ? { name: req.actor.user, admin: req.actor.admin } : undefined;

export function send(res: Response, status: number, body: string): void {
  res.status(status).type('html').send(body);
}

/** Only a page that answers a form post replaces the address bar (with the page's own address). */
export function render(req: Req, res: Response, status: number, o: RenderOpts): void {
  send(res, status, page({ ...o, url: req.method === 'POST' ? o.url : undefined, user: me(req), csrf: req.csrfToken! }));
}

export const DRAFT_NOTICE = 'Your session had expired. What you typed is filled in below: check it and submit again.';

/** Drafts saved at sign-in after an expired session: the fields typed on `path`, shown once. */
function takeDraft(ctx: Ctx, req: Req): Record<string, string> | undefined {
  const d = req.session?.draft;
  if (!d || !req.sessionToken) return undefined;
  const parsed = JSON.parse(d) as { path: string; fields: Record<string, string> };
  if (parsed.path !== req.path) return undefined;
  saveDraft(ctx, req.sessionToken, null);
  return parsed.fields;
}

/** Pages for signed-in users. A form posted after the session expired goes through sign-in and comes back filled in. */
function signedInGuard(): RequestHandler {
  return (req: Req, res, next) => {
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
}

function adminOnlyGuard(): RequestHandler {
  return (req: Req, res, next) => {
    if (me(req)?.admin) return next();
    render(req, res, 403, {
      title: 'Not allowed',
      body: html`<h1>Not allowed</h1>
        <p>The operator pages are for admin accounts.</p>`,
    });
  };
}

export function loginForm(req: Req, f: FormState, next?: string, draft?: string): Html {
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

export function welcomeBanner(user: string, token: string, svnUrl?: string): Html {
  return html`<section class="card welcome" id="welcome" aria-labelledby="welcome-h">
    <h2 id="welcome-h">Your Subversion and Trac password</h2>
    <p>
      Subversion and Trac sign you in as <strong>${user}</strong> with this access token. It is shown <strong>only now</strong>: copy it to
      your password manager. You can make a new one on your <a href="/account">account page</a>.
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

/**
 * A project's storage as its members see it: "12.0 MiB of 2.0 GiB used", and past 80% and 95% of
 * the limit (or over it) a warning that says what stops working.
 */
export function storageLine(slug: string, st: Storage | null): Html {
  if (!st) return html``;
  const used = html`<span data-storage-of="${slug}"
    >${fmtBytes(st.usedBytes)}${st.limitBytes !== null ? ` of ${fmtBytes(st.limitBytes)}` : ''} used</span
  >`;
  if (st.warning === null) return used;
  const text =
    st.warning === 'over'
      ? 'over the storage limit: commits that add files and new attachments are refused'
      : `past ${st.warning} of the storage limit`;
  return html`${used} <strong class="state failed" data-storage-warning="${st.warning}">${text}</strong>`;
}

export const stateBadge = (slug: string, state: string) => html`<span class="state ${state}" data-state-of="${slug}">${state}</span>`;

function visibleProject(ctx: Ctx, req: Req, slug: string): { p: ProjectRow; role: Role | undefined } | undefined {
  if (s.slug.safeParse(slug).success === false) return undefined;
  return req.actor ? visibleTo(ctx, req.actor, slug) : undefined;
}

export const notFoundPage = (req: Req, res: Response) =>
  render(req, res, 404, {
    title: 'Not found',
    body: html`<h1>Not found</h1>
      <p>There is no such project, or you are not a member of it.</p>`,
  });

export const adminNav = (cur: string) =>
  html`<nav class="sub" aria-label="Operator">
    ${[
      ['/admin', 'Host'],
      ['/admin/projects', 'Projects'],
      ['/admin/users', 'Users'],
      ['/admin/waitlist', 'Waitlist and invites'],
    ].map(([h, l]) => html`<a href="${h!}" ${h === cur ? raw(' aria-current="page"') : ''}>${l!}</a>`)}
  </nav>`;

export const pageNo = (q: unknown) => Math.max(1, Math.min(100_000, Number.parseInt(String(q ?? '1'), 10) || 1));
export const qOf = (q: unknown) => (typeof q === 'string' ? q.slice(0, 100) : '');

export function pager(path: string, q: string, pageN: number, total: number): Html {
  const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
  const link = (n: number) => `${path}?q=${encodeURIComponent(q)}&page=${n}`;
  return html`<nav class="pager" aria-label="Pages">
    ${pageN > 1 ? html`<a href="${link(pageN - 1)}" rel="prev">Previous</a>` : ''}<span>page ${pageN} of ${pages} · ${total} in all</span
    >${pageN < pages ? html`<a href="${link(pageN + 1)}" rel="next">Next</a>` : ''}
  </nav>`;
}

export const searchForm = (path: string, q: string, label: string) =>
  html`<form method="get" action="${path}" class="search" role="search">
    <label for="q">${label}</label><input id="q" name="q" type="search" value="${q}" /><button type="submit">Search</button>
  </form>`;

/** The shared page machinery for one router: the pure helpers above, and those bound to the context. */
export function makeKit(ctx: Ctx) {
  return {
    ctx,
    DRAFT_NOTICE,
    adminNav,
    adminOnly: adminOnlyGuard(),
    // CSRF on every state-changing request, signed in or not (login CSRF too).
    csrf: requireCsrf(),
    loginForm,
    me,
    notFoundPage,
    pageNo,
    pager,
    qOf,
    render,
    searchForm,
    send,
    signedIn: signedInGuard(),
    stateBadge,
    storageLine: (p: ProjectRow) => storageLine(p.slug, storageOfProject(ctx, p.id)),
    svnUrl: (slug: string) => `${ctx.cfg.publicUrl}/svn/${slug}`,
    takeDraft: (req: Req) => takeDraft(ctx, req),
    tracUrl: (slug: string) => `${ctx.cfg.publicUrl}/trac/${slug}`,
    visibleProject: (req: Req, slug: string) => visibleProject(ctx, req, slug),
    welcomeBanner,
  };
}

/** Sign-in, sign-out, sign-up and the waitlist. */
import express, { type Response } from 'express';
import { saveDraft } from '../src/domain/sessions.js';
import { addressOf, countSignupAttempt, login, signup, joinWaitlist, ThrottledError } from '../src/domain/signin.js';
import { gate } from '../src/domain/capacity.js';
import { startSession, endSession } from '../src/http/auth.js';
import { DomainError } from '../src/errors.js';
import { SLUG_RULE, USER_RULE, VISIBILITIES } from '../src/names.js';
import { emptyForm, field, formError, formMeta, html, select, type FormState, type Html } from './html.js';
import * as s from '../src/http/schemas.js';
import { dashboard } from './dashboard.js';
import { projectPage } from './project.js';
import { formObject, typed, domainForm, parse, safeNext, type Kit, type Req } from './kit.js';

function loginPage(k: Kit, req: Req, res: Response) {
  if (k.me(req)) return res.redirect(303, safeNext(req.query.next) ?? '/dashboard');
  const notice = req.query.expired ? 'Your session has expired; sign in again.' : req.query.bye ? 'You are signed out.' : undefined;
  k.render(req, res, 200, { title: 'Sign in', notice, current: '/login', body: k.loginForm(req, emptyForm(), safeNext(req.query.next)) });
}

/** What was typed before an expired session, kept for the page signed in to. A malformed draft is dropped. */
function keepDraft(k: Kit, token: string, next: string, draft: string) {
  try {
    const fields = JSON.parse(draft) as unknown;
    if (fields && typeof fields === 'object' && Object.values(fields).every((v) => typeof v === 'string'))
      saveDraft(k.ctx, token, { path: next.split('?')[0]!, fields: fields as Record<string, string> });
  } catch {
    // A malformed draft is dropped; the sign-in itself succeeded.
  }
}

async function loginPost(k: Kit, req: Req, res: Response) {
  const b = req.body as Record<string, unknown>;
  const next = safeNext(b.next);
  const draft = typeof b.draft === 'string' && b.draft.length < 8000 ? b.draft : undefined;
  const values = { username: typeof b.username === 'string' ? b.username.slice(0, 200) : '' };
  const p = s.loginBody.safeParse({ username: b.username ?? '', password: b.password ?? '' });
  if (!p.success)
    return k.render(req, res, 400, {
      title: 'Sign in',
      body: k.loginForm(req, { values, errors: {}, error: 'Enter your user name and password.' }, next, draft),
    });
  try {
    const user = await login(k.ctx, p.data.username, p.data.password, addressOf(req));
    if (req.webCookies?.keelson_session) endSession(k.ctx, req, res);
    const token = startSession(k.ctx, req, res, user.id);
    if (draft && next) keepDraft(k, token, next, draft);
    res.redirect(303, next ?? '/dashboard');
  } catch (e) {
    if (!(e instanceof DomainError)) throw e;
    // Throttled (429) or the hash pool full (503): the caller is told when to come back.
    const retryAfter = (e as { retryAfter?: unknown }).retryAfter;
    if (typeof retryAfter === 'number') res.set('retry-after', String(Math.ceil(retryAfter)));
    k.render(req, res, e.status, { title: 'Sign in', body: k.loginForm(req, { values, errors: {}, error: e.message }, next, draft) });
  }
}

// ---------- sign up, waitlist ----------

function waitlistCard(req: Req, waitForm: FormState): Html {
  return html`<section class="card" id="waitlist" aria-labelledby="waitlist-h">
    <h2 id="waitlist-h">Join the waitlist</h2>
    <p>Leave your email address and the operator will send you an invite code when there is room.</p>
    <form method="post" action="/waitlist" novalidate>
      ${formMeta(req.csrfToken!, '/signup')}${formError(waitForm)}
      ${field(waitForm, 'wait-email', 'email', 'Email', { type: 'email', autocomplete: 'email', required: true })}
      <button type="submit">Join the waitlist</button>
    </form>
  </section>`;
}

function signupForm(req: Req, f: FormState, shut: boolean): Html {
  return html`<form method="post" action="/signup" class="card" novalidate aria-labelledby="signup-h">
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
  </form>`;
}

function signupPage(k: Kit, req: Req, f: FormState, waitForm: FormState = emptyForm(), notice?: string): Html {
  const g = gate(k.ctx.db, k.ctx.cfg);
  const shut = !g.signupOpen;
  const why =
    g.capacity.signupMode === 'closed'
      ? 'Signup is closed on this host for now.'
      : g.full
        ? `Keelson is not taking new projects right now: ${g.full}.`
        : 'Signup on this host is by invitation.';
  return html`<h1>${shut ? 'Sign up' : 'Get a Subversion repository and a Trac'}</h1>
    ${notice ? html`<p class="notice" role="status">${notice}</p>` : ''}
    ${
      shut
        ? html`<p class="notice warn" id="gate" role="status">${why} Join the waitlist, or sign up with an invite code.</p>
            ${waitlistCard(req, waitForm)}`
        : ''
    }
    ${signupForm(req, f, shut)}
    <p>Have an account? <a href="/login">Sign in</a>.</p>`;
}

/** Signup and the waitlist count against one per-address budget; false (and a 429 page) when it is spent. */
function signupBudget(k: Kit, req: Req, res: Response, again: (status: number, f: FormState) => void): boolean {
  try {
    countSignupAttempt(k.ctx, addressOf(req));
    return true;
  } catch (e) {
    if (!(e instanceof ThrottledError)) throw e;
    res.set('retry-after', String(e.retryAfter));
    again(429, { values: typed(req.body), errors: {}, error: e.message });
    return false;
  }
}

async function signupPost(k: Kit, req: Req, res: Response) {
  const values = typed(req.body);
  const again = (status: number, f: FormState) =>
    k.render(req, res, status, { title: 'Sign up', current: '/signup', body: signupPage(k, req, f) });
  if (!signupBudget(k, req, res, again)) return;
  const obj = formObject(req.body);
  // The first project is optional: without a name, its other fields (visibility has a default) are ignored.
  if (!(obj.project as Record<string, unknown> | undefined)?.slug) delete obj.project;
  const p = parse(s.signupBody, obj, values);
  if (!p.ok) return again(400, p.form);
  try {
    const out = await signup(k.ctx, p.data, addressOf(req));
    startSession(k.ctx, req, res, out.user.id);
    req.actor = { kind: 'user', label: `user:${out.user.name}`, user: out.user.name, admin: false };
    const welcome = { token: out.accessToken };
    if (out.project) return projectPage(k, req, res, out.project.slug, 201, { welcome, url: `/p/${out.project.slug}` });
    return dashboard(k, req, res, 201, { welcome, url: '/dashboard' });
  } catch (e) {
    if (!(e instanceof DomainError)) throw e;
    const retryAfter = (e as { retryAfter?: unknown }).retryAfter;
    if (typeof retryAfter === 'number') res.set('retry-after', String(Math.ceil(retryAfter)));
    again(e.status, domainForm(e, values, ['username', 'email', 'password', 'invite', 'project.slug']));
  }
}

function waitlistPost(k: Kit, req: Req, res: Response) {
  const values = typed(req.body);
  const again = (status: number, w: FormState, notice?: string) =>
    k.render(req, res, status, { title: 'Sign up', current: '/signup', body: signupPage(k, req, emptyForm(), w, notice) });
  if (!signupBudget(k, req, res, again)) return;
  const p = parse(s.waitlistBody, formObject(req.body), values);
  if (!p.ok) return again(400, p.form);
  joinWaitlist(k.ctx, p.data.email);
  again(202, emptyForm(), `Thank you: ${p.data.email} is on the waitlist. The operator will send you an invite code.`);
}

export function signinPages(k: Kit, r: express.Router) {
  r.get('/login', (req: Req, res) => loginPage(k, req, res));
  r.post('/login', k.csrf, (req: Req, res) => loginPost(k, req, res));
  r.post('/logout', k.csrf, (req: Req, res) => {
    endSession(k.ctx, req, res);
    res.redirect(303, '/login?bye=1');
  });
  r.get('/', (req: Req, res) => res.redirect(303, k.me(req) ? '/dashboard' : '/signup'));
  r.get('/signup', (req: Req, res) => {
    if (k.me(req)) return res.redirect(303, '/dashboard');
    k.render(req, res, 200, { title: 'Sign up', current: '/signup', body: signupPage(k, req, emptyForm()) });
  });
  r.post('/signup', k.csrf, (req: Req, res) => signupPost(k, req, res));
  r.post('/waitlist', k.csrf, (req: Req, res) => waitlistPost(k, req, res));
}

/** The account page: the access token and the web password. */
import express, { type Response } from 'express';
import { addressOf } from '../src/domain/signin.js';
import { getUser, rotateAccessToken, changePassword } from '../src/domain/users.js';
import { DomainError } from '../src/errors.js';
import { emptyForm, field, formError, formMeta, html, type FormState, type Html } from './html.js';
import * as s from '../src/http/schemas.js';
import { formObject, parse, type Kit, type Req } from './kit.js';

interface AccountOpts {
  form?: FormState;
  token?: string;
  notice?: string;
  url?: string;
}

function tokenCard(req: Req, token?: string): Html {
  return html`<section class="card" aria-labelledby="tok-h">
    <h2 id="tok-h">Subversion and Trac access token</h2>
    <p>
      Subversion and Trac do not take your web password: they take a generated access token, shown once when it is made. If you lost it, or
      it may have leaked, make a new one: the old one stops working within seconds.
    </p>
    ${
      token
        ? html`<p class="copyline">
              <code id="access-token">${token}</code> <button type="button" class="copy" data-copy="access-token">Copy</button>
            </p>
            <p class="notice" role="status">This is your new access token; it is shown only now.</p>`
        : ''
    }
    <form method="post" action="/account/token">
      ${formMeta(req.csrfToken!, '/account')}<button type="submit">Make a new access token</button>
    </form>
  </section>`;
}

function passwordForm(req: Req, f: FormState): Html {
  return html`<form method="post" action="/account/password" class="card" novalidate aria-labelledby="pw-h">
    ${formMeta(req.csrfToken!, '/account')}
    <h2 id="pw-h">Change password</h2>
    ${formError(f)}
    ${field(f, 'pw-current', 'current', 'Current password', { type: 'password', autocomplete: 'current-password', required: true })}
    ${field(f, 'pw-new', 'password', 'New password', { type: 'password', autocomplete: 'new-password', required: true, hint: s.PASSWORD_RULE })}
    <button type="submit">Change password</button>
  </form>`;
}

function accountPage(k: Kit, req: Req, res: Response, status: number, o: AccountOpts = {}) {
  const u = k.me(req)!;
  const row = getUser(k.ctx, u.name);
  k.render(req, res, status, {
    title: 'Account',
    current: '/account',
    notice: o.notice,
    url: o.url ?? '/account',
    body: html`<h1>Account</h1>
      <p>Signed in as <strong>${u.name}</strong> (${row.email})${u.admin ? ' · operator' : ''}.</p>
      ${tokenCard(req, o.token)} ${passwordForm(req, o.form ?? emptyForm())}`,
  });
}

async function passwordPost(k: Kit, req: Req, res: Response) {
  const u = k.me(req)!;
  const b = formObject(req.body, ['current']);
  const p = parse(s.changePasswordBody, { ...b, username: u.name }, {});
  if (!p.ok) return accountPage(k, req, res, 400, { form: p.form });
  try {
    await changePassword(k.ctx, req.actor!, p.data, addressOf(req), req.sessionToken);
  } catch (e) {
    if (!(e instanceof DomainError)) throw e;
    return accountPage(k, req, res, e.status === 401 ? 400 : e.status, {
      form: { values: {}, errors: { current: e.status === 401 ? 'this is not your current password' : e.message } },
    });
  }
  accountPage(k, req, res, 200, { notice: 'Your password is changed. Your other sessions are signed out.' });
}

export function accountPages(k: Kit, r: express.Router) {
  r.get('/account', k.signedIn, (req: Req, res) => accountPage(k, req, res, 200));
  r.post('/account/password', k.csrf, k.signedIn, (req: Req, res) => passwordPost(k, req, res));
  r.post('/account/token', k.csrf, k.signedIn, (req: Req, res) => {
    const token = rotateAccessToken(k.ctx, req.actor!, k.me(req)!.name);
    accountPage(k, req, res, 201, { token, url: '/account' });
  });
}

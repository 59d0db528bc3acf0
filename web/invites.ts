/** The operator's waitlist and invites page. */
import express, { type Response } from 'express';
import { listWaitlist, listInvites, createInvite } from '../src/domain/signin.js';
import { emptyForm, field, formError, formMeta, html, type FormState, type Html } from './html.js';
import * as s from '../src/http/schemas.js';
import { formObject, typed, parse, PAGE_SIZE, type Kit, type Req } from './kit.js';

interface WaitlistOpts {
  code?: { code: string; email: string | null };
  form?: FormState;
}
type Waiting = ReturnType<typeof listWaitlist>[number];
type Invite = ReturnType<typeof listInvites>[number];

const minute = (iso: string) => iso.slice(0, 16).replace('T', ' ');

function codeCard(code: { code: string; email: string | null }): Html {
  return html`<section class="card welcome" aria-labelledby="inv-h">
    <h2 id="inv-h">Invite code${code.email ? ` for ${code.email}` : ''}</h2>
    <p>Send this code to the person (there is no mail server; the code is also in Keelson's log). It is shown only now and works once.</p>
    <p class="copyline">
      <code id="invite-code">${code.code}</code> <button type="button" class="copy" data-copy="invite-code">Copy</button>
    </p>
  </section>`;
}

function waitingRow(req: Req, w: Waiting): Html {
  return html`<tr>
    <th scope="row">${w.email}</th>
    <td>${minute(w.created_at)}</td>
    <td>${w.invited_at ? minute(w.invited_at) : 'no'}</td>
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
  </tr>`;
}

function waitlistTable(req: Req, list: Waiting[]): Html {
  return html`<div class="scroll">
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
        ${list.map((w) => waitingRow(req, w))}
      </tbody>
    </table>
  </div>`;
}

/** The people waiting, paged. */
function waitlistCard(k: Kit, req: Req): Html {
  const waiting = listWaitlist(k.ctx);
  const pageN = k.pageNo(req.query.page);
  const list = waiting.slice((pageN - 1) * PAGE_SIZE, pageN * PAGE_SIZE);
  return html`<section class="card" aria-labelledby="wl-h">
    <h2 id="wl-h">Waitlist</h2>
    ${list.length ? waitlistTable(req, list) : html`<p>Nobody is waiting.</p>`}
    ${waiting.length > PAGE_SIZE ? k.pager('/admin/waitlist', '', pageN, waiting.length) : ''}
  </section>`;
}

function newInviteForm(req: Req, f: FormState): Html {
  return html`<form method="post" action="/admin/invites" class="card" novalidate aria-labelledby="ni-h">
    ${formMeta(req.csrfToken!, '/admin/waitlist')}
    <h2 id="ni-h">New invite code</h2>
    ${formError(f)} ${field(f, 'inv-email', 'email', 'For (email, optional)', { type: 'email' })}<button type="submit">
      Create invite code
    </button>
  </form>`;
}

const inviteRow = (i: Invite): Html =>
  html`<tr>
    <td>${i.email ?? '—'}</td>
    <td>${minute(i.created_at)}</td>
    <td>${i.created_by}</td>
    <td>${i.used_by ? `by ${i.used_by}` : 'not yet'}</td>
  </tr>`;

/** The latest 50 invite codes made. */
function invitesCard(invites: Invite[]): Html {
  return html`<section class="card" aria-labelledby="il-h">
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
                ${invites.map(inviteRow)}
              </tbody>
            </table>
          </div>`
        : html`<p>None yet.</p>`
    }
  </section>`;
}

function waitlistPage(k: Kit, req: Req, res: Response, status: number, o: WaitlistOpts = {}) {
  k.render(req, res, status, {
    title: 'Waitlist and invites',
    // A page answering a form post shows the page's own address (a reload must not post again).
    url: '/admin/waitlist',
    current: '/admin',
    body: html`<h1>Waitlist and invites</h1>
      ${k.adminNav('/admin/waitlist')} ${o.code ? codeCard(o.code) : ''} ${waitlistCard(k, req)}
      ${newInviteForm(req, o.form ?? emptyForm())} ${invitesCard(listInvites(k.ctx).slice(0, 50))}`,
  });
}

function invitePost(k: Kit, req: Req, res: Response) {
  const values = typed(req.body);
  const p = parse(s.inviteBody, formObject(req.body), values);
  if (!p.ok) return waitlistPage(k, req, res, 400, { form: p.form });
  const code = createInvite(k.ctx, req.actor!, p.data.email ?? null);
  waitlistPage(k, req, res, 201, { code: { code, email: p.data.email ?? null } });
}

export function invitePages(k: Kit, r: express.Router) {
  r.get('/admin/waitlist', k.signedIn, k.adminOnly, (req: Req, res) => waitlistPage(k, req, res, 200));
  r.post('/admin/invites', k.csrf, k.signedIn, k.adminOnly, (req: Req, res) => invitePost(k, req, res));
}

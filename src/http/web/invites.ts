/** The operator's waitlist and invites page. */
import express, { type Response } from 'express';
import { listWaitlist, listInvites, createInvite } from '../../domain/signin.js';
import { emptyForm, field, formError, formMeta, html, type FormState } from './html.js';
import * as s from '../schemas.js';
import { formObject, typed, parse, PAGE_SIZE, type Kit, type Req } from './kit.js';

export function invitePages(k: Kit, r: express.Router) {
  const { ctx, adminNav, adminOnly, csrf, pageNo, pager, render, signedIn } = k;
  function waitlistPage(
    req: Req,
    res: Response,
    status: number,
    o: { code?: { code: string; email: string | null }; form?: FormState } = {},
  ) {
    const waiting = listWaitlist(ctx);
    const pageN = pageNo(req.query.page);
    const list = waiting.slice((pageN - 1) * PAGE_SIZE, pageN * PAGE_SIZE);
    const invites = listInvites(ctx).slice(0, 50);
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
    const code = createInvite(ctx, req.actor!, p.data.email ?? null);
    waitlistPage(req, res, 201, { code: { code, email: p.data.email ?? null } });
  });
}

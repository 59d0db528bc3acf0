/** A project's page, and its owners' forms (members, settings, deletion). */
import express, { type Response } from 'express';
import { members, setMember, removeMember, updateProject, deleteProject, type ProjectRow } from '../../domain/projects.js';
import { projectUsage } from '../../domain/capacity.js';
import { type Actor } from '../../domain/context.js';
import { DomainError } from '../../errors.js';
import { ROLES, VISIBILITIES } from '../../names.js';
import { emptyForm, field, formError, formMeta, html, raw, select, type FormState } from './html.js';
import { fmtBytes } from '../../sys/bytes.js';
import * as s from '../schemas.js';
import { formObject, typed, domainForm, parse, MEMBERS_PAGE, type Kit, type Req } from './kit.js';

export function projectPages(k: Kit, r: express.Router) {
  const {
    ctx,
    DRAFT_NOTICE,
    csrf,
    me,
    notFoundPage,
    pageNo,
    render,
    signedIn,
    stateBadge,
    svnUrl,
    takeDraft,
    tracUrl,
    visibleProject,
    welcomeBanner,
  } = k;
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
    const ms = members(ctx, p.id);
    const draft = takeDraft(req);
    const fm = (k: string) => o.forms?.[k] ?? emptyForm(draft ?? {});
    const base = `/p/${p.slug}`;
    const usage = await projectUsage(ctx.cfg, p.slug);
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
  function ownerPost(path: string, handle: (req: Req, res: Response, p: ProjectRow, actor: Actor) => Promise<unknown> | unknown) {
    r.post(path, csrf, signedIn, async (req: Req, res) => {
      const v = visibleProject(req, String(req.params.slug));
      if (!v) return notFoundPage(req, res);
      if (v.role !== 'owner')
        return render(req, res, 403, {
          title: 'Not allowed',
          body: html`<h1>Not allowed</h1>
            <p>Only owners of ${v.p.slug} can change it.</p>`,
        });
      await handle(req, res, v.p, req.actor!);
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
      setMember(ctx, actor, p.slug, parsed.data.user, parsed.data.role);
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
      setMember(ctx, actor, p.slug, user.data, parsed.data.role);
      res.redirect(303, `/p/${p.slug}`);
    } catch (e) {
      await formFailed(req, res, p.slug, e, 'member', {}, []);
    }
  });
  ownerPost('/p/:slug/members/:user/remove', async (req, res, p, actor) => {
    const user = s.username.safeParse(req.params.user);
    try {
      if (!user.success) throw new DomainError(404, 'not_found', 'no such member');
      removeMember(ctx, actor, p.slug, user.data);
      res.redirect(303, `/p/${p.slug}`);
    } catch (e) {
      await formFailed(req, res, p.slug, e, 'member', {}, []);
    }
  });
  ownerPost('/p/:slug/settings', async (req, res, p, actor) => {
    const values = typed(req.body);
    const parsed = parse(s.patchProjectBody, formObject(req.body, ['title']), values);
    if (!parsed.ok) return projectPage(req, res, p.slug, 400, { forms: { settings: parsed.form } });
    updateProject(ctx, actor, p.slug, parsed.data);
    res.redirect(303, `/p/${p.slug}`);
  });
  ownerPost('/p/:slug/delete', async (req, res, p, actor) => {
    const values = typed(req.body);
    if (values.confirm !== p.slug)
      return projectPage(req, res, p.slug, 400, {
        forms: { delete: { values, errors: { confirm: `type ${p.slug} exactly to confirm` } } },
      });
    deleteProject(ctx, actor, p.slug);
    res.redirect(303, `/dashboard?deleted=${p.slug}`);
  });
  return { projectPage };
}

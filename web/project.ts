/** A project's page, and its owners' forms (members, settings, deletion). */
import express, { type Response } from 'express';
import { members, setMember, removeMember, updateProject, deleteProject, type ProjectRow } from '../src/domain/projects.js';
import { type Actor } from '../src/domain/context.js';
import { DomainError, ThrottledError } from '../src/errors.js';
import { ROLES, VISIBILITIES, type Role } from '../src/names.js';
import { emptyForm, field, formError, formMeta, html, raw, select, type FormState, type Html } from './html.js';
import * as s from '../src/http/schemas.js';
import { formObject, typed, domainForm, parse, MEMBERS_PAGE, type Kit, type Req } from './kit.js';

export interface ProjectPageOpts {
  welcome?: { token: string };
  url?: string;
  forms?: Record<string, FormState>;
  notice?: string;
}
type Member = ReturnType<typeof members>[number];

/** One form a row: "Change" posts the role, "Remove" posts the same form to the remove action. */
function roleForm(req: Req, base: string, m: Member): Html {
  return html`<form method="post" action="${base}/members/${m.user}/role" class="inline">
    ${formMeta(req.csrfToken!, base)}<label class="sr" for="role-${m.user}">Role of ${m.user}</label
    ><select id="role-${m.user}" name="role">
      ${ROLES.map((r) => html`<option${r === m.role ? raw(' selected') : ''}>${r}</option>`)}
    </select>
    <button type="submit" class="small">Change</button>
    <button type="submit" class="small danger" formaction="${base}/members/${m.user}/remove" aria-label="Remove ${m.user}">Remove</button>
  </form>`;
}

function memberRow(req: Req, base: string, owner: boolean, m: Member): Html {
  return html`<tr>
    <th scope="row">${m.user}</th>
    <td>${owner ? roleForm(req, base, m) : m.role}</td>
  </tr>`;
}

function memberPager(base: string, mPage: number, mPages: number, total: number): Html | string {
  if (mPages <= 1) return '';
  return html`<nav class="pager" aria-label="Member pages">
    ${mPage > 1 ? html`<a href="${base}?members=${mPage - 1}">Previous</a>` : ''}<span
      >members ${(mPage - 1) * MEMBERS_PAGE + 1}-${Math.min(total, mPage * MEMBERS_PAGE)} of ${total}</span
    >${mPage < mPages ? html`<a href="${base}?members=${mPage + 1}">Next</a>` : ''}
  </nav>`;
}

function addMemberForm(req: Req, base: string, f: FormState): Html {
  return html`<form method="post" action="${base}/members" novalidate aria-labelledby="add-h">
    ${formMeta(req.csrfToken!, base)}
    <h3 id="add-h">Add a member</h3>
    ${formError(f)} ${field(f, 'add-user', 'user', 'User name', { autocomplete: 'off', required: true })}
    ${select(f, 'add-role', 'role', 'Role', ROLES, 'developer')} <button type="submit">Add member</button>
  </form>`;
}

/** Members are paged (40 a page) so the page stays within its size budget for any team size. */
function membersCard(k: Kit, req: Req, p: ProjectRow, owner: boolean, f: FormState): Html {
  const base = `/p/${p.slug}`;
  const ms = members(k.ctx, p.id);
  const mPages = Math.max(1, Math.ceil(ms.length / MEMBERS_PAGE));
  const mPage = Math.min(mPages, k.pageNo(req.query.members));
  const shown = ms.slice((mPage - 1) * MEMBERS_PAGE, mPage * MEMBERS_PAGE);
  return html`<section class="card" aria-labelledby="m-h">
    <h2 id="m-h">Members</h2>
    <table id="members">
      <thead>
        <tr>
          <th scope="col">user</th>
          <th scope="col">role</th>
        </tr>
      </thead>
      <tbody>
        ${shown.map((m) => memberRow(req, base, owner, m))}
      </tbody>
    </table>
    ${memberPager(base, mPage, mPages, ms.length)}
    ${owner ? addMemberForm(req, base, f) : html`<p class="muted">Only owners can change members.</p>`}
  </section>`;
}

function checkoutCard(k: Kit, slug: string, user: string): Html {
  return html`<section class="card" aria-labelledby="co-h">
    <h2 id="co-h">Check out</h2>
    <p class="copyline">
      <code id="checkout">svn checkout ${k.svnUrl(slug)} --username ${user}</code>
      <button type="button" class="copy" data-copy="checkout">Copy</button>
    </p>
    <p>
      Password: your access token (see <a href="/account">Account</a>). Trac:
      <a id="trac-link" href="${k.tracUrl(slug)}">${k.tracUrl(slug)}</a>
    </p>
  </section>`;
}

const pathRulesCard = (p: ProjectRow, owner: boolean): Html =>
  html`<section class="card" id="path-rules" data-slug="${p.slug}" data-editable="${owner ? '1' : ''}" aria-labelledby="pr-h">
    <h2 id="pr-h">Path rules</h2>
    <p class="muted" data-status>Loading path rules…</p>
    <noscript><p>Path rules need JavaScript on this page.</p></noscript>
  </section>`;

function settingsForm(req: Req, p: ProjectRow, f: FormState): Html {
  const base = `/p/${p.slug}`;
  return html`<form method="post" action="${base}/settings" class="card" novalidate aria-labelledby="set-h">
    ${formMeta(req.csrfToken!, base)}
    <h2 id="set-h">Settings</h2>
    ${formError(f)} ${field(f, 'set-title', 'title', 'Title', { required: true })}
    ${select(f, 'set-visibility', 'visibility', 'Visibility', VISIBILITIES, p.visibility)}
    <p class="hint">Public: anyone may read the repository and Trac; only members write.</p>
    <button type="submit">Save</button>
  </form>`;
}

function dangerZone(req: Req, p: ProjectRow, f: FormState): Html {
  const base = `/p/${p.slug}`;
  return html`<form method="post" action="${base}/delete" class="card danger-zone" novalidate aria-labelledby="del-h">
    ${formMeta(req.csrfToken!, base)}
    <h2 id="del-h">Delete this project</h2>
    <p>This removes the repository and the Trac environment. Type the project name <strong>${p.slug}</strong> to confirm.</p>
    ${formError(f)} ${field(f, 'del-confirm', 'confirm', 'Project name', { autocomplete: 'off', required: true })}
    <button type="submit" class="danger">Delete ${p.slug}</button>
  </form>`;
}

function projectHeader(k: Kit, p: ProjectRow, role: Role | undefined): Html {
  return html`<h1>${p.title} <small>${p.slug}</small></h1>
    <p>
      ${k.stateBadge(p.slug, p.state)} · ${p.visibility} · your role: <strong id="my-role">${role ?? 'none (public project)'}</strong> ·
      ${role ? k.storageLine(p) : ''}
    </p>
    ${p.last_error && role === 'owner' ? html`<p class="error banner">Last provisioning error: ${p.last_error}</p>` : ''}`;
}

export async function projectPage(k: Kit, req: Req, res: Response, slug: string, status: number, o: ProjectPageOpts = {}) {
  const v = k.visibleProject(req, slug);
  if (!v) return k.notFoundPage(req, res);
  const { p, role } = v;
  const owner = role === 'owner';
  const u = k.me(req)!;
  const draft = k.takeDraft(req);
  const fm = (key: string) => o.forms?.[key] ?? emptyForm(draft ?? {});
  const fSettings = o.forms?.settings ?? emptyForm({ title: p.title, visibility: p.visibility, ...(draft ?? {}) });
  k.render(req, res, status, {
    title: p.title,
    url: o.url ?? `/p/${p.slug}`,
    notice: o.notice ?? (draft && Object.keys(draft).length ? k.DRAFT_NOTICE : undefined),
    body: html`${o.welcome ? k.welcomeBanner(u.name, o.welcome.token, k.svnUrl(p.slug)) : ''} ${projectHeader(k, p, role)}
    ${checkoutCard(k, p.slug, u.name)} ${membersCard(k, req, p, owner, fm('member'))} ${pathRulesCard(p, owner)}
    ${owner ? html`${settingsForm(req, p, fSettings)} ${dangerZone(req, p, fm('delete'))}` : ''}`,
  });
}

type OwnerHandler = (k: Kit, req: Req, res: Response, p: ProjectRow, actor: Actor) => Promise<unknown> | unknown;

/** Owner-only project form posts: 404 if the project is not visible, 403 if not an owner. */
function ownerPost(k: Kit, r: express.Router, path: string, handle: OwnerHandler) {
  r.post(path, k.csrf, k.signedIn, async (req: Req, res) => {
    const v = k.visibleProject(req, String(req.params.slug));
    if (!v) return k.notFoundPage(req, res);
    if (v.role !== 'owner')
      return k.render(req, res, 403, {
        title: 'Not allowed',
        body: html`<h1>Not allowed</h1>
          <p>Only owners of ${v.p.slug} can change it.</p>`,
      });
    await handle(k, req, res, v.p, req.actor!);
  });
}

async function formFailed(
  k: Kit,
  req: Req,
  res: Response,
  slug: string,
  e: unknown,
  key: string,
  values: Record<string, string>,
  fields: string[],
) {
  if (!(e instanceof DomainError)) throw e;
  if (e instanceof ThrottledError) res.set('retry-after', String(e.retryAfter));
  await projectPage(k, req, res, slug, e.status, { forms: { [key]: domainForm(e, values, fields) } });
}

const addMember: OwnerHandler = async (k, req, res, p, actor) => {
  const values = typed(req.body);
  const parsed = parse(s.memberBody.extend({ user: s.username }), formObject(req.body), values);
  if (!parsed.ok) return projectPage(k, req, res, p.slug, 400, { forms: { member: parsed.form } });
  try {
    setMember(k.ctx, actor, p.slug, parsed.data.user, parsed.data.role);
    res.redirect(303, `/p/${p.slug}`);
  } catch (e) {
    await formFailed(k, req, res, p.slug, e, 'member', values, ['user', 'role']);
  }
};

const changeRole: OwnerHandler = async (k, req, res, p, actor) => {
  const parsed = parse(s.memberBody, formObject(req.body), {});
  const user = s.username.safeParse(req.params.user);
  if (!parsed.ok || !user.success)
    return projectPage(k, req, res, p.slug, 400, { forms: { member: { values: {}, errors: {}, error: 'choose one of the roles' } } });
  try {
    setMember(k.ctx, actor, p.slug, user.data, parsed.data.role);
    res.redirect(303, `/p/${p.slug}`);
  } catch (e) {
    await formFailed(k, req, res, p.slug, e, 'member', {}, []);
  }
};

const removeMemberPost: OwnerHandler = async (k, req, res, p, actor) => {
  const user = s.username.safeParse(req.params.user);
  try {
    if (!user.success) throw new DomainError(404, 'not_found', 'no such member');
    removeMember(k.ctx, actor, p.slug, user.data);
    res.redirect(303, `/p/${p.slug}`);
  } catch (e) {
    await formFailed(k, req, res, p.slug, e, 'member', {}, []);
  }
};

const saveSettings: OwnerHandler = async (k, req, res, p, actor) => {
  const values = typed(req.body);
  const parsed = parse(s.patchProjectBody, formObject(req.body, ['title']), values);
  if (!parsed.ok) return projectPage(k, req, res, p.slug, 400, { forms: { settings: parsed.form } });
  try {
    updateProject(k.ctx, actor, p.slug, parsed.data);
    res.redirect(303, `/p/${p.slug}`);
  } catch (e) {
    await formFailed(k, req, res, p.slug, e, 'settings', values, ['title', 'visibility']);
  }
};

const deletePost: OwnerHandler = async (k, req, res, p, actor) => {
  const values = typed(req.body);
  if (values.confirm !== p.slug)
    return projectPage(k, req, res, p.slug, 400, {
      forms: { delete: { values, errors: { confirm: `type ${p.slug} exactly to confirm` } } },
    });
  deleteProject(k.ctx, actor, p.slug);
  res.redirect(303, `/dashboard?deleted=${p.slug}`);
};

export function projectPages(k: Kit, r: express.Router) {
  r.get('/p/:slug', k.signedIn, (req: Req, res) => projectPage(k, req, res, String(req.params.slug), 200));
  ownerPost(k, r, '/p/:slug/members', addMember);
  ownerPost(k, r, '/p/:slug/members/:user/role', changeRole);
  ownerPost(k, r, '/p/:slug/members/:user/remove', removeMemberPost);
  ownerPost(k, r, '/p/:slug/settings', saveSettings);
  ownerPost(k, r, '/p/:slug/delete', deletePost);
}

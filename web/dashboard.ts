/** A user's own projects and the new-project form. */
import express, { type Response } from 'express';
import { memberProjects, members, createProject, type ProjectRow } from '../src/domain/projects.js';
import { gate } from '../src/domain/capacity.js';
import { DomainError, ThrottledError } from '../src/errors.js';
import { projectAllowance } from '../src/domain/limits.js';
import { SLUG_RULE, VISIBILITIES } from '../src/names.js';
import { emptyForm, field, formError, formMeta, html, select, type FormState, type Html } from './html.js';
import * as s from '../src/http/schemas.js';
import { formObject, typed, domainForm, parse, PAGE_SIZE, type Kit, type Req } from './kit.js';

export interface DashboardOpts {
  welcome?: { token: string };
  url?: string;
  form?: FormState;
  notice?: string;
}

async function projectItem(k: Kit, user: string, p: ProjectRow): Promise<Html> {
  const role = members(k.ctx, p.id).find((m) => m.user === user)?.role ?? '';
  return html`<li class="project card">
    <h3><a href="/p/${p.slug}">${p.title}</a> <small>${p.slug}</small></h3>
    <p>${k.stateBadge(p.slug, p.state)} · <span class="role">${role}</span> · ${p.visibility} · ${k.storageLine(p)}</p>
    <p class="copyline">
      <code id="co-${p.slug}">svn checkout ${k.svnUrl(p.slug)}</code>
      <button type="button" class="copy" data-copy="co-${p.slug}">Copy</button>
    </p>
    <p><a href="${k.tracUrl(p.slug)}">Trac: ${k.tracUrl(p.slug)}</a></p>
  </li>`;
}

/** How many projects the user owns against their own limit (none shown for operators or without a limit). */
function allowanceLine(k: Kit, req: Req): Html | string {
  const a = projectAllowance(k.ctx, req.actor!, k.me(req)!.name);
  if (a.limit === null) return '';
  const full = a.owned >= a.limit;
  const text = `You own ${a.owned} of at most ${a.limit} project${a.limit === 1 ? '' : 's'}`;
  return html`<p class="${full ? 'notice warn' : 'hint'}" id="project-allowance">
    ${text}${full ? ': delete one or ask the operator to raise your limit' : ''}.
  </p>`;
}

function newProjectForm(k: Kit, req: Req, admin: boolean, f: FormState): Html {
  const g = gate(k.ctx.db, k.ctx.cfg);
  return g.full && !admin
    ? html`<p class="notice warn" id="gate">New projects are paused on this host (${g.full}).</p>`
    : html`<form method="post" action="/projects" class="card" novalidate aria-labelledby="new-h">
        ${formMeta(req.csrfToken!, '/dashboard')}
        <h2 id="new-h">New project</h2>
        ${allowanceLine(k, req)} ${formError(f)}
        ${field(f, 'np-slug', 'slug', 'Project name', { hint: SLUG_RULE, required: true, autocomplete: 'off' })}
        ${field(f, 'np-title', 'title', 'Title')} ${select(f, 'np-visibility', 'visibility', 'Visibility', VISIBILITIES, 'private')}
        <button type="submit">Create project</button>
      </form>`;
}

export async function dashboard(k: Kit, req: Req, res: Response, status: number, o: DashboardOpts = {}) {
  const u = k.me(req)!;
  // Paged like every list here, so the page keeps to its size budget.
  const all = memberProjects(k.ctx, u.name);
  const pageN = k.pageNo(req.query.page);
  const projects = all.slice((pageN - 1) * PAGE_SIZE, pageN * PAGE_SIZE);
  const rows = await Promise.all(projects.map((p) => projectItem(k, u.name, p)));
  const f = o.form ?? emptyForm(k.takeDraft(req) ?? {});
  const drafted = !o.form && Object.keys(f.values).length > 0;
  k.render(req, res, status, {
    title: 'My projects',
    current: '/dashboard',
    url: o.url ?? '/dashboard',
    notice: o.notice ?? (drafted ? k.DRAFT_NOTICE : undefined),
    body: html`${o.welcome ? k.welcomeBanner(u.name, o.welcome.token) : ''}
      <h1>My projects</h1>
      ${
        rows.length
          ? html`<ul class="projects">
              ${rows}
            </ul>`
          : html`<p>You are not in any project yet.</p>`
      }
      ${all.length > PAGE_SIZE ? k.pager('/dashboard', '', pageN, all.length) : ''} ${newProjectForm(k, req, u.admin, f)}`,
  });
}

async function createProjectPost(k: Kit, req: Req, res: Response) {
  const values = typed(req.body);
  const p = parse(s.ownProjectBody.omit({ owner: true }), formObject(req.body), values);
  if (!p.ok) return dashboard(k, req, res, 400, { form: p.form });
  try {
    const proj = createProject(k.ctx, req.actor!, p.data);
    res.redirect(303, `/p/${proj.slug}`);
  } catch (e) {
    if (!(e instanceof DomainError)) throw e;
    if (e instanceof ThrottledError) res.set('retry-after', String(e.retryAfter));
    const f = domainForm(e, values, ['slug', 'title', 'visibility']);
    if (e.status === 409 && !f.errors.slug) f.errors.slug = e.message;
    await dashboard(k, req, res, e.status, { form: f });
  }
}

export function dashboardPages(k: Kit, r: express.Router) {
  r.get('/dashboard', k.signedIn, async (req: Req, res) => {
    const notice = typeof req.query.deleted === 'string' ? `Project ${req.query.deleted.slice(0, 40)} is being deleted.` : undefined;
    await dashboard(k, req, res, 200, { notice });
  });
  r.post('/projects', k.csrf, k.signedIn, (req: Req, res) => createProjectPost(k, req, res));
}

/** A user's own projects and the new-project form. */
import express, { type Response } from 'express';
import { memberProjects, members, createProject } from '../../domain/projects.js';
import { gate, projectUsage } from '../../domain/capacity.js';
import { DomainError } from '../../errors.js';
import { SLUG_RULE, VISIBILITIES } from '../../names.js';
import { emptyForm, field, formError, formMeta, html, select, type FormState } from './html.js';
import { fmtBytes } from '../../sys/bytes.js';
import * as s from '../schemas.js';
import { formObject, typed, domainForm, parse, PAGE_SIZE, type Kit, type Req } from './kit.js';

export function dashboardPages(k: Kit, r: express.Router) {
  const { ctx, DRAFT_NOTICE, csrf, me, pageNo, pager, render, signedIn, stateBadge, svnUrl, takeDraft, tracUrl, welcomeBanner } = k;
  async function dashboard(
    req: Req,
    res: Response,
    status: number,
    o: { welcome?: { token: string }; url?: string; form?: FormState; notice?: string } = {},
  ) {
    const u = me(req)!;
    // Paged like every list here, so the page keeps to its size budget.
    const all = memberProjects(ctx, u.name);
    const pageN = pageNo(req.query.page);
    const projects = all.slice((pageN - 1) * PAGE_SIZE, pageN * PAGE_SIZE);
    const rows = await Promise.all(
      projects.map(async (p) => {
        const role = members(ctx, p.id).find((m) => m.user === u.name)?.role ?? '';
        const usage = await projectUsage(ctx.cfg, p.slug);
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
    const g = gate(ctx.db, ctx.cfg);
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
    const values = typed(req.body);
    const p = parse(s.ownProjectBody.omit({ owner: true }), formObject(req.body), values);
    if (!p.ok) return dashboard(req, res, 400, { form: p.form });
    try {
      const proj = createProject(ctx, req.actor!, p.data);
      res.redirect(303, `/p/${proj.slug}`);
    } catch (e) {
      if (!(e instanceof DomainError)) throw e;
      const f = domainForm(e, values, ['slug', 'title', 'visibility']);
      if (e.status === 409 && !f.errors.slug) f.errors.slug = e.message;
      await dashboard(req, res, e.status, { form: f });
    }
  });
  return { dashboard };
}

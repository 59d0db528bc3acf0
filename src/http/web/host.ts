/** The operator's pages: the capacity gate and disk chart, every project, every user. */
import express, { type Response } from 'express';
import { searchUsers, setUserDisabled } from '../../domain/users.js';
import { members, setSuspended, searchProjects } from '../../domain/projects.js';
import { gate, projectUsage, diskSamples, setCapacity, SIGNUP_MODES } from '../../domain/capacity.js';
import { DomainError } from '../../errors.js';
import { emptyForm, field, formError, formMeta, html, select, type FormState } from './html.js';
import { fmtBytes } from '../../sys/bytes.js';
import { diskChart } from './chart.js';
import { type ZodType } from 'zod';
import * as s from '../schemas.js';
import { formObject, typed, parse, PAGE_SIZE, type Kit, type Req } from './kit.js';

export function hostPages(k: Kit, r: express.Router) {
  const { ctx, adminNav, adminOnly, csrf, notFoundPage, pageNo, pager, qOf, render, searchForm, signedIn, stateBadge } = k;
  function hostPage(req: Req, res: Response, status: number, f?: FormState, notice?: string) {
    const g = gate(ctx.db, ctx.cfg);
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
            ${select(form, 'cap-mode', 'signupMode', 'Signup', SIGNUP_MODES, c.signupMode)} <button type="submit">Save</button>
          </form>
        </section>
        <section class="card" aria-labelledby="disk-h">
          <h2 id="disk-h">Disk usage</h2>
          ${diskChart(diskSamples(ctx.db, now - span), now, span)}
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
    setCapacity(ctx, req.actor!, p.data);
    hostPage(req, res, 200, undefined, 'Capacity settings saved.');
  });
  r.get('/admin/projects', signedIn, adminOnly, async (req: Req, res) => {
    const q = qOf(req.query.q);
    const n = pageNo(req.query.page);
    const { rows, total } = searchProjects(ctx, req.actor!, q, PAGE_SIZE, (n - 1) * PAGE_SIZE);
    const body = await Promise.all(
      rows.map(async (p) => {
        const owners = members(ctx, p.id)
          .filter((m) => m.role === 'owner')
          .map((m) => m.user)
          .join(', ');
        const act = p.state === 'suspended' ? 'resume' : p.state === 'active' ? 'suspend' : '';
        return html`<tr>
          <th scope="row"><a href="/p/${p.slug}">${p.slug}</a></th>
          <td>${p.title}</td>
          <td>${stateBadge(p.slug, p.state)}</td>
          <td>${owners}</td>
          <td>${fmtBytes(await projectUsage(ctx.cfg, p.slug))}</td>
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
    setSuspended(ctx, req.actor!, slug, act === 'suspend');
    return `${slug}: ${act === 'suspend' ? 'suspended' : 'resumed'}`;
  });

  r.get('/admin/users', signedIn, adminOnly, (req: Req, res) => {
    const q = qOf(req.query.q);
    const n = pageNo(req.query.page);
    const { rows, total } = searchUsers(ctx, req.actor!, q, PAGE_SIZE, (n - 1) * PAGE_SIZE);
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
                  <td>${u.projects}</td>
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
    setUserDisabled(ctx, req.actor!, name, act === 'disable');
    return `${name}: ${act}d`;
  });
}

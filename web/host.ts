/** The operator's pages: the capacity gate and disk chart, every project, every user. */
import express, { type Response } from 'express';
import { searchUsers, setUserDisabled } from '../src/domain/users.js';
import { members, setSuspended, searchProjects, type ProjectRow } from '../src/domain/projects.js';
import { gate, diskSamples, setCapacity, SIGNUP_MODES } from '../src/domain/capacity.js';
import { setStorageLimit, storageOfProject } from '../src/domain/storage.js';
import { DomainError, InputError } from '../src/errors.js';
import { emptyForm, field, formError, formMeta, html, type FormState, type Html, select } from './html.js';
import { fmtBytes } from '../src/sys/bytes.js';
import { diskChart } from './chart.js';
import { type ZodType } from 'zod';
import * as s from '../src/http/schemas.js';
import { formObject, typed, parse, PAGE_SIZE, type Kit, type Req } from './kit.js';

type Gate = ReturnType<typeof gate>;

function gateCard(req: Req, g: Gate, form: FormState): Html {
  const c = g.capacity;
  return html`<section class="card" aria-labelledby="gate-h">
    <h2 id="gate-h">Capacity gate</h2>
    <p id="gate-state">
      ${g.projects} project(s)${c.maxProjects !== null ? ` of at most ${c.maxProjects}` : ', no limit'} · ${fmtBytes(g.freeBytes)} free on
      the data volume${c.minFreeBytes ? ` (floor ${fmtBytes(c.minFreeBytes)})` : ''} · signup ${c.signupMode} ·
      ${g.full ? html`<strong class="state failed">closed to new projects: ${g.full}</strong>` : html`<strong class="state active">taking new projects</strong>`}
    </p>
    <form method="post" action="/admin/capacity" novalidate>
      ${formMeta(req.csrfToken!, '/admin')}${formError(form)}
      ${field(form, 'cap-max', 'maxProjects', 'Maximum projects', { inputmode: 'numeric', hint: 'empty for no limit' })}
      ${field(form, 'cap-free', 'minFreeBytes', 'Minimum free bytes on the data volume', { inputmode: 'numeric', hint: 'new projects stop below this; 0 for no floor' })}
      ${field(form, 'cap-storage', 'projectStorageLimitBytes', 'Storage limit of a project (bytes)', { inputmode: 'numeric', hint: 'repository and Trac together, for projects without their own; empty for no limit' })}
      ${field(form, 'cap-per-user', 'maxProjectsPerUser', 'Projects one user may own', { inputmode: 'numeric', hint: 'operators are exempt; empty for no limit' })}
      ${select(form, 'cap-mode', 'signupMode', 'Signup', SIGNUP_MODES, c.signupMode)} <button type="submit">Save</button>
    </form>
  </section>`;
}

function hostPage(k: Kit, req: Req, res: Response, status: number, f?: FormState, notice?: string) {
  const g = gate(k.ctx.db, k.ctx.cfg);
  const c = g.capacity;
  const form =
    f ??
    emptyForm({
      maxProjects: c.maxProjects === null ? '' : String(c.maxProjects),
      minFreeBytes: String(c.minFreeBytes),
      signupMode: c.signupMode,
      projectStorageLimitBytes: c.projectStorageLimitBytes === null ? '' : String(c.projectStorageLimitBytes),
      maxProjectsPerUser: c.maxProjectsPerUser === null ? '' : String(c.maxProjectsPerUser),
    });
  const now = Date.now();
  const span = 30 * 86_400_000;
  k.render(req, res, status, {
    title: 'Operator',
    url: '/admin',
    current: '/admin',
    notice,
    body: html`<h1>Operator</h1>
      ${k.adminNav('/admin')} ${gateCard(req, g, form)}
      <section class="card" aria-labelledby="disk-h">
        <h2 id="disk-h">Disk usage</h2>
        ${diskChart(diskSamples(k.ctx.db, now - span), now, span)}
      </section>
      <section class="card" id="backups" aria-labelledby="bk-h">
        <h2 id="bk-h">Backups</h2>
        <p class="muted" data-status>Loading backups…</p>
        <noscript><p>The backup panel needs JavaScript.</p></noscript>
      </section>`,
  });
}

function capacityPost(k: Kit, req: Req, res: Response) {
  const values = typed(req.body);
  const nullable = ['maxProjects', 'projectStorageLimitBytes', 'maxProjectsPerUser'];
  const b = formObject(req.body, nullable);
  // An empty box is "no limit"; a box the form did not send keeps its value.
  for (const k of nullable) if (b[k] === '' || (k === 'maxProjects' && b[k] === undefined)) b[k] = null;
  const p = parse(s.capacityBody, b, values);
  if (!p.ok) return hostPage(k, req, res, 400, p.form);
  setCapacity(k.ctx, req.actor!, p.data);
  hostPage(k, req, res, 200, undefined, 'Capacity settings saved.');
}

/** A row's action button (suspend, enable...) posting back to the list it is on. */
function rowAction(req: Req, list: string, name: string, act: string, danger: boolean): Html {
  return html`<form method="post" action="${list}/${name}/${act}" class="inline">
    ${formMeta(req.csrfToken!, list)}<button type="submit" class="small${danger ? ' danger' : ''}" aria-label="${act} ${name}">
      ${act}
    </button>
  </form>`;
}

async function projectRow(k: Kit, req: Req, p: ProjectRow): Promise<Html> {
  const owners = members(k.ctx, p.id)
    .filter((m) => m.role === 'owner')
    .map((m) => m.user)
    .join(', ');
  const act = p.state === 'suspended' ? 'resume' : p.state === 'active' ? 'suspend' : '';
  const own = storageOfProject(k.ctx, p.id)?.ownLimitBytes ?? null;
  return html`<tr>
    <th scope="row"><a href="/p/${p.slug}">${p.slug}</a></th>
    <td>${p.title}</td>
    <td>${k.stateBadge(p.slug, p.state)}</td>
    <td>${owners}</td>
    <td>
      ${k.storageLine(p)}
      <form method="post" action="/admin/projects/${p.slug}/storage" class="inline">
        ${formMeta(req.csrfToken!, '/admin/projects')}
        <label for="lim-${p.slug}" class="sr">storage limit of ${p.slug}</label>
        <input id="lim-${p.slug}" name="storageLimit" size="8" value="${own === null ? '' : String(own)}" placeholder="default" />
        <button type="submit" class="small">set limit</button>
      </form>
    </td>
    <td>${p.created_at.slice(0, 10)}</td>
    <td>${act ? rowAction(req, '/admin/projects', p.slug, act, act === 'suspend') : ''}</td>
  </tr>`;
}

/** An operator's searchable, paged list (projects, users): its table's id, column heads and rows. */
function adminList(k: Kit, req: Req, res: Response, o: { title: string; path: string; q: string; n: number; total: number; table: Html }) {
  k.render(req, res, 200, {
    title: o.title,
    current: '/admin',
    notice: typeof req.query.done === 'string' ? req.query.done.slice(0, 100) : undefined,
    body: html`<h1>${o.title}</h1>
      ${k.adminNav(o.path)}${k.searchForm(o.path, o.q, `Search ${o.title.toLowerCase()}`)}
      <div class="scroll">${o.table}</div>
      ${k.pager(o.path, o.q, o.n, o.total)}`,
  });
}

/** A list's table: its id, its column heads (the last one, for the row actions, is added) and its rows. */
function listTable(id: string, heads: Html, rows: Html[]): Html {
  return html`<table id="${id}">
    <thead>
      <tr>
        ${heads}
        <th scope="col"><span class="sr">actions</span></th>
      </tr>
    </thead>
    <tbody>
      ${rows}
    </tbody>
  </table>`;
}

async function projectsPage(k: Kit, req: Req, res: Response) {
  const q = k.qOf(req.query.q);
  const n = k.pageNo(req.query.page);
  const { rows, total } = searchProjects(k.ctx, req.actor!, q, PAGE_SIZE, (n - 1) * PAGE_SIZE);
  const body = await Promise.all(rows.map((p) => projectRow(k, req, p)));
  const cols = html`<th scope="col">slug</th>
    <th scope="col">title</th>
    <th scope="col">state</th>
    <th scope="col">owners</th>
    <th scope="col">storage</th>
    <th scope="col">created</th>`;
  adminList(k, req, res, { title: 'Projects', path: '/admin/projects', q, n, total, table: listTable('all-projects', cols, body) });
}

function usersPage(k: Kit, req: Req, res: Response) {
  const q = k.qOf(req.query.q);
  const n = k.pageNo(req.query.page);
  const { rows, total } = searchUsers(k.ctx, req.actor!, q, PAGE_SIZE, (n - 1) * PAGE_SIZE);
  const body = rows.map((u) => {
    const act = u.disabled_at ? 'enable' : 'disable';
    return html`<tr>
      <th scope="row">${u.name}</th>
      <td>${u.email}</td>
      <td>${u.projects}</td>
      <td>${u.is_admin ? 'yes' : ''}</td>
      <td>${u.created_at.slice(0, 10)}</td>
      <td>${u.disabled_at ? 'disabled' : 'active'}</td>
      <td>${rowAction(req, '/admin/users', u.name, act, act === 'disable')}</td>
    </tr>`;
  });
  const cols = html`<th scope="col">name</th>
    <th scope="col">email</th>
    <th scope="col">projects</th>
    <th scope="col">operator</th>
    <th scope="col">created</th>
    <th scope="col">state</th>`;
  adminList(k, req, res, { title: 'Users', path: '/admin/users', q, n, total, table: listTable('all-users', cols, body) });
}

/**
 * An operator's action on one row of an admin list (suspend a project, disable a user): the name
 * from the URL is checked with its schema, the action runs, and the list comes back with a notice,
 * or an error page with the domain error's status.
 */
function adminAction<T>(
  k: Kit,
  r: express.Router,
  list: 'projects' | 'users',
  param: string,
  schema: ZodType<T>,
  acts: readonly string[],
  perform: (req: Req, name: T, act: string) => string,
) {
  const title = list === 'projects' ? 'Projects' : 'Users';
  for (const act of acts) {
    r.post(`/admin/${list}/:${param}/${act}`, k.csrf, k.signedIn, k.adminOnly, (req: Req, res) => {
      const name = schema.safeParse(req.params[param]);
      if (!name.success) return k.notFoundPage(req, res);
      try {
        const done = perform(req, name.data, act);
        res.redirect(303, `/admin/${list}?done=${encodeURIComponent(done)}`);
      } catch (e) {
        if (!(e instanceof DomainError)) throw e;
        k.render(req, res, e.status, {
          title,
          body: html`<h1>${title}</h1>
            <p class="error banner" role="alert">${e.message}</p>
            <p><a href="/admin/${list}">Back</a></p>`,
        });
      }
    });
  }
}

export function hostPages(k: Kit, r: express.Router) {
  const admin = [k.signedIn, k.adminOnly];
  r.get('/admin', ...admin, (req: Req, res) => hostPage(k, req, res, 200));
  r.post('/admin/capacity', k.csrf, ...admin, (req: Req, res) => capacityPost(k, req, res));
  r.get('/admin/projects', ...admin, (req: Req, res) => projectsPage(k, req, res));
  adminAction(k, r, 'projects', 'slug', s.slug, ['suspend', 'resume'], (req, slug, act) => {
    setSuspended(k.ctx, req.actor!, slug, act === 'suspend');
    return `${slug}: ${act === 'suspend' ? 'suspended' : 'resumed'}`;
  });
  // A project's own storage limit: bytes (or 512M, 2G), empty for the operator's default.
  adminAction(k, r, 'projects', 'slug', s.slug, ['storage'], (req, slug) => {
    const limit = s.storageLimitText.safeParse((req.body as Record<string, unknown> | undefined)?.storageLimit ?? '');
    if (!limit.success) throw new InputError(`storage limit: ${limit.error.issues[0]?.message ?? 'not a byte count'}`);
    const st = setStorageLimit(k.ctx, req.actor!, slug, limit.data);
    return `${slug}: storage limit ${st.ownLimitBytes === null ? 'follows the default' : fmtBytes(st.ownLimitBytes)}`;
  });
  r.get('/admin/users', ...admin, (req: Req, res) => usersPage(k, req, res));
  // Disabling takes the user's SVN/Trac credentials away on the next request and drops them from
  // every project's groups; their rows stay for enabling again.
  adminAction(k, r, 'users', 'name', s.username, ['disable', 'enable'], (req, name, act) => {
    setUserDisabled(k.ctx, req.actor!, name, act === 'disable');
    return `${name}: ${act}d`;
  });
}

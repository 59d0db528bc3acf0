/**
 * The operator's restore pages: a backup's restore form (into a new project, or over the project in
 * place), and the page that follows the restore job until it ends (reloading itself while it runs).
 */
import express, { type Response } from 'express';
import { z } from 'zod';
import * as backups from '../src/domain/backups.js';
import { DomainError } from '../src/errors.js';
import { emptyForm, field, formError, formMeta, html, raw, type FormState, type Html } from './html.js';
import { fmtBytes } from '../src/sys/bytes.js';
import * as s from '../src/http/schemas.js';
import { domainForm, formObject, parse, typed, type Kit, type Req } from './kit.js';

const idOf = (v: unknown) => z.coerce.number().int().positive().safeParse(v);
const restoreForm = z.strictObject({
  mode: z.enum(['new', 'in-place'], { message: 'choose where to restore' }),
  to: s.slug.optional(),
  owner: s.username.optional(),
});

type BackupView = ReturnType<typeof backups.backup>;

function restoreCard(req: Req, b: BackupView, f: FormState): Html {
  const checked = (m: string) => ((f.values.mode ?? 'new') === m ? raw(' checked') : '');
  return html`<form method="post" action="/admin/backups/${String(b.id)}/restore" class="card" novalidate aria-labelledby="rs-h">
    ${formMeta(req.csrfToken!, `/admin/backups/${b.id}/restore`)}
    <h2 id="rs-h">Restore backup #${String(b.id)}</h2>
    <p>
      ${b.project ?? '(Keelson database)'} · ${b.kind} · ${b.state} · ${(b.startedAt ?? '').replace('T', ' ').slice(0, 19)}
      ${b.bytes !== null ? html` · ${fmtBytes(b.bytes)}` : ''}
    </p>
    ${formError(f)}
    <fieldset>
      <legend>Where to</legend>
      <label><input type="radio" name="mode" value="new" ${checked('new')} /> Into a new project</label>
      <label
        ><input type="radio" name="mode" value="in-place" ${checked('in-place')} /> Over ${b.project ?? 'the project'} in place (it is
        suspended while the trees are swapped)</label
      >
    </fieldset>
    ${field(f, 'rs-to', 'to', 'New project name', { autocomplete: 'off', hint: 'only for a new project' })}
    ${field(f, 'rs-owner', 'owner', 'Owner of the new project', { autocomplete: 'off', hint: 'only for a new project; empty: the owners the backup recorded' })}
    <button type="submit" class="danger">Restore</button>
  </form>`;
}

function restorePage(k: Kit, req: Req, res: Response, id: number, status: number, f: FormState = emptyForm()) {
  const b = backups.backup(k.ctx, req.actor!, id);
  k.render(req, res, status, {
    title: `Restore backup #${id}`,
    current: '/admin',
    url: `/admin/backups/${id}/restore`,
    body: html`<h1>Restore</h1>
      ${k.adminNav('/admin')} ${restoreCard(req, b, f)}`,
  });
}

async function restorePost(k: Kit, req: Req, res: Response) {
  const id = idOf(req.params.id);
  if (!id.success) return k.notFoundPage(req, res);
  const values = typed(req.body);
  const p = parse(restoreForm, formObject(req.body), values);
  if (!p.ok) return restorePage(k, req, res, id.data, 400, p.form);
  const inPlace = p.data.mode === 'in-place';
  try {
    const { job } = backups.restore(k.ctx, req.actor!, id.data, {
      inPlace,
      to: inPlace ? undefined : p.data.to,
      owner: inPlace ? undefined : p.data.owner,
    });
    res.redirect(303, `/admin/jobs/${job.id}`);
  } catch (e) {
    if (!(e instanceof DomainError)) throw e;
    restorePage(k, req, res, id.data, e.status, domainForm(e, values, ['to', 'owner', 'mode']));
  }
}

type JobView = ReturnType<typeof backups.job>;

function jobCard(j: JobView): Html {
  const r = 'restore' in j ? j : undefined;
  const running = j.state === 'pending' || j.state === 'running';
  return html`<section class="card" aria-labelledby="job-h">
    <h2 id="job-h">
      Job #${String(j.id)}:
      ${j.kind}${r?.restore ? html` of backup #${String(r.restore.backupId)} into ${r.restore.target} (${r.restore.mode})` : ''}
    </h2>
    <p id="job-state" role="status">
      <span class="state ${j.state}">${j.state}</span> · attempt ${String(j.attempts)} of
      ${String(j.maxAttempts)}${running ? ' · this page reloads until the job ends' : ''}
    </p>
    ${r?.error ? html`<p class="error banner" role="alert" id="job-error">${r.error.message}</p>` : j.lastError && !running ? html`<p class="error banner" role="alert" id="job-error">${j.lastError}</p>` : ''}
    ${r?.result ? html`<p>Result: <code id="job-result">${JSON.stringify(r.result)}</code></p>` : ''}
  </section>`;
}

function jobPage(k: Kit, req: Req, res: Response) {
  const id = idOf(req.params.id);
  if (!id.success) return k.notFoundPage(req, res);
  const j = backups.job(k.ctx, req.actor!, id.data);
  k.render(req, res, 200, {
    title: `Job #${id.data}`,
    current: '/admin',
    refreshSeconds: j.state === 'pending' || j.state === 'running' ? 2 : undefined,
    body: html`<h1>Job</h1>
      ${k.adminNav('/admin')} ${jobCard(j)}`,
  });
}

export function backupPages(k: Kit, r: express.Router) {
  const { csrf, signedIn, adminOnly } = k;
  r.get('/admin/backups/:id/restore', signedIn, adminOnly, (req: Req, res) => {
    const id = idOf(req.params.id);
    if (!id.success) return k.notFoundPage(req, res);
    restorePage(k, req, res, id.data, 200);
  });
  r.post('/admin/backups/:id/restore', csrf, signedIn, adminOnly, (req: Req, res) => restorePost(k, req, res));
  r.get('/admin/jobs/:id', signedIn, adminOnly, (req: Req, res) => jobPage(k, req, res));
}

/**
 * Backups and restores as the operator and owners use them: listings, backups on demand, and
 * restores, which run as jobs (everything that can be checked is checked before one is queued).
 */
import type { Actor, Ctx } from './context.js';
import type { BackupKind } from '../backup/catalog.js';
import { backupView, ownerBackupView } from '../backup/catalog.js';
import { BackupService } from '../backup/engine.js';
import { enqueueBackup, enqueueBackups } from '../backup/schedule.js';
import { enqueueRestore, jobView } from '../backup/restore-job.js';
import { backedUpSlugs, getBackup, lastGood, listBackups as backupRows } from '../store/backups.js';
import { restoreBackup } from '../backup/restore.js';
import type { Progress } from '../backup/control.js';
import { getJob } from '../store/jobs.js';
import * as model from '../store/model.js';
import { InputError, NotAllowedError, NotFoundError } from '../errors.js';
import { projectFor } from './projects.js';

const services = new WeakMap<Ctx['db'], BackupService>();
const serviceOf = (ctx: Ctx): BackupService => {
  let s = services.get(ctx.db);
  if (!s) services.set(ctx.db, (s = new BackupService(ctx.db, ctx.cfg, ctx.cfg.backup)));
  return s;
};
const requireOperator = (actor: Actor): void => {
  if (!actor.admin) throw new NotAllowedError('this needs an operator (admin) account');
};

/** Every attempt, each project's last good backup, and the backup volume with its reserve (operator). */
export async function listBackups(ctx: Ctx, actor: Actor, project?: string) {
  requireOperator(actor);
  const id = project ? model.requireProject(ctx.db, project).id : undefined;
  const volume = await serviceOf(ctx).volume();
  return { backups: backupRows(ctx.db, id).map(backupView), projects: lastGood(ctx.db, id), volume };
}

/** One backup as the catalog shows it (operator). */
export function backup(ctx: Ctx, actor: Actor, id: number) {
  requireOperator(actor);
  const r = getBackup(ctx.db, id);
  if (!r) throw new NotFoundError(`no backup #${id}`);
  return backupView(r);
}

/** A project's backups for its owners (the volume is the operator's business). */
export function projectBackups(ctx: Ctx, actor: Actor, slug: string) {
  const p = projectFor(ctx, actor, slug, 'owner');
  return { backups: backupRows(ctx.db, p.id).map(actor.admin ? backupView : ownerBackupView), projects: lastGood(ctx.db, p.id) };
}

/** Queues a backup for the worker (it runs under the scheduled ones' rules): Keelson's database, one project, or all. */
export function runBackup(ctx: Ctx, actor: Actor, b: { project?: string; control?: boolean; kind: BackupKind }) {
  requireOperator(actor);
  const { db } = ctx;
  if (b.control && b.project) throw new InputError("control: back up either Keelson's database or a project, not both");
  let queued: (string | null)[];
  if (b.control) {
    enqueueBackup(db, null, { kind: 'full', trigger: 'api', actor: actor.label });
    queued = [null];
  } else if (b.project) {
    const p = model.getProject(db, b.project);
    if (!p) throw new NotFoundError(`no project ${b.project}`);
    if (p.state !== 'active' && p.state !== 'suspended')
      throw new InputError(`project: ${p.slug} is ${p.state}; only active or suspended projects are backed up`);
    enqueueBackup(db, p.id, { kind: b.kind, trigger: 'api', actor: actor.label });
    queued = [p.slug];
  } else {
    queued = [`${enqueueBackups(db, b.kind, 'api', actor.label)} projects`];
  }
  ctx.fx.enqueued();
  return { queued, kind: b.control ? 'full' : b.kind };
}

/**
 * A restore, in place or into a new project: checked now (the same errors the restore itself
 * would give), then queued as a job that the caller follows.
 */
export function restore(ctx: Ctx, actor: Actor, backupId: number, o: { to?: string; inPlace: boolean; owner?: string }) {
  requireOperator(actor);
  const { job, plan } = enqueueRestore(serviceOf(ctx), backupId, { ...o, admin: actor.admin, actor: actor.label });
  ctx.fx.enqueued();
  return { job, target: plan.targetSlug, mode: plan.mode };
}

/** A job's state, attempts, last error and times; for a restore what it restores and its result or error. */
export function job(ctx: Ctx, actor: Actor, id: number) {
  requireOperator(actor);
  const j = getJob(ctx.db, id);
  if (!j) throw new NotFoundError(`no job #${id}`);
  return jobView(ctx.db, j);
}

/**
 * The operator's own command (`keelson backup run`): backs up now, in the caller's process, with
 * progress, under the same rules and lease as the worker's runs. Keelson's database (`control`),
 * one project, or every project that is backed up.
 */
export async function backupNow(
  ctx: Ctx,
  actor: Actor,
  o: { slug?: string; kind: BackupKind; control?: boolean; onProgress: (label: string) => (p: Progress) => void },
) {
  requireOperator(actor);
  const svc = serviceOf(ctx);
  if (o.control) {
    const r = await svc.runControl({ trigger: 'cli', actor: actor.label, onProgress: o.onProgress('keelson database') });
    return { control: r.backup ? backupView(r.backup) : r, projects: [] };
  }
  const projects: { slug: string; skipped?: string; backup?: ReturnType<typeof backupView> }[] = [];
  for (const slug of o.slug ? [o.slug] : backedUpSlugs(ctx.db)) {
    const r = await svc.runProject(slug, { kind: o.kind, trigger: 'cli', actor: actor.label, onProgress: o.onProgress(slug) });
    projects.push(r.skipped !== undefined ? { slug, skipped: r.skipped } : { slug, backup: backupView(r.backup) });
  }
  return { control: undefined, projects };
}

/** The operator's own command (`keelson backup restore`): restores now, in the caller's process, with progress. */
export async function restoreNow(
  ctx: Ctx,
  actor: Actor,
  id: number,
  o: { inPlace: boolean; to?: string; owner?: string; onProgress: (p: Progress) => void },
) {
  requireOperator(actor);
  return restoreBackup(serviceOf(ctx), id, { ...o, admin: actor.admin, actor: actor.label });
}

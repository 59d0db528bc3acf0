/**
 * Backups and restores as the operator and owners use them: listings, backups on demand, and
 * restores, which run as jobs (everything that can be checked is checked before one is queued).
 */
import type { Actor, Ctx } from './context.js';
import type { Progress } from './ports.js';
import { backedUpSlugs, getBackup, lastGood, listBackups as backupRows, type BackupKind, type BackupRow } from '../store/backups.js';
import { getJob } from '../store/jobs.js';
import { getProject, requireProject } from '../store/projects.js';
import { InputError, NotAllowedError, NotFoundError } from '../errors.js';
import { projectFor } from './projects.js';

const requireOperator = (actor: Actor): void => {
  if (!actor.admin) throw new NotAllowedError('this needs an operator (admin) account');
};

/** Every attempt, each project's last good backup, and the backup volume with its reserve (operator). */
export async function listBackups(ctx: Ctx, actor: Actor, project?: string) {
  requireOperator(actor);
  const id = project ? requireProject(ctx.db, project).id : undefined;
  const volume = await ctx.backups.volume();
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
  const { db, backups } = ctx;
  if (b.control && b.project) throw new InputError("control: back up either Keelson's database or a project, not both");
  let queued: (string | null)[];
  if (b.control) {
    backups.enqueueBackup(null, { kind: 'full', trigger: 'api', actor: actor.label });
    queued = [null];
  } else if (b.project) {
    const p = getProject(db, b.project);
    if (!p) throw new NotFoundError(`no project ${b.project}`);
    if (p.state !== 'active' && p.state !== 'suspended')
      throw new InputError(`project: ${p.slug} is ${p.state}; only active or suspended projects are backed up`);
    backups.enqueueBackup(p.id, { kind: b.kind, trigger: 'api', actor: actor.label });
    queued = [p.slug];
  } else {
    queued = [`${backups.enqueueBackups(b.kind, 'api', actor.label)} projects`];
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
  const queued = ctx.backups.enqueueRestore(backupId, { ...o, admin: actor.admin, actor: actor.label });
  ctx.fx.enqueued();
  return queued;
}

/** A job's state, attempts, last error and times; for a restore what it restores and its result or error. */
export function job(ctx: Ctx, actor: Actor, id: number) {
  requireOperator(actor);
  const j = getJob(ctx.db, id);
  if (!j) throw new NotFoundError(`no job #${id}`);
  return ctx.backups.jobView(j);
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
  const { backups } = ctx;
  if (o.control) {
    const r = await backups.runControl({ trigger: 'cli', actor: actor.label, onProgress: o.onProgress('keelson database') });
    return { control: r.backup ? backupView(r.backup) : r, projects: [] };
  }
  const projects: { slug: string; skipped?: string; backup?: ReturnType<typeof backupView> }[] = [];
  for (const slug of o.slug ? [o.slug] : backedUpSlugs(ctx.db)) {
    const r = await backups.runProject(slug, { kind: o.kind, trigger: 'cli', actor: actor.label, onProgress: o.onProgress(slug) });
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
  return ctx.backups.restoreNow(id, { ...o, admin: actor.admin, actor: actor.label });
}

// ---- the views ----

/** A backup row as the catalog shows it to the operator. */
export function backupView(r: BackupRow) {
  return {
    id: r.id,
    project: r.slug,
    kind: r.kind,
    state: r.state,
    bytes: r.bytes,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    durationMs: r.duration_ms,
    reason: r.reason,
    ...(r.needed_bytes !== null ? { needed: r.needed_bytes } : {}),
    ...(r.free_bytes !== null ? { free: r.free_bytes, reserve: r.reserve_bytes } : {}),
    baseId: r.base_id,
    revFrom: r.rev_from,
    revTo: r.rev_to,
    files: r.files,
    logicalBytes: r.logical_bytes,
    trigger: r.trigger,
    testRestoredAt: r.test_restored_at,
    testRestoreOk: r.test_restore_ok === null ? null : !!r.test_restore_ok,
  };
}

/**
 * A backup row as a project's owner sees it: a refusal's reason and numbers describe the shared
 * backup volume, quota and budget (other tenants' usage among them), which are the operator's.
 */
export function ownerBackupView(r: BackupRow) {
  const v: Partial<ReturnType<typeof backupView>> & { free?: number; reserve?: number | null } = backupView(r);
  if (r.state !== 'refused') return v;
  delete v.free;
  delete v.reserve;
  return { ...v, reason: 'refused: the backup space shared by this host was short (the operator is alerted and has the details)' };
}

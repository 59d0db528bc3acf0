import fs from 'node:fs';
import path from 'node:path';
import { layout } from '../config.js';
import type { DB } from '../store/db.js';
import { nowIso } from '../store/db.js';
import { getProject, getProjectById } from '../store/projects.js';
import { JOB_RECONCILE } from '../store/jobs.js';
import { getJob, type JobRow } from '../store/jobs.js';
import { getBackup } from '../store/backups.js';
import {
  activeRestoreInto,
  getRestoreJob,
  insertRestoreJob,
  markRestoreStarted,
  setRestoreError,
  setRestoreResult,
  type RestoreJobRow,
} from '../store/backups.js';
import { enqueue, type Job } from '../store/jobs.js';
import { JobTimeoutError } from '../jobs/worker.js';
import { ConflictError, DomainError } from '../errors.js';
import { log } from '../sys/log.js';
import { assertLeaseFree, liveLeaseHolder, scopeOf, restoreScopeOf } from '../store/leases.js';
import { asideLeftovers } from './aside.js';
import {
  planRestore,
  planRestoreFromCatalog,
  restoreSpace,
  type RestoreOptions,
  type RestorePlan,
  type RestoreResult,
} from './restore-plan.js';
import { restoreBackup } from './restore.js';
import type { BackupService } from './engine.js';

/**
 * Job kind: a restore requested through the API. project_id is the project restored over (in
 * place: the queue then never runs another job of that project beside it), or NULL (a new slug).
 * One attempt (max_attempts 1): a restore that failed has put back what it moved and says why;
 * running it again on its own would not fix that.
 */
export const JOB_RESTORE = 'restore';

export interface RestoreJobPayload {
  backupId: number;
  inPlace: boolean;
  to?: string;
  owner?: string;
  admin: boolean;
  actor: string;
}

export interface RestoreError {
  status: number;
  code: string;
  message: string;
}

/**
 * Checks a restore up front (every check restoreBackup makes before copying: the backup, the
 * target, the owner, the space, no backup or restore holding the target's lease) and queues it.
 * Throws the DomainError the API answers with; a restore into a slug that already has one
 * pending or running is 409.
 */
export function enqueueRestore(
  svc: BackupService,
  backupId: number,
  o: RestoreOptions,
): { job: JobRow; plan: Omit<RestorePlan, 'manifest'> } {
  const db = svc.db;
  // A process that may not read the backups (the API apart from the worker) checks what the
  // catalog tells; the job checks the rest before it copies anything.
  const readable = backupReadable(getBackup(db, backupId)?.path ?? null);
  const plan = readable ? planRestore(svc, backupId, o) : planRestoreFromCatalog(svc, backupId, o);
  if (readable) restoreSpace(svc, plan.row);
  const busy = () => {
    const b = activeRestoreInto(db, plan.targetSlug);
    return b && new ConflictError(`a restore into ${plan.targetSlug} is already ${b.state} (job #${b.id}); wait until it ends`);
  };
  const early = busy();
  if (early) throw early;
  assertLeaseFree(db, plan.scope);
  const payload: RestoreJobPayload = {
    backupId,
    inPlace: plan.mode === 'in-place',
    to: o.to,
    owner: o.owner,
    admin: o.admin,
    actor: o.actor,
  };
  const r = insertRestoreJob(db, {
    kind: JOB_RESTORE,
    backupId,
    target: plan.targetSlug,
    mode: plan.mode,
    projectId: plan.targetId,
    payload,
  });
  if (r.busy) throw busy() ?? new ConflictError(`a restore into ${plan.targetSlug} is already ${r.busy.state} (job #${r.busy.id})`);
  log.info('restore queued', { job: r.id, backup: backupId, target: plan.targetSlug, mode: plan.mode, actor: o.actor });
  return { job: getJob(db, r.id)!, plan };
}

/** What the API shows of a failed restore: a DomainError's status and code, else 500. */
function errorOf(e: unknown): RestoreError {
  const message = e instanceof Error ? e.message : String(e);
  if (e instanceof DomainError) return { status: e.status, code: e.code, message };
  if (e instanceof JobTimeoutError) return { status: 500, code: 'timeout', message };
  return { status: 500, code: 'internal', message };
}

/**
 * The worker's handler. The result is recorded in the restore's own recording transaction; a
 * failure records its error and is rethrown (the job fails: one attempt). A job that comes back
 * after a run had started was interrupted (its worker was killed): see `interrupted`.
 */
export function restoreJobHandler(svc: BackupService) {
  return async (job: Job, signal: AbortSignal): Promise<void> => {
    const db = svc.db;
    const rj = getRestoreJob(db, job.id);
    if (!rj) throw new Error(`job #${job.id} has no restore_jobs row`);
    if (rj.result !== null) {
      // Recorded before its worker stopped: the restore happened; only the job was left running.
      log.warn('restore job: its restore was recorded before its worker stopped; done', { job: job.id, target: rj.target });
      return;
    }
    if (rj.started_at !== null) interrupted(svc, job, rj);
    markRestoreStarted(db, job.id, nowIso());
    const p = JSON.parse(job.payload) as RestoreJobPayload;
    try {
      await restoreBackup(svc, p.backupId, {
        inPlace: p.inPlace,
        to: p.to,
        owner: p.owner,
        admin: p.admin,
        actor: p.actor,
        signal,
        onRecorded: (r: RestoreResult) => setRestoreResult(db, job.id, r),
      });
    } catch (e) {
      setRestoreError(db, job.id, errorOf(e));
      throw e;
    }
  };
}

/**
 * A restore whose worker died mid-run (SIGKILL, a crash, the machine) is not re-run blindly: the
 * queue gave the job back, and here it fails with a lastError saying what the restore-safety rules
 * left. In place: the project stays suspended (its repository denies everybody; a reconcile is
 * queued, as after any failed restore) and the live trees the restore had moved aside are kept
 * (never deleted: one may be the only copy) and named; the operator checks, restores again, resumes.
 * To a new slug: the trees it had already placed, which no project owns, are named.
 */
function interrupted(svc: BackupService, job: Job, rj: RestoreJobRow): never {
  const db = svc.db;
  const l = layout(svc.cfg);
  const why = job.last_error ?? `worker ${job.claimed_by ?? '?'} stopped before finishing`;
  let msg = `interrupted: ${why}; a restore is not re-run on its own`;
  const scope = rj.mode === 'in-place' && job.project_id !== null ? scopeOf(job.project_id) : restoreScopeOf(rj.target);
  const holder = liveLeaseHolder(db, scope);
  if (holder) msg += ` (${holder} still holds its lease: it may still be running there)`;
  if (rj.mode === 'in-place' && job.project_id !== null) {
    const p = getProjectById(db, job.project_id);
    const prefix = `${rj.target}-${job.project_id}-p`;
    const asides = asideLeftovers(svc.cfg).filter((a) => path.basename(a).startsWith(prefix));
    const state = p?.state === 'suspended' ? 'suspended (its repository denies everybody)' : (p?.state ?? 'gone');
    msg += `. Project ${rj.target} is left ${state}`;
    msg += asides.length
      ? `; the live trees the restore had moved aside are kept in ${asides.join(', ')}: check the project, move a tree back or restore again, then resume it and remove that folder`
      : '; nothing live had been moved aside: restore again, or resume it';
    // As after a failed restore: the reconciler republishes the project's authz for its state.
    enqueue(db, JOB_RECONCILE, job.project_id);
  } else {
    const left = getProject(db, rj.target)
      ? []
      : [path.join(l.svnRoot, rj.target), path.join(l.tracRoot, rj.target)].filter((d) => fs.existsSync(d));
    msg += left.length
      ? `. ${left.join(' and ')} were placed but no project owns them: remove them before restoring to ${rj.target} again`
      : `. Nothing was placed: restore to ${rj.target} again`;
  }
  setRestoreError(db, job.id, { status: 500, code: 'interrupted', message: msg });
  log.error('restore job interrupted', { job: job.id, target: rj.target, message: msg });
  throw new Error(msg);
}

/** GET /api/v1/jobs/:id: the job, and for a restore what it restores and its result or error. */
export function jobView(db: DB, j: JobRow) {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  const base = {
    id: j.id,
    kind: j.kind,
    project: j.project_id === null ? null : (getProjectById(db, j.project_id)?.slug ?? null),
    state: j.state,
    attempts: j.attempts,
    maxAttempts: j.max_attempts,
    lastError: j.last_error,
    createdAt: iso(j.created_at),
    heartbeatAt: iso(j.heartbeat_at),
    finishedAt: iso(j.finished_at),
  };
  if (j.kind !== JOB_RESTORE) return base;
  const r = getRestoreJob(db, j.id);
  return {
    ...base,
    restore: r ? { backupId: r.backup_id, target: r.target, mode: r.mode, startedAt: r.started_at } : null,
    result: r?.result ? (JSON.parse(r.result) as RestoreResult) : null,
    error: r?.error ? (JSON.parse(r.error) as RestoreError) : null,
  };
}

function backupReadable(dir: string | null): boolean {
  if (!dir) return true; // restorableRow says why
  try {
    fs.accessSync(path.join(dir, 'manifest.json'), fs.constants.R_OK);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'EACCES';
  }
}

import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { layout } from '../config.js';
import { nowIso } from '../store/db.js';
import { getProject, getProjectById } from '../store/projects.js';
import { JOB_CREDENTIALS, JOB_RECONCILE } from '../store/jobs.js';
import { inUnit } from '../domain/unit.js';
import { noEffects } from '../domain/context.js';
import { addProject } from '../domain/projects.js';
import { setProjectState } from '../domain/lifecycle.js';
import { forgetTracPermVersion, setProjectRepoUuid } from '../store/backups.js';
import { ConflictError } from '../errors.js';
import { serviceOwners, type Owners } from '../provision/owner.js';
import { TracHelper } from '../provision/trac.js';
import { AuthzChecker } from '../authz/canary.js';
import { log } from '../sys/log.js';
import { RunControl } from './control.js';
import { acquireLease, releaseLease, renewLease } from '../store/leases.js';
import { getBackup as getBackupRow } from '../store/backups.js';
import { asideLeftovers } from './aside.js';
import { newOwner, planRestore, restoreSpace, type RestoreOptions, type RestorePlan, type RestoreResult } from './restore-plan.js';
import { copyChecked, prepareStage, type RestoreRun } from './restore-copy.js';
import { Swapper, suspendForRestore, swapIn } from './restore-swap.js';
import type { BackupService } from './engine.js';
import { assertSlug } from '../names.js';

// A restore's parts: restore-plan.ts (every check before a byte is copied), restore-copy.ts (copy,
// checksums, the staged copy made today's), restore-swap.ts (suspension, renames, put back),
// test-restore.ts (the scheduled test restores), restore-job.ts (a restore as a worker job).

/** Opens a restore under its lease: control (renewing the lease), staging path, Trac helper, authz checker. */
function openRun(
  svc: BackupService,
  plan: RestorePlan,
  o: RestoreOptions,
  owners: Owners | undefined,
): { run: RestoreRun; leaseTimer: NodeJS.Timeout } {
  const cfg = svc.cfg;
  const l = layout(cfg);
  const ctl = new RunControl(o.onProgress);
  ctl.follow(o.signal);
  // Renewed like a backup's: a restore that lost its lease (taken over after it expired) stops
  // before it swaps anything in, and its children are killed.
  const leaseTimer = setInterval(() => {
    try {
      if (!renewLease(svc.db, plan.scope, plan.backupId))
        ctl.abort(new ConflictError(`the restore lease of ${plan.scope} was taken over; restore stopped`));
    } catch (e) {
      log.warn('restore lease renewal failed', { backup: plan.backupId, error: String(e) });
    }
  }, o.leaseRenewMs ?? 10_000);
  leaseTimer.unref();
  assertSlug(plan.targetSlug); // from a row: checked again where it becomes paths below
  const run: RestoreRun = {
    svc,
    cfg,
    l,
    plan,
    o,
    ctl,
    stage: path.join(l.staging, `restore-${plan.targetSlug}-p${process.pid}-${crypto.randomBytes(4).toString('hex')}`),
    repoDir: path.join(l.svnRoot, plan.targetSlug),
    envDir: path.join(l.tracRoot, plan.targetSlug),
    hasTrac: plan.manifest.files.some((f) => f.path.startsWith('trac/')),
    trac: new TracHelper(cfg, l),
    checker: new AuthzChecker(cfg.python),
    owners,
  };
  return { run, leaseTimer };
}

/**
 * The restore counts once this transaction commits: a new project is created with the copy's
 * UUID, or the project's state returns; a reconcile (which publishes the real authz over the
 * deny-all one and converges Trac's permissions, which came from the backup) and a credentials
 * sync are enqueued; the audit log and the caller's `onRecorded` see the result.
 */
function recordRestore(r: RestoreRun, repoUuid: string): RestoreResult {
  const db = r.svc.db;
  const { plan, o } = r;
  const { src, mode, targetSlug, backupId } = plan;
  const youngestRev = plan.manifest.youngestRev!;
  // IMMEDIATE: it reads, then writes; a deferred one would fail (SQLITE_BUSY) when another process wrote in between.
  return inUnit({ db, fx: noEffects }, o.actor, (u) => {
    let project = targetSlug;
    if (mode === 'new') {
      const orig = getProjectById(db, src.id);
      const p = addProject(u, {
        slug: targetSlug,
        title: orig?.title ?? targetSlug,
        visibility: orig?.visibility ?? 'private',
        owner: newOwner(r.svc, src.id, o.owner),
      });
      setProjectRepoUuid(db, p.id, repoUuid);
      project = p.slug;
      u.enqueue(JOB_RECONCILE, p.id);
    } else {
      // Back to its state first, then the reconcile: it publishes the access of that state over
      // the deny-all authz, and converges Trac's permission table, which came from the backup.
      // (Suspending, resuming and deleting wait while the restore runs: see domain/projects.ts.)
      if (r.prevState && r.prevState !== 'suspended' && getProjectById(db, src.id)?.state === 'suspended')
        inUnit({ db, fx: noEffects }, 'system', (s) => setProjectState(s, src.id, r.prevState as 'active'));
      forgetTracPermVersion(db, src.id);
      u.enqueue(JOB_RECONCILE, src.id);
    }
    u.enqueue(JOB_CREDENTIALS, null);
    u.audit('backup.restore', project, { backup: backupId, mode, from: src.slug, rev: youngestRev });
    const result: RestoreResult = { backupId, project, mode, youngestRev, repoUuid };
    o.onRecorded?.(result);
    return result;
  });
}

/**
 * What the plan found, checked again now that the lease is held (from here on it cannot change
 * under the restore): the backup is still verified (retention within the budget may have expired
 * it); in place, the project is still one that lives; a new slug is still free (a project may
 * have taken it before the lease held it).
 */
function stillSo(svc: BackupService, plan: RestorePlan, backupId: number): void {
  const db = svc.db;
  const st = getBackupRow(db, backupId)?.state;
  if (st !== 'verified') throw new ConflictError(`backup #${backupId} is ${st ?? 'gone'}; only verified backups are restored`);
  const p = getProject(db, plan.targetSlug);
  if (plan.mode === 'new' && p) throw new ConflictError(`to: a project named ${plan.targetSlug} exists now; choose another name`);
  if (plan.mode === 'in-place' && (!p || p.id !== plan.src.id || p.state === 'deleting' || p.state === 'deleted'))
    throw new ConflictError(`${plan.targetSlug} is ${p ? p.state : 'gone'} now; an in-place restore needs the project it was taken of`);
}

/**
 * Restores a verified backup: checks the cross-tenant identity (slug, id, repository UUID),
 * copies the files into the data volume's staging folder checking every checksum against the
 * manifest, then swaps them in with renames and has the reconciler republish authz and
 * credentials. The CLI runs it in-process; the API through a job (restore-job.ts).
 */
export async function restoreBackup(svc: BackupService, backupId: number, o: RestoreOptions): Promise<RestoreResult> {
  const db = svc.db;
  const plan = planRestore(svc, backupId, o);
  const owners = await serviceOwners(svc.cfg);
  acquireLease(db, plan.scope, backupId, 'restore');
  try {
    stillSo(svc, plan, backupId);
  } catch (e) {
    releaseLease(db, plan.scope, backupId);
    throw e;
  }
  // From here on everything runs inside the try below, whose finally stops the renewal and releases the lease.
  const { run, leaseTimer } = openRun(svc, plan, o, owners);
  const { ctl } = run;
  const sw = new Swapper(run);
  let recorded = false;
  try {
    // Leftovers of a restore that died are reported, never deleted (they may be the only live copy).
    asideLeftovers(svc.cfg);
    const entries = restoreSpace(svc, plan.row);
    if (plan.mode === 'in-place') {
      await suspendForRestore(run);
      await o.onSuspended?.();
      ctl.throwIfAborted();
    }
    // Copy and check every file against the manifest, then make the copy today's.
    await copyChecked(run, entries);
    const repoUuid = await prepareStage(run);
    ctl.throwIfAborted();
    ctl.progress('swapping in');
    await swapIn(run, sw);
    const result = recordRestore(run, repoUuid);
    recorded = true;
    run.prevState = undefined;
    sw.done();
    log.info('backup restored', { backup: backupId, project: result.project, mode: plan.mode, rev: result.youngestRev, at: nowIso() });
    return result;
  } catch (e) {
    // Put back what was moved aside; a new project's placed files go.
    sw.putBack(recorded);
    if (run.prevState && run.prevState !== 'suspended' && getProjectById(db, plan.src.id)?.state === 'suspended')
      inUnit({ db, fx: noEffects }, 'system', (s) => setProjectState(s, plan.src.id, run.prevState as 'active'));
    // The live repository's authz is the deny-all one: the reconciler republishes the real one.
    if (plan.mode === 'in-place') inUnit({ db, fx: noEffects }, 'system', (s) => s.enqueue(JOB_RECONCILE, plan.src.id));
    throw e;
  } finally {
    run.trac.close();
    run.checker.close();
    clearInterval(leaseTimer);
    fs.rmSync(run.stage, { recursive: true, force: true });
    releaseLease(db, plan.scope, backupId);
  }
}

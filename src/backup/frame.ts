import fs from 'node:fs';
import path from 'node:path';
import { nowIso } from '../store/db.js';
import { log } from '../sys/log.js';
import { RunControl, SpaceAbort, isNoSpace, isQuotaExceeded, isWriteError, type Progress } from './control.js';
import { SpaceGuard } from './guard.js';
import type { Need } from './space.js';
import { budgetAlertDue, budgetMark } from './limits.js';
import { fmtBytes } from '../sys/bytes.js';
import { heldBytes } from '../store/backups.js';
import { leasedBackupId, releaseLease, renewLease, scopeOf } from '../store/leases.js';
import { finishBackup } from './catalog.js';
import { getBackup, updateBackup, type BackupKind, type BackupRow } from '../store/backups.js';
import { alert } from './alert.js';
import { applyRetention, expireForBudget } from './retention.js';
import type { Made } from './manifest.js';
import { sha256 } from '../sys/hash.js';
import type { BackupRun } from './run.js';

export interface RunOptions {
  kind?: BackupKind;
  trigger?: 'schedule' | 'api' | 'cli' | 'manual';
  actor?: string;
  /** A scheduled run an operator asked for as well: it does not wait out a back-off after refusals. */
  requested?: boolean;
  onProgress?: (p: Progress) => void;
  /** Aborts the run (its programs killed, staging removed, recorded as failed with the reason). */
  signal?: AbortSignal;
}

/** A backup's body: `plan` is called with what it will need before it writes a byte (and throws if it does not fit). */
export type Body = (ctl: RunControl, plan: (need: Need) => void) => Promise<Made>;

/**
 * The frame every backup runs in: plan (space check before any write), watch the volume while
 * writing, verify, place, catalog, retention; on any error remove the partial output and record why.
 */
export async function runFrame(svc: BackupRun, id: number, projectId: number | null, o: RunOptions, body: Body): Promise<BackupRow> {
  const scope = scopeOf(projectId);
  const ctl = new RunControl(o.onProgress);
  ctl.follow(o.signal);
  const forWhat = () => getBackup(svc.db, id)?.slug ?? 'Keelson’s database';
  const space = new SpaceGuard(
    svc,
    id,
    ctl,
    !svc.settings.budgetRetention
      ? undefined
      : o.trigger === 'schedule'
        ? (need, budget) =>
            expireForBudget(
              svc.db,
              { id, scope: projectId, what: forWhat() },
              need,
              { bytes: budget.totalBytes, reserveBytes: budget.reserveBytes },
              svc.root,
            )
        : () => ({ why: 'retention within the budget makes room for scheduled runs only; nothing was expired' }),
  );
  const leaseTimer = setInterval(() => {
    try {
      if (!renewLease(svc.db, scope, id)) ctl.abort(new Error('the backup lease was taken over'));
    } catch (e) {
      log.warn('backup lease renewal failed', { id, error: String(e) });
    }
  }, 10_000);
  leaseTimer.unref();
  let stage: string | undefined;
  // Set once the finished backup is renamed into place: an abort in the last moment removes it too.
  let placed: string | undefined;
  const t0 = Date.now();
  let heldBefore: number | undefined;
  try {
    const plan = (n: Need) => {
      space.admit(n);
      stage = svc.stagingDir(`b${id}`);
      updateBackup(svc.db, id, { staging_path: stage });
    };
    const made = await body(ctl, plan);
    placed = made.finalDir;
    ctl.throwIfAborted();
    space.stop();
    // What the backups held before this one (its own row counts its estimate while it runs); only
    // for the budget alert, so nothing here may fail the backup.
    let before: number | undefined;
    try {
      before = heldBytes(svc.db) - space.need.bytes;
    } catch (e) {
      log.warn('budget alert: usage not read', { id, error: String(e) });
    }
    recordVerified(svc, id, projectId, made, t0, space.need);
    heldBefore = before;
  } catch (err) {
    space.stop();
    const e = ctl.aborted instanceof SpaceAbort ? ctl.aborted : err;
    if (stage) fs.rmSync(stage, { recursive: true, force: true });
    if (placed) fs.rmSync(placed, { recursive: true, force: true });
    await recordFailure(svc, id, e, space);
  } finally {
    space.stop();
    clearInterval(leaseTimer);
    releaseLease(svc.db, scope, id);
  }
  // Outside the try: nothing here may turn a verified backup into a failed one.
  if (heldBefore !== undefined) await budgetAlert(svc, id, heldBefore).catch((e) => log.error('budget alert', { id, error: String(e) }));
  return getBackup(svc.db, id)!;
}

/** The catalog row of a verified backup; retention runs only now, after a new backup verified. */
function recordVerified(svc: BackupRun, id: number, projectId: number | null, made: Made, t0: number, need: Need): void {
  const { manifest, finalDir, fresh } = made;
  const logical = manifest.files.reduce((a, f) => a + f.size, 0);
  updateBackup(svc.db, id, {
    state: 'verified',
    path: finalDir,
    staging_path: null,
    bytes: fresh,
    logical_bytes: logical,
    // The estimate the run was admitted on, beside what it wrote.
    needed_bytes: need.bytes,
    needed_inodes: need.inodes,
    files: manifest.files.length,
    rev_from: manifest.revFrom,
    rev_to: manifest.youngestRev,
    manifest_sha256: sha256(fs.readFileSync(path.join(finalDir, 'manifest.json'))),
    finished_at: nowIso(),
    duration_ms: Date.now() - t0,
    holder: null,
  });
  log.info('backup verified', { id, project: manifest.project?.slug ?? null, kind: manifest.kind, bytes: fresh, ms: Date.now() - t0 });
  try {
    applyRetention(svc.db, svc.settings, projectId, svc.root);
  } catch (e) {
    log.error('backup retention failed', { id, error: String(e) });
  }
}

/** Set once this process has sent the budget alert; cleared when the backups are below the mark again. */
let budgetAlerted = false;

/**
 * The alert when the backups hold 90% of what they may hold under the budget (the budget less
 * its reserve: a run is refused past that, so 90% of it is the warning): when a verified backup
 * (after its retention) crosses the mark, and once per process while it stays above (a budget set
 * on a catalog already that full is said at once).
 */
async function budgetAlert(svc: BackupRun, id: number, heldBefore: number): Promise<void> {
  const budget = svc.settings.budgetBytes;
  if (!budget) return;
  const held = heldBytes(svc.db);
  const m = budgetMark(budget, svc.settings.reservePercent);
  const due = budgetAlertDue(heldBefore, held, m.mark, budgetAlerted);
  budgetAlerted = held >= m.mark;
  if (!due) return;
  const percent = Math.floor((held * 100) / m.usable);
  await alert(svc.settings.alertWebhook, 'backup.budget', {
    backup: id,
    limit: 'budget',
    reason: `the backups hold ${fmtBytes(held)}, ${percent}% of the ${fmtBytes(m.usable)} they may hold under the ${fmtBytes(budget)} backup budget${m.usable < budget ? ' less its reserve' : ''}`,
    usedBytes: held,
    limitBytes: budget,
    usableBytes: m.usable,
    percent,
  });
}

/** Node names EDQUOT on some paths only by its number: say what it is. */
const quotaMessage = (e: unknown): string =>
  String((e as Error)?.message ?? e).replace(/Unknown system error -122/g, 'EDQUOT, disk quota exceeded');

/** A refusal (out of space, before or during the run) or a failure: recorded with its reason, and alerted. */
async function recordFailure(svc: BackupRun, id: number, e: unknown, space: SpaceGuard): Promise<void> {
  const slug = getBackup(svc.db, id)?.slug ?? null;
  // SQLite reports EDQUOT from its writes as a plain I/O error (it knows only ENOSPC as "full"):
  // a write error while the quota over the backups is full is that quota.
  const quota = !(e instanceof SpaceAbort) && (isQuotaExceeded(e) || ((isNoSpace(e) || isWriteError(e)) && space.quotaReached()));
  if (e instanceof SpaceAbort || isNoSpace(e) || quota) {
    const reason =
      e instanceof SpaceAbort
        ? e.message
        : quota
          ? `aborted: EDQUOT: the ${space.quota?.name ?? `disk quota over ${svc.root}`} was reached during the run (${quotaMessage(e)})`
          : `aborted: the volume filled during the run (${(e as Error).message})`;
    const limit = e instanceof SpaceAbort ? e.limit : quota ? 'quota' : 'volume';
    const n = space.numbers ?? space.snap();
    finishBackup(svc.db, id, 'refused', reason, n);
    await alert(svc.settings.alertWebhook, 'backup.refused', {
      backup: id,
      project: slug,
      reason,
      limit,
      needed: n.neededBytes,
      free: n.freeBytes,
      reserve: n.reserveBytes,
    });
  } else {
    const reason = `failed: ${(e as Error).message ?? String(e)}`.slice(0, 4000);
    finishBackup(svc.db, id, 'failed', reason);
    await alert(svc.settings.alertWebhook, 'backup.failed', { backup: id, project: slug, reason });
  }
}

/** The running row of a scope (the one whose lease we hold). */
export function currentId(svc: BackupRun, projectId: number | null): number {
  const r = leasedBackupId(svc.db, scopeOf(projectId));
  if (r === undefined) throw new Error('no backup lease held');
  return r;
}

/** The staging folder the plan gave a running backup. */
export function stagingOf(svc: BackupRun, id: number): string {
  const s = getBackup(svc.db, id)?.staging_path;
  if (!s) throw new Error(`backup #${id} has no staging folder`);
  return s;
}

/**
 * The space side of a backup run (see frame.ts): the limits a run may use (free space, quota,
 * budget), the check before a byte is written, with retention within the budget when it is on,
 * and the watcher that samples the volume and the quota while the run writes.
 */
import { log } from '../sys/log.js';
import { sameDevice, volumeOf } from '../sys/volume.js';
import { quotaOver, quotaOverAsync, type Quota } from '../sys/quota.js';
import { heldBytes } from '../store/backups.js';
import type { DB } from '../store/db.js';
import type { BackupSettings } from '../settings/backup.js';
import { RunControl, SpaceAbort } from './control.js';
import { belowFloor, checkFits, reserveFor, type Need, type Reserve, type SpaceNumbers } from './space.js';
import { budgetLimit, checkLimits, limitReached, quotaLimit, type Limit } from './limits.js';
import { updateBackup } from '../store/backups.js';
import type { BackupVolumeRun } from './run.js';

/** The quota over `root` (read now; `sync` commits btrfs's accounting first) and the budget, as limits (see limits.ts). */
export function backupLimits(db: DB, root: string, settings: BackupSettings, o: { sync: boolean; python: string }): Limit[] {
  const q = quotaOver(root, o);
  noteQuota(root, q);
  return limitsWith(db, root, settings, q);
}

/** The quota `q` (when there is one) and the budget, as limits. */
export function limitsWith(db: DB, root: string, settings: BackupSettings, q: Quota | undefined): Limit[] {
  const out: Limit[] = [];
  if (q) out.push(quotaLimit(root, q, settings.reservePercent));
  if (settings.budgetBytes > 0) out.push(budgetLimit(settings.budgetBytes, heldBytes(db), settings.reservePercent));
  return out;
}

/**
 * The last quota read over each backup directory in this process (a run's check, its watcher's
 * samples, a listing's read), and when. Reading one runs programs (btrfs, python3).
 */
const lastQuota = new Map<string, { at: number; quota: Quota | undefined }>();
const reading = new Map<string, Promise<Quota | undefined>>();
const noteQuota = (root: string, quota: Quota | undefined) => lastQuota.set(root, { at: Date.now(), quota });

/**
 * The quota over `root` for a listing (GET /api/v1/backups): the last sample when it is younger
 * than `maxAgeMs`, else one read as child processes that the event loop does not wait on (one at
 * a time; callers meanwhile share it). A failed read logs and gives the last sample, if any.
 */
export async function sampledQuota(root: string, python: string, maxAgeMs = 60_000): Promise<Quota | undefined> {
  const last = lastQuota.get(root);
  if (last && Date.now() - last.at < maxAgeMs) return last.quota;
  let p = reading.get(root);
  if (!p) {
    p = quotaOverAsync(root, { python })
      .then((q) => (noteQuota(root, q), q))
      .catch((e) => {
        log.warn('backup quota not read', { dir: root, error: String(e) });
        return last?.quota;
      })
      .finally(() => reading.delete(root));
    reading.set(root, p);
  }
  return p;
}

/** The space side of a run: the check before anything is written, then the watcher while it writes. */
export class SpaceGuard {
  need: Need = { bytes: 0, inodes: 0 };
  /** The numbers at the refusal or abort, for the catalog. */
  numbers: SpaceNumbers | undefined;
  readonly reserve: Reserve;
  /** The quota over the backup directory, when there is one (named in an EDQUOT abort). */
  quota: Limit | undefined;
  private watcher: NodeJS.Timeout | undefined;
  private quotaSampledAt = 0;
  /** A quota sample in flight (they run as child processes, not on the event loop). */
  private sampling = false;

  private readonly db: DB;
  private readonly root: string;
  private readonly settings: BackupSettings;
  private readonly python: string;

  constructor(
    svc: BackupVolumeRun,
    /** The run's catalog row (its admitted estimate is written there). */
    private readonly id: number,
    private readonly ctl: RunControl,
    /** Retention within the budget, when on: makes room, or says why it could not. */
    private readonly makeRoom?: (needBytes: number, budget: Limit) => { expired: unknown[] } | { why: string },
  ) {
    this.db = svc.db;
    this.root = svc.root;
    this.settings = svc.settings;
    this.python = svc.cfg.python;
    this.reserve = reserveFor(this.vol(), svc.settings, sameDevice(svc.root, svc.cfg.dataDir));
  }

  private limits(): Limit[] {
    return backupLimits(this.db, this.root, this.settings, { sync: true, python: this.python });
  }

  private vol() {
    return volumeOf(this.root);
  }

  snap(limit?: Limit): SpaceNumbers {
    const v = this.vol();
    return {
      neededBytes: this.need.bytes,
      freeBytes: limit ? limit.availableBytes : v.freeBytes,
      reserveBytes: limit ? limit.reserveBytes : this.reserve.bytes,
      neededInodes: this.need.inodes,
      freeInodes: v.freeInodes,
      reserveInodes: this.reserve.inodes,
    };
  }

  /** Refuses (SpaceAbort) unless `n` fits every limit with its reserve left; from then on the volume and quota are watched. */
  admit(n: Need): void {
    this.need = n;
    this.ctl.bytesTotal = n.bytes;
    const why = checkFits(this.vol(), n, this.reserve);
    if (why) {
      this.numbers = this.snap();
      throw new SpaceAbort(`refused before writing: ${why}`);
    }
    let limits = this.limits();
    let over = checkLimits(limits, n.bytes);
    const budget = limits.find((l) => l.kind === 'budget');
    // Only the budget is over (expiring backups would not lift a quota Keelson does not keep):
    // retention within the budget, when on, may make room first.
    if (
      over &&
      budget &&
      this.makeRoom &&
      over.startsWith(budget.name) &&
      !checkLimits(
        limits.filter((l) => l !== budget),
        n.bytes,
      )
    ) {
      const r = this.makeRoom(n.bytes, budget);
      if ('why' in r) over += `; ${r.why}`;
      else {
        limits = this.limits();
        over = checkLimits(limits, n.bytes);
      }
    }
    this.quota = limits.find((l) => l.kind === 'quota');
    if (over) {
      const l = limits.find((x) => over.startsWith(x.name));
      this.numbers = this.snap(l);
      throw new SpaceAbort(`refused before writing: ${over}`, l?.kind);
    }
    this.claim(n);
    // From here on the volume is watched (another writer may fill it while we work), and the
    // quota at most once a second (reading it runs a program).
    this.watcher = setInterval(() => this.watch(), this.settings.watchMs);
    this.watcher.unref();
  }

  /**
   * Writes the run's estimate on its row, where heldBytes counts it against the budget while the
   * run writes. Under a budget, the budget is checked again in the same IMMEDIATE transaction: a
   * run admitted in another process a moment ago is seen, and the two cannot both take the room.
   */
  private claim(n: Need): void {
    this.db
      .transaction(() => {
        if (this.settings.budgetBytes > 0) {
          const b = budgetLimit(this.settings.budgetBytes, heldBytes(this.db), this.settings.reservePercent);
          const over = checkLimits([b], n.bytes);
          if (over) {
            this.numbers = this.snap(b);
            throw new SpaceAbort(`refused before writing: ${over}`, 'budget');
          }
        }
        updateBackup(this.db, this.id, { needed_bytes: n.bytes });
      })
      .immediate();
  }

  private watch(): void {
    try {
      const below = belowFloor(this.vol(), this.reserve);
      if (below) {
        this.numbers = this.snap();
        return this.ctl.abort(new SpaceAbort(`aborted during the run: ${below}`));
      }
      if (!this.quota || this.sampling || Date.now() - this.quotaSampledAt < 1000) return;
      this.quotaSampledAt = Date.now();
      this.sampling = true;
      quotaOverAsync(this.root, { python: this.python })
        .then((q) => this.quotaSampled(q))
        .catch((e) => log.warn('space watcher: quota not read', { error: String(e) }))
        .finally(() => (this.sampling = false));
    } catch (e) {
      log.warn('space watcher', { error: String(e) });
    }
  }

  private quotaSampled(q: Quota | undefined): void {
    noteQuota(this.root, q);
    if (!q || !this.watcher) return;
    const l = quotaLimit(this.root, q, this.settings.reservePercent);
    this.quota = l;
    const reached = limitReached([l]);
    if (reached) {
      this.numbers = this.snap(l);
      this.ctl.abort(new SpaceAbort(`aborted during the run: ${reached}`, 'quota'));
    }
  }

  /**
   * True when the quota over the backups (one was read before the run) is now within 4 MiB of its
   * limit: a write that just failed there is the quota, whatever the writer called the error.
   */
  quotaReached(): boolean {
    if (!this.quota) return false;
    try {
      const q = quotaOver(this.root, { sync: true, python: this.python });
      noteQuota(this.root, q);
      if (!q) return false;
      this.quota = quotaLimit(this.root, q, this.settings.reservePercent);
      return q.limitBytes - q.usedBytes < 4 * 1024 * 1024;
    } catch (e) {
      log.warn('quota not read after a failed write', { error: String(e) });
      return false;
    }
  }

  stop(): void {
    clearInterval(this.watcher);
    this.watcher = undefined;
  }
}

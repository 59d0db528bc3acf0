/**
 * What a backup may use: the smallest of the backup volume's free space, the quota over the
 * backup directory, and the backup budget Keelson keeps itself (KEELSON_BACKUP_BUDGET), each
 * with its reserve left free. Pure: the caller reads statfs, the quota and the catalog.
 */
import { fmtBytes } from '../sys/bytes.js';

export interface Limit {
  /** Names the limit in a refusal: `free space of /srv/backups`, `quota of /srv/backups (btrfs qgroup 0/256)`, `backup budget`. */
  name: string;
  kind: 'volume' | 'quota' | 'budget';
  /** The limit's size (volume size, quota, budget). */
  totalBytes: number;
  usedBytes: number;
  /** What may still be written before the limit is reached. */
  availableBytes: number;
  /** What must stay unused under this limit after the run. */
  reserveBytes: number;
}

/**
 * The reserve under a quota or the budget: the reserve percentage of its size. (The fixed
 * KEELSON_BACKUP_RESERVE_BYTES applies to the volume only: a 2 GiB floor would swallow a small quota whole.)
 */
export const reserveOf = (totalBytes: number, reservePercent: number): number => Math.ceil((totalBytes * reservePercent) / 100);

export function quotaLimit(dir: string, q: { source: string; limitBytes: number; usedBytes: number }, reservePercent: number): Limit {
  return {
    name: `quota of ${dir} (${q.source})`,
    kind: 'quota',
    totalBytes: q.limitBytes,
    usedBytes: q.usedBytes,
    availableBytes: Math.max(0, q.limitBytes - q.usedBytes),
    reserveBytes: reserveOf(q.limitBytes, reservePercent),
  };
}

export function budgetLimit(budgetBytes: number, heldBytes: number, reservePercent: number): Limit {
  return {
    name: 'backup budget (KEELSON_BACKUP_BUDGET)',
    kind: 'budget',
    totalBytes: budgetBytes,
    usedBytes: heldBytes,
    availableBytes: Math.max(0, budgetBytes - heldBytes),
    reserveBytes: reserveOf(budgetBytes, reservePercent),
  };
}

/** The limit that binds: the least room left after its reserve. */
export function binding(limits: Limit[]): Limit | undefined {
  let best: Limit | undefined;
  for (const l of limits) if (!best || l.availableBytes - l.reserveBytes < best.availableBytes - best.reserveBytes) best = l;
  return best;
}

/** Why `needBytes` does not fit (naming the first limit it breaks), or undefined when it fits all. */
export function checkLimits(limits: Limit[], needBytes: number): string | undefined {
  for (const l of [...limits].sort((a, b) => a.availableBytes - a.reserveBytes - (b.availableBytes - b.reserveBytes))) {
    if (l.availableBytes - needBytes < l.reserveBytes) {
      const reserve = l.reserveBytes ? ` and ${fmtBytes(l.reserveBytes)} must stay unused` : '';
      return `${l.name}: ${fmtBytes(l.totalBytes)}, ${fmtBytes(l.usedBytes)} used${reserve}; needs ${fmtBytes(needBytes)}`;
    }
  }
  return undefined;
}

/** Below a limit's floor during a run: the reason, else undefined. */
export function limitReached(limits: Limit[]): string | undefined {
  for (const l of limits)
    if (l.availableBytes < l.reserveBytes)
      return `${l.name} reached: ${fmtBytes(l.usedBytes)} of ${fmtBytes(l.totalBytes)} used, ${fmtBytes(l.reserveBytes)} must stay unused`;
  return undefined;
}

/** What backups may hold under the budget (the budget less its reserve), and the alert's mark: 90% of that. */
export function budgetMark(budgetBytes: number, reservePercent: number): { usable: number; mark: number } {
  const usable = budgetBytes - reserveOf(budgetBytes, reservePercent);
  return { usable, mark: Math.ceil(usable * 0.9) };
}

/** The budget alert is due at or over the mark: when this backup crossed it, or when this process has not said so yet. */
export const budgetAlertDue = (heldBefore: number, heldAfter: number, mark: number, alreadySaid: boolean): boolean =>
  heldAfter >= mark && (heldBefore < mark || !alreadySaid);

/**
 * Quotas that limit writes under a directory, as the kernel enforces them. Read here: btrfs
 * qgroups (the subvolume's level-0 qgroup and every higher-level qgroup it belongs to), through
 * `btrfs qgroup show`. XFS and ext4 project quotas need nothing: with a project quota on the
 * directory the kernel already reports the quota as the size and free space in statfs. User and
 * group quotas are not read (they need quotactl and a kernel with CONFIG_QUOTA).
 */
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { existingAncestor } from './volume.js';

export interface Quota {
  /** What limits: `btrfs qgroup 0/256`. */
  source: string;
  limitBytes: number;
  usedBytes: number;
}

const BTRFS_SUPER_MAGIC = 0x9123683e;

/** True when `dir` (or its nearest existing ancestor) is on btrfs. */
export const onBtrfs = (dir: string): boolean => fs.statfsSync(existingAncestor(dir)).type === BTRFS_SUPER_MAGIC;

/**
 * The tightest btrfs qgroup limit over `dir` (least room left), or undefined when the directory
 * is not on btrfs, quotas are off, or no qgroup over it has a limit. `sync` first commits the
 * file system's transaction, so the usage counts what was just written (a check before a run).
 */
export function btrfsQuota(dir: string, o: { sync?: boolean } = {}): Quota | undefined {
  const d = existingAncestor(dir);
  if (!onBtrfs(d)) return undefined;
  let out: string;
  try {
    out = execFileSync('btrfs', ['qgroup', 'show', '-reF', '--raw', ...(o.sync ? ['--sync'] : []), d], {
      encoding: 'utf8',
      timeout: 10_000,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (e) {
    // Quotas not enabled on this file system: nothing limits beyond the free space.
    if (/quota not enabled|not enabled|ENOENT/i.test(String((e as { stderr?: string }).stderr ?? e))) return undefined;
    throw e;
  }
  return tightest(parseQgroups(out));
}

export interface QgroupRow {
  id: string;
  rfer: number;
  excl: number;
  maxRfer: number | null;
  maxExcl: number | null;
}

/** Rows of `btrfs qgroup show -reF --raw`: qgroupid rfer excl max_rfer max_excl (limits "none" or a number). */
export function parseQgroups(text: string): QgroupRow[] {
  const rows: QgroupRow[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*(\d+\/\d+)\s+(\d+)\s+(\d+)\s+(\d+|none)\s+(\d+|none)\b/.exec(line);
    if (!m) continue;
    const lim = (v: string) => (v === 'none' ? null : Number(v));
    rows.push({ id: m[1]!, rfer: Number(m[2]), excl: Number(m[3]), maxRfer: lim(m[4]!), maxExcl: lim(m[5]!) });
  }
  return rows;
}

/** The limit with the least room left among every row's referenced and exclusive limits. */
export function tightest(rows: QgroupRow[]): Quota | undefined {
  let best: Quota | undefined;
  for (const r of rows) {
    for (const [limit, used] of [
      [r.maxRfer, r.rfer],
      [r.maxExcl, r.excl],
    ] as const) {
      if (limit === null) continue;
      const q = { source: `btrfs qgroup ${r.id}`, limitBytes: limit, usedBytes: used };
      if (!best || q.limitBytes - q.usedBytes < best.limitBytes - best.usedBytes) best = q;
    }
  }
  return best;
}

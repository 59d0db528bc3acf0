/**
 * Measures each project's storage and writes the quota files its pre-commit hook and Trac read
 * (the one writer of src/files/quota/quota.ts's files). Incrementally after commits (the revisions
 * since the last measure, a few stat calls), in full each night and when a project is first seen,
 * and the files again whenever a limit changes (the storage_limits job).
 *
 * Sizes are allocated bytes (`du`'s measure, blocks of 512), the same the hook's `du -B1` and
 * Trac's check count. A repository is measured without its transactions in flight: the hook
 * counts those itself.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Layout } from '../config.js';
import type { DB } from '../store/db.js';
import * as usage from '../store/usage.js';
import { getCapacity } from '../store/settings.js';
import { publishDefaultQuota, publishQuota } from '../files/quota/quota.js';
import { du } from '../sys/du.js';
import { repoDir, envDir } from './dirs.js';
import { log } from '../sys/log.js';
import { run } from '../sys/process.js';

const allocated = async (file: string): Promise<number> => {
  const st = await fs.promises.lstat(file).catch(() => undefined);
  return st?.isFile() ? st.blocks * 512 : 0;
};

/** The youngest revision of a repository (FSFS `db/current`), or undefined when it is not there. */
export function youngest(repo: string): number | undefined {
  try {
    return Number(fs.readFileSync(path.join(repo, 'db', 'current'), 'utf8').split(/\s/)[0]);
  } catch {
    return undefined;
  }
}

/** The shard size of an FSFS repository (`layout sharded N` in db/format), undefined for a linear one. */
function shardOf(repo: string): number | undefined {
  try {
    const m = fs.readFileSync(path.join(repo, 'db', 'format'), 'utf8').match(/^layout sharded (\d+)$/m);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Bytes of the revision files after `from` up to `to` (revs and revprops). */
async function revisionBytes(repo: string, from: number, to: number): Promise<number> {
  const shard = shardOf(repo);
  let total = 0;
  for (let r = from + 1; r <= to; r++) {
    const sub = shard ? String(Math.floor(r / shard)) : '';
    total += await allocated(path.join(repo, 'db', 'revs', sub, String(r)));
    total += await allocated(path.join(repo, 'db', 'revprops', sub, String(r)));
  }
  return total;
}

/** What the hooks count live, never in a measured base: transactions in flight and locks. */
const LIVE_IN_DB = new Set(['transactions', 'txn-protorevs', 'locks']);

/** Allocated bytes of a file, or of the files under a directory. */
async function bytesOf(p: string): Promise<number> {
  const st = await fs.promises.lstat(p).catch(() => undefined);
  if (!st) return 0;
  return st.isDirectory() ? du(p) : st.isFile() ? st.blocks * 512 : 0;
}

/**
 * A whole repository without what the hooks count live (walked around, not subtracted afterwards:
 * an upload that grows during the walk must not come off the base). Measured again when a commit
 * lands during the walk; after three tries the revision read before the walk is the one recorded,
 * so a revision the walk may have missed is counted again by the hook (too much, never too little).
 */
async function measureRepository(repo: string): Promise<{ bytes: number; rev: number }> {
  for (let attempt = 0; ; attempt++) {
    const before = youngest(repo) ?? 0;
    let bytes = 0;
    for (const e of await fs.promises.readdir(repo)) {
      if (e !== 'db') bytes += await bytesOf(path.join(repo, e));
    }
    for (const e of await fs.promises.readdir(path.join(repo, 'db'))) {
      if (!LIVE_IN_DB.has(e)) bytes += await bytesOf(path.join(repo, 'db', e));
    }
    const after = youngest(repo) ?? 0;
    if (after === before || attempt >= 2) return { bytes, rev: before };
  }
}

/** Transactions nobody has touched for this long are abandoned uploads (a client that died). */
const STALE_TXN_MS = 24 * 3_600_000;

/**
 * Removes a repository's abandoned transactions: the pre-commit hook counts every transaction in
 * flight against the project, so an upload left behind by a dead client would hold that room.
 */
/**
 * A project over its limit with its transactions counted: they go once idle this long. An upload a
 * member parks (files PUT into a transaction never committed, touched once a day) would otherwise
 * hold the disk and refuse every other member's commit; an upload in progress keeps touching its
 * files and stays.
 */
export const OVER_LIMIT_IDLE_MS = 10 * 60_000;

export async function removeStaleTransactions(repo: string, now = Date.now(), idleMs = STALE_TXN_MS): Promise<string[]> {
  const dir = path.join(repo, 'db', 'transactions');
  let names: string[];
  try {
    names = await fs.promises.readdir(dir);
  } catch {
    return [];
  }
  const stale: string[] = [];
  for (const n of names) {
    const m = n.match(/^([0-9a-z-]+)\.txn$/);
    if (!m) continue;
    const st = await fs.promises.stat(path.join(dir, n)).catch(() => undefined);
    const proto = await fs.promises.stat(path.join(repo, 'db', 'txn-protorevs', `${m[1]}.rev`)).catch(() => undefined);
    const touched = Math.max(st?.mtimeMs ?? 0, proto?.mtimeMs ?? 0);
    if (st && now - touched > idleMs) stale.push(m[1]!);
  }
  // A few hundred names to one svnadmin, so no argument list gets too long.
  for (let i = 0; i < stale.length; i += 200) await run('svnadmin', ['rmtxns', '--quiet', repo, ...stale.slice(i, i + 200)]);
  return stale;
}

export class Usage {
  constructor(
    private readonly l: Layout,
    private readonly db: DB,
  ) {}

  /** The project's quota file from its row (and the operator's default file). */
  async publish(row: usage.UsageRow): Promise<boolean> {
    return publishQuota(this.l.quotaDir, row.slug, {
      limit: row.quota_bytes ?? 'default',
      repoBytes: row.repo_bytes,
      repoRev: row.repo_rev,
      tracBytes: row.trac_bytes,
    });
  }

  async publishDefault(): Promise<boolean> {
    fs.mkdirSync(this.l.quotaDir, { recursive: true, mode: 0o755 });
    return publishDefaultQuota(this.l.quotaDir, getCapacity(this.db).projectStorageLimitBytes);
  }

  /**
   * Brings a project's measure up to date: the revisions since the last measure, or the whole
   * repository when it was never measured, is older than a day, or went back (a restore); the Trac
   * environment in full (a few files and its attachments). Then its quota file.
   */
  async refresh(slug: string, o: { full?: boolean } = {}): Promise<usage.UsageRow | undefined> {
    const row = usage.usageOf(this.db, slug);
    if (!row || row.state === 'deleting') return undefined;
    const repo = repoDir(this.l, slug);
    const top = youngest(repo);
    if (top === undefined) return row;
    let repoBytes: number;
    let repoRev: number;
    const stale = row.usage_at === null || Date.now() - row.usage_at > 86_400_000 || top < row.repo_rev;
    if (o.full || stale) ({ bytes: repoBytes, rev: repoRev } = await measureRepository(repo));
    else {
      repoBytes = row.repo_bytes + (await revisionBytes(repo, row.repo_rev, top));
      repoRev = top;
    }
    const tracBytes = await du(envDir(this.l, slug));
    usage.recordUsage(this.db, row.id, { repoBytes, repoRev, tracBytes });
    const now = usage.usageOf(this.db, slug)!;
    await this.publish(now);
    return now;
  }

  /** The storage_limits job: the default file and every project's file as the database says. */
  async converge(): Promise<number> {
    await this.publishDefault();
    let changed = 0;
    for (const row of usage.liveUsage(this.db)) {
      if (row.usage_at === null) await this.refresh(row.slug);
      else if (await this.publish(row)) changed++;
    }
    return changed;
  }

  /**
   * Every minute: projects with transactions in flight that take them over their limit lose the
   * ones idle for OVER_LIMIT_IDLE_MS (see there). Returns the slugs swept.
   */
  async sweepUploads(now = Date.now()): Promise<string[]> {
    const swept: string[] = [];
    const defaultLimit = getCapacity(this.db).projectStorageLimitBytes;
    for (const row of usage.liveUsage(this.db)) {
      const repo = repoDir(this.l, row.slug);
      const names = await fs.promises.readdir(path.join(repo, 'db', 'transactions')).catch(() => [] as string[]);
      if (!names.length) continue;
      const limit = row.quota_bytes ?? defaultLimit;
      if (limit === null) continue;
      const inFlight = (await du(path.join(repo, 'db', 'transactions'))) + (await du(path.join(repo, 'db', 'txn-protorevs')));
      if (row.repo_bytes + row.trac_bytes + inFlight <= limit) continue;
      const gone = await removeStaleTransactions(repo, now, OVER_LIMIT_IDLE_MS).catch((e: Error) => {
        log.warn('could not remove idle uploads', { slug: row.slug, error: e.message });
        return [];
      });
      if (gone.length) {
        log.warn('removed idle uploads of a project over its storage limit', { slug: row.slug, transactions: gone, inFlight, limit });
        swept.push(row.slug);
      }
    }
    return swept;
  }

  /** The nightly full measure of every project (fixes whatever drift the incremental measure has). */
  async measureAll(): Promise<{ projects: number; ms: number }> {
    const t0 = Date.now();
    await this.publishDefault();
    let n = 0;
    for (const row of usage.liveUsage(this.db)) {
      try {
        const gone = await removeStaleTransactions(repoDir(this.l, row.slug));
        if (gone.length) log.info('removed abandoned commit transactions', { slug: row.slug, transactions: gone });
        await this.refresh(row.slug, { full: true });
        n++;
      } catch (e) {
        log.warn('storage measure failed', { slug: row.slug, error: (e as Error).message });
      }
    }
    return { projects: n, ms: Date.now() - t0 };
  }
}

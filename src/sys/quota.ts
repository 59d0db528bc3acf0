/**
 * Quotas that limit writes under a directory, as the kernel enforces them. Read here:
 * - btrfs qgroups (the subvolume's level-0 qgroup and every higher-level qgroup it belongs to),
 *   through `btrfs qgroup show`;
 * - the user quota of this process's user and the group quota of its group on the file system
 *   that holds the directory, through quotactl_fd(2) (Linux 5.14 and later), called by python3's
 *   ctypes (Node has no binding and none is worth a native addon): ext4, XFS and any file system
 *   with the kernel's quota support. "Quotas are off" and "not supported" are remembered per file
 *   system for a minute, so a host without quotas pays one short python3 run a minute.
 * XFS and ext4 project quotas need nothing: with a project quota on the directory the kernel
 * already reports the quota as the size and free space in statfs.
 */
import fs from 'node:fs';
import os from 'node:os';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { existingAncestor } from './volume.js';
import { log } from './log.js';

const execFileAsync = promisify(execFile);
const EXEC = { encoding: 'utf8', timeout: 10_000 } as const;

/**
 * A command's output, synchronously (the check before a run) or not (the watcher's samples during
 * one, which must not stall the API server's event loop); undefined when `none(stderr)` says the
 * failure means "no quota here".
 */
function runSync(cmd: string, args: string[], none: (err: string) => boolean): string | undefined {
  try {
    return execFileSync(cmd, args, { ...EXEC, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    if (none(String((e as { stderr?: string }).stderr || e))) return undefined;
    throw e;
  }
}
async function runAsync(cmd: string, args: string[], none: (err: string) => boolean): Promise<string | undefined> {
  try {
    return (await execFileAsync(cmd, args, EXEC)).stdout;
  } catch (e) {
    if (none(String((e as { stderr?: string }).stderr || e))) return undefined;
    throw e;
  }
}

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
  const out = runSync('btrfs', btrfsArgs(d, o.sync), quotasOff);
  return out === undefined ? undefined : tightest(parseQgroups(out));
}

export async function btrfsQuotaAsync(dir: string): Promise<Quota | undefined> {
  const d = existingAncestor(dir);
  if (!onBtrfs(d)) return undefined;
  const out = await runAsync('btrfs', btrfsArgs(d, false), quotasOff);
  return out === undefined ? undefined : tightest(parseQgroups(out));
}

const btrfsArgs = (d: string, sync?: boolean) => ['qgroup', 'show', '-reF', '--raw', ...(sync ? ['--sync'] : []), d];
/** Quotas not enabled on this file system: nothing limits beyond the free space. */
const quotasOff = (err: string) => /quota not enabled|not enabled|ENOENT/i.test(err);

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

/** Prints, as JSON, this user's and group's block quota on the file system of argv[1] (quotactl_fd, Q_GETQUOTA). */
const GETQUOTA = String.raw`
import ctypes, errno, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
class Dqblk(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in ('bhard', 'bsoft', 'space', 'ihard', 'isoft', 'inodes', 'btime', 'itime')] + [('valid', ctypes.c_uint32)]
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
out = []
for kind, qtype, qid in (('user', 0, int(sys.argv[2])), ('group', 1, int(sys.argv[3]))):
    q = Dqblk()
    # quotactl_fd is syscall 443 (the caller checks the architecture); QCMD(Q_GETQUOTA, type).
    if libc.syscall(443, fd, ctypes.c_uint(0x80000700 | qtype), ctypes.c_uint(qid), ctypes.byref(q)) != 0:
        e = ctypes.get_errno()
        out.append({'kind': kind, 'id': qid, 'errno': errno.errorcode.get(e, str(e))})
    else:
        # Limits are in 1 KiB blocks, the usage in bytes.
        out.append({'kind': kind, 'id': qid, 'hard': q.bhard * 1024, 'soft': q.bsoft * 1024, 'used': q.space})
print(json.dumps(out))
`;

export type QuotactlRow = { kind: 'user' | 'group'; id: number } & ({ errno: string } | { hard: number; soft: number; used: number });

/** The errors that mean "no quota here": quotas off (ESRCH), or the file system or kernel without them. */
const NO_QUOTA = new Set(['ESRCH', 'ENOSYS', 'EOPNOTSUPP', 'ENOTSUP', 'ENOTTY', 'EINVAL', 'ENOENT']);

/**
 * The tightest user or group block limit of quotactl rows (a soft limit counts: past its grace
 * it is enforced like the hard one), or undefined; `off` is true when every row said "no quota".
 */
export function pickQuotactl(rows: QuotactlRow[]): { quota: Quota | undefined; off: boolean; errors: string[] } {
  let quota: Quota | undefined;
  const errors: string[] = [];
  let off = true;
  for (const r of rows) {
    if ('errno' in r) {
      if (!NO_QUOTA.has(r.errno)) errors.push(`${r.kind} ${r.id}: ${r.errno}`);
      continue;
    }
    off = false;
    const limits = [r.hard, r.soft].filter((n) => n > 0);
    if (!limits.length) continue;
    const q = {
      source: `${r.kind} quota of ${r.kind === 'user' ? 'uid' : 'gid'} ${r.id}`,
      limitBytes: Math.min(...limits),
      usedBytes: r.used,
    };
    if (!quota || q.limitBytes - q.usedBytes < quota.limitBytes - quota.usedBytes) quota = q;
  }
  return { quota, off: off && errors.length === 0, errors };
}

/** Where quotactl_fd is syscall 443 (every architecture numbered from the common table; not alpha or mips). */
const QUOTACTL_FD_443 = new Set(['x64', 'arm64', 'arm', 'ia32', 'riscv64', 's390x', 'ppc64', 'loong64']);

const quotactlArgs = (dir: string, uid: number, gid: number) => ['-I', '-B', '-c', GETQUOTA, dir, String(uid), String(gid)];

/** What quotactl_fd answers for the user and group quotas of `uid` and `gid` on the file system of `dir` (throws if python3 fails). */
export function readQuotactl(dir: string, uid: number, gid: number, python = 'python3'): QuotactlRow[] {
  return JSON.parse(runSync(python, quotactlArgs(dir, uid, gid), () => false)!) as QuotactlRow[];
}

/** File systems (by device) found without user and group quotas (or where reading them failed), until when. */
const notNow = new Map<number, number>();

interface QuotaOptions {
  /** The interpreter that runs the quotactl call (Keelson's configured python3). */
  python?: string;
  /** btrfs: commit the file system's transaction first, so the usage counts what was just written. */
  sync?: boolean;
}

/**
 * Who the writer's files are charged to on `d`: this process's user, and its group, or the
 * directory's group when the directory is setgid (new files take the directory's group). Undefined
 * where quotactl_fd cannot be called, or the file system was found without quotas a moment ago.
 */
function quotactlTarget(d: string): { dev: number; uid: number; gid: number } | undefined {
  if (!QUOTACTL_FD_443.has(os.arch())) return undefined;
  const st = fs.statSync(d);
  if ((notNow.get(st.dev) ?? 0) > Date.now()) return undefined;
  const gid = st.mode & 0o2000 /* S_ISGID */ ? st.gid : (process.getegid?.() ?? 0);
  return { dev: st.dev, uid: process.geteuid?.() ?? 0, gid };
}

/** The quota of quotactl rows, remembering a file system without quotas (or unreadable ones) for a minute. */
function settle(d: string, dev: number, rows: QuotactlRow[] | Error): Quota | undefined {
  if (rows instanceof Error) {
    notNow.set(dev, Date.now() + 60_000);
    log.warn('user and group quotas not read', { dir: d, error: String((rows as { stderr?: string }).stderr || rows).slice(0, 500) });
    return undefined;
  }
  const r = pickQuotactl(rows);
  if (r.errors.length) log.warn('user and group quotas not read', { dir: d, errors: r.errors });
  // Nothing here, or nothing readable: ask again in a minute. A quota that was read is never skipped.
  if (r.off || (r.errors.length && !r.quota)) notNow.set(dev, Date.now() + 60_000);
  return r.quota;
}

/**
 * The tighter of the writer's user quota and group quota (see quotactlTarget) on the file system
 * that holds `dir`, or undefined. A root process may pass its own quotas (CAP_SYS_RESOURCE), but
 * Keelson keeps to them anyway.
 */
export function userGroupQuota(dir: string, o: QuotaOptions = {}): Quota | undefined {
  const d = existingAncestor(dir);
  const t = quotactlTarget(d);
  if (!t) return undefined;
  let rows: QuotactlRow[] | Error;
  try {
    rows = readQuotactl(d, t.uid, t.gid, o.python);
  } catch (e) {
    rows = e as Error;
  }
  return settle(d, t.dev, rows);
}

async function userGroupQuotaAsync(dir: string, o: QuotaOptions): Promise<Quota | undefined> {
  const d = existingAncestor(dir);
  const t = quotactlTarget(d);
  if (!t) return undefined;
  let rows: QuotactlRow[] | Error;
  try {
    rows = JSON.parse((await runAsync(o.python ?? 'python3', quotactlArgs(d, t.uid, t.gid), () => false))!) as QuotactlRow[];
  } catch (e) {
    rows = e as Error;
  }
  return settle(d, t.dev, rows);
}

const tighter = (qs: (Quota | undefined)[]): Quota | undefined => {
  let best: Quota | undefined;
  for (const q of qs) if (q && (!best || q.limitBytes - q.usedBytes < best.limitBytes - best.usedBytes)) best = q;
  return best;
};

/** The quota over `dir` with the least room left: its btrfs qgroups, and the writer's user and group quotas. */
export function quotaOver(dir: string, o: QuotaOptions = {}): Quota | undefined {
  return tighter([btrfsQuota(dir, o), userGroupQuota(dir, o)]);
}

/** The same, without blocking the event loop (the watcher's samples during a run). */
export async function quotaOverAsync(dir: string, o: QuotaOptions = {}): Promise<Quota | undefined> {
  return tighter(await Promise.all([btrfsQuotaAsync(dir), userGroupQuotaAsync(dir, o)]));
}

import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import type { Config } from '../config.js';
import { layout } from '../config.js';
import type { DB } from '../store/db.js';
import { nowIso } from '../store/db.js';
import { getProject, getProjectById, type ProjectRow } from '../store/projects.js';
import { backedUpSlugs } from '../store/backups.js';
import { ConflictError, NotFoundError, InputError } from '../errors.js';
import { youngestRevision } from '../provision/svn.js';
import { log } from '../sys/log.js';
import { assertSlug } from '../names.js';
import type { BackupSettings } from '../settings/backup.js';
import { reserveFor } from './space.js';
import { fmtBytes } from '../sys/bytes.js';
import { sameDevice, volumeOf } from '../sys/volume.js';
import { acquireLease, scopeOf } from '../store/leases.js';
import { insertBackup, markInterrupted } from './catalog.js';
import { getBackup, newestVerified, recentAttempts, updateBackup, type BackupKind, type BackupRow } from '../store/backups.js';
import { asideLeftovers } from './aside.js';
import { pidOfEntry } from '../provision/owner.js';
import { pidAlive } from '../sys/liveness.js';
import type { Manifest } from './manifest.js';
import { sha256 } from '../sys/hash.js';
import { runFrame, type RunOptions } from './frame.js';
import { limitsWith, sampledQuota } from './guard.js';
import { controlBackup, projectBackup, TRAC_DB } from './bodies.js';
import type { BackupRun } from './run.js';

// The parts of a backup live beside this file: frame.ts (catalog, retention, alerts), guard.ts (the limits, the check before a byte, the watcher),
// bodies.ts (what a project's and Keelson's own backup copy and verify), manifest.ts. They see this service as a BackupRun (run.ts),
// never this file.

export type RunResult = { backup: BackupRow; skipped?: undefined } | { backup?: BackupRow; skipped: string };

/**
 * Backups: a planner that checks space before a byte is written, runners for Subversion, Trac
 * and Keelson's database that watch the space while they write, verification, the catalog,
 * retention. See docs/backups.md for the design.
 */
export class BackupService implements BackupRun {
  readonly root: string;
  readonly staging: string;

  constructor(
    readonly db: DB,
    readonly cfg: Config,
    readonly settings: BackupSettings,
  ) {
    this.root = cfg.backupDir;
    this.staging = path.join(this.root, '.staging');
  }

  repoDir(slug: string) {
    assertSlug(slug); // from a row: checked again where it becomes a path
    return path.join(layout(this.cfg).svnRoot, slug);
  }
  envDir(slug: string) {
    assertSlug(slug);
    return path.join(layout(this.cfg).tracRoot, slug);
  }

  /**
   * The backup volume with its reserve, quota and budget, for listings. The quota is the last one
   * sampled in this process (a run's check or watcher) when under a minute old, else read without
   * blocking the event loop: a listing never runs a program synchronously.
   */
  async volume() {
    const quota = await sampledQuota(this.root, this.cfg.python);
    const v = volumeOf(this.root);
    const same = sameDevice(this.root, this.cfg.dataDir);
    const r = reserveFor(v, this.settings, same);
    const limits = limitsWith(this.db, this.root, this.settings, quota);
    const shown = (kind: 'quota' | 'budget') => {
      const l = limits.find((x) => x.kind === kind);
      return l ? { name: l.name, limitBytes: l.totalBytes, usedBytes: l.usedBytes, reserveBytes: l.reserveBytes } : null;
    };
    return {
      path: this.root,
      totalBytes: v.totalBytes,
      freeBytes: v.freeBytes,
      reserveBytes: r.bytes,
      sameDeviceAsData: same,
      quota: shown('quota'),
      budget: this.settings.budgetBytes ? { ...shown('budget'), retention: this.settings.budgetRetention } : null,
    };
  }

  /**
   * At start: rows of runs whose process died become `aborted`, and their staging output
   * (named with the maker's pid) is removed. A live process's work in progress is left alone.
   * The live trees a dead in-place restore had moved aside are reported, never removed.
   */
  sweep(o: { reportAsides?: boolean } = {}): { rows: number; entries: number; asides: string[] } {
    const rows = markInterrupted(this.db).length;
    let entries = 0;
    if (fs.existsSync(this.staging)) {
      for (const e of fs.readdirSync(this.staging)) {
        const pid = pidOfEntry(e);
        if (pid && pid !== process.pid && pidAlive(pid)) continue;
        if (pid === process.pid) continue;
        fs.rmSync(path.join(this.staging, e), { recursive: true, force: true });
        entries++;
      }
    }
    if (rows || entries) log.info('backup leftovers swept', { rows, entries });
    return { rows, entries, asides: o.reportAsides === false ? [] : asideLeftovers(this.cfg) };
  }

  /** A new staging folder for one run, named with this process's pid (the sweep keeps a live one's). */
  stagingDir(what: string): string {
    fs.mkdirSync(this.staging, { recursive: true, mode: 0o700 });
    return path.join(this.staging, `${what}-p${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
  }

  /** The scope's back-off: after n refusals in a row, scheduled runs wait backoff * 2^(n-1) (at most a day). */
  backoffUntil(projectId: number | null): number | undefined {
    const recent = recentAttempts(this.db, projectId, 10);
    let n = 0;
    while (n < recent.length && recent[n]!.state === 'refused') n++;
    if (n === 0) return undefined;
    const last = Date.parse(recent[0]!.finished_at ?? recent[0]!.started_at);
    const until = last + Math.min(this.settings.backoffMs * 2 ** (n - 1), 86_400_000);
    return until > Date.now() ? until : undefined;
  }

  /** A cheap fingerprint of what a project backup holds: unchanged means no new backup is needed. */
  fingerprint(p: ProjectRow): string {
    const repo = this.repoDir(p.slug);
    const env = this.envDir(p.slug);
    const st = (f: string) => {
      try {
        const s = fs.statSync(f, { bigint: true });
        return `${s.size}:${s.mtimeNs}`;
      } catch {
        return '-';
      }
    };
    const rev = youngestRevision(repo);
    const parts = [String(rev), st(path.join(repo, 'db', 'current'))];
    // A revision property change rewrites a file in its shard's folder: the folder's mtime moves.
    for (let shard = 0; shard <= Math.floor(rev / 1000); shard++) parts.push(st(path.join(repo, 'db', 'revprops', String(shard))));
    parts.push(st(path.join(env, TRAC_DB)), st(path.join(env, 'files', 'attachments')), st(path.join(env, 'conf', 'trac.ini')));
    return crypto.createHash('sha256').update(parts.join('|')).digest('hex').slice(0, 32);
  }

  /** Backs up one project (by slug). Throws ConflictError if one is already running for it. */
  async runProject(slug: string, o: RunOptions = {}): Promise<RunResult> {
    // Every run sweeps first (a long-lived worker too): the next run after a crash cleans up after
    // it. Cheap (one query, one directory listing); a live process's work is never touched.
    this.sweep({ reportAsides: false });
    const p = getProject(this.db, slug);
    if (!p) throw new NotFoundError(`no project ${slug}`);
    if (p.state !== 'active' && p.state !== 'suspended')
      throw new InputError(`project ${slug} is ${p.state}; only active or suspended projects are backed up`);
    const trigger = o.trigger ?? 'manual';
    if (trigger === 'schedule' && !o.requested) {
      const until = this.backoffUntil(p.id);
      if (until) return { skipped: `backing off after a refusal until ${new Date(until).toISOString()}` };
    }
    let kind: BackupKind = o.kind ?? 'incremental';
    let base: BackupRow | undefined;
    if (kind === 'incremental') {
      base = newestVerified(this.db, p.id);
      if (base && (base.repo_uuid !== p.repo_uuid || !this.isOwnFolder(base) || !fs.existsSync(path.join(base.path!, 'manifest.json'))))
        base = undefined;
      // No verified base (the first backup): this one is a full. A refused incremental never becomes a full.
      if (!base) kind = 'full';
    }
    const fp = this.fingerprint(p);
    if (kind === 'incremental' && base && base.fingerprint === fp) {
      updateBackup(this.db, base.id, { confirmed_at: nowIso() });
      return { backup: getBackup(this.db, base.id)!, skipped: `unchanged since backup #${base.id}` };
    }
    const id = this.db
      .transaction(() => {
        const id = insertBackup(this.db, {
          projectId: p.id,
          slug: p.slug,
          repoUuid: p.repo_uuid,
          kind,
          baseId: base?.id ?? null,
          trigger,
          actor: o.actor ?? 'system',
        });
        acquireLease(this.db, scopeOf(p.id), id);
        return id;
      })
      .immediate();
    updateBackup(this.db, id, { fingerprint: fp });
    return { backup: await runFrame(this, id, p.id, o, (ctl, plan) => projectBackup(this, ctl, plan, p, kind, base)) };
  }

  /** Backs up Keelson's own database through SQLite's online backup API. */
  async runControl(o: RunOptions = {}): Promise<RunResult> {
    this.sweep({ reportAsides: false });
    if ((o.trigger ?? 'manual') === 'schedule' && !o.requested) {
      const until = this.backoffUntil(null);
      if (until) return { skipped: `backing off after a refusal until ${new Date(until).toISOString()}` };
    }
    const id = this.db
      .transaction(() => {
        const id = insertBackup(this.db, {
          projectId: null,
          slug: null,
          repoUuid: null,
          kind: 'full',
          baseId: null,
          trigger: o.trigger ?? 'manual',
          actor: o.actor ?? 'system',
        });
        acquireLease(this.db, scopeOf(null), id);
        return id;
      })
      .immediate();
    return { backup: await runFrame(this, id, null, o, (ctl, plan) => controlBackup(this, ctl, plan)) };
  }

  /** Every live project, one after another (the scheduler and `keelson backup run` with no project). */
  async runAll(kind: BackupKind, o: RunOptions = {}): Promise<{ done: number; skipped: number; refused: number; failed: number }> {
    const slugs = backedUpSlugs(this.db);
    const out = { done: 0, skipped: 0, refused: 0, failed: 0 };
    for (const slug of slugs) {
      try {
        const r = await this.runProject(slug, { ...o, kind });
        if (r.skipped !== undefined) out.skipped++;
        else if (r.backup.state === 'verified') out.done++;
        else if (r.backup.state === 'refused') out.refused++;
        else out.failed++;
      } catch (e) {
        out.failed++;
        log.error('backup run', { project: slug, error: String(e) });
      }
    }
    return out;
  }

  /**
   * A backup row's folder, only where Keelson makes backups: below the backup directory (not its
   * staging), with no link on the way. A row is data: whoever could write the database (the API
   * runs apart as its own user in production) must not point a restore, a test restore or an
   * incremental's base at a tree of its own.
   */
  folderOf(row: BackupRow): string {
    if (!row.path) throw new InputError(`backup #${row.id} has no files (state ${row.state})`);
    const rel = path.relative(this.root, row.path);
    const refuse = () =>
      new ConflictError(`backup #${row.id}'s folder ${row.path} is not one Keelson made under ${this.root}; refusing it`);
    if (
      path.resolve(row.path) !== row.path ||
      !rel ||
      rel.startsWith('..') ||
      path.isAbsolute(rel) ||
      rel.split(path.sep)[0] === '.staging'
    )
      throw refuse();
    let real: string;
    try {
      real = fs.realpathSync(row.path);
    } catch {
      throw refuse();
    }
    if (real !== path.join(fs.realpathSync(this.root), rel)) throw refuse();
    return row.path;
  }

  private isOwnFolder(row: BackupRow): boolean {
    try {
      this.folderOf(row);
      return true;
    } catch (e) {
      log.error('backup row refused as a base', { backup: row.id, error: String(e) });
      return false;
    }
  }

  readManifest(row: BackupRow): Manifest {
    const raw = fs.readFileSync(path.join(this.folderOf(row), 'manifest.json'));
    if (row.manifest_sha256 && sha256(raw) !== row.manifest_sha256)
      throw new Error(`the manifest of backup #${row.id} does not match the catalog's checksum`);
    return JSON.parse(raw.toString('utf8')) as Manifest;
  }

  projectOf(row: BackupRow): ProjectRow | undefined {
    return row.project_id === null ? undefined : getProjectById(this.db, row.project_id);
  }
}

export { fmtBytes };

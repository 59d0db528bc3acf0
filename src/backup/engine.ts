import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import Database from 'better-sqlite3';
import type { Config } from '../config.js';
import { layout } from '../config.js';
import type { DB } from '../store/db.js';
import { nowIso } from '../store/db.js';
import { getProject, getProjectById, type ProjectRow } from '../store/model.js';
import { NotFoundError, InputError } from '../errors.js';
import { readRepositoryUuid, youngestRevision } from '../provision/svn.js';
import { log } from '../sys/log.js';
import type { BackupSettings } from './settings.js';
import { RunControl, SpaceAbort, isNoSpace, type Progress } from './control.js';
import { belowFloor, checkFits, reserveFor, type Need, type Reserve, type SpaceNumbers } from './space.js';
import { fmtBytes } from '../sys/bytes.js';
import { sameDevice, volumeOf } from '../sys/volume.js';
import { copyEntries, hashRest, listTree, needOf, type Entry, type FileRecord } from './files.js';
import { fsyncDirSync, writeFileAtomicSync } from '../sys/fs.js';
import {
  acquireLease,
  finishBackup,
  getBackup,
  insertBackup,
  leasedBackupId,
  markInterrupted,
  newestVerified,
  recentAttempts,
  releaseLease,
  renewLease,
  scopeOf,
  updateBackup,
  type BackupKind,
  type BackupRow,
} from './catalog.js';
import { alert } from './alert.js';
import { applyRetention } from './retention.js';
import { asideLeftovers } from './aside.js';
import { pidAlive, pidOfEntry } from '../provision/owner.js';
import { backedUpSlugs, databasePages } from '../store/backups.js';

export interface Manifest {
  format: 1;
  backupId: number;
  kind: BackupKind;
  baseId: number | null;
  /** null: Keelson's own database. */
  project: { id: number; slug: string; repoUuid: string } | null;
  youngestRev: number | null;
  revFrom: number | null;
  createdAt: string;
  files: FileRecord[];
  totalBytes: number;
}

export interface RunOptions {
  kind?: BackupKind;
  trigger?: 'schedule' | 'api' | 'cli' | 'manual';
  actor?: string;
  onProgress?: (p: Progress) => void;
  /** Aborts the run (its programs killed, staging removed, recorded as failed with the reason). */
  signal?: AbortSignal;
}

export type RunResult = { backup: BackupRow; skipped?: undefined } | { backup?: BackupRow; skipped: string };

/** FSFS files that are never copied raw: commits in progress, and the rep-cache (svnadmin copies it consistently). */
const SVN_SKIP = /^db\/(transactions|txn-protorevs)\/.|^db\/rep-cache\.db(-journal|-wal|-shm)?$/;
/** Revision files are immutable once committed (renamed into db/revs): safe to share between backups. */
const IMMUTABLE = /^db\/revs\//;
const TRAC_DB = 'db/trac.db';
const TRAC_SKIP = /^db\/trac\.db(-journal|-wal|-shm)?$|^log\/./;

const stamp = (d = new Date()) =>
  d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');

/**
 * Backups: a planner that checks space before a byte is written, runners for Subversion, Trac
 * and Keelson's database that watch the space while they write, verification, the catalog,
 * retention. See README "Backups" for the design.
 */
export class BackupService {
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

  private repoDir(slug: string) {
    return path.join(layout(this.cfg).svnRoot, slug);
  }
  private envDir(slug: string) {
    return path.join(layout(this.cfg).tracRoot, slug);
  }

  volume() {
    const v = volumeOf(this.root);
    const same = sameDevice(this.root, this.cfg.dataDir);
    const r = reserveFor(v, this.settings, same);
    return { path: this.root, totalBytes: v.totalBytes, freeBytes: v.freeBytes, reserveBytes: r.bytes, sameDeviceAsData: same };
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

  private stagingDir(what: string): string {
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
    if (trigger === 'schedule') {
      const until = this.backoffUntil(p.id);
      if (until) return { skipped: `backing off after a refusal until ${new Date(until).toISOString()}` };
    }
    let kind: BackupKind = o.kind ?? 'incremental';
    let base: BackupRow | undefined;
    if (kind === 'incremental') {
      base = newestVerified(this.db, p.id);
      if (base && (base.repo_uuid !== p.repo_uuid || !base.path || !fs.existsSync(path.join(base.path, 'manifest.json')))) base = undefined;
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
    return { backup: await this.execute(id, p.id, o, (ctl, plan) => this.projectBackup(ctl, plan, p, kind, base)) };
  }

  /** Backs up Keelson's own database through SQLite's online backup API. */
  async runControl(o: RunOptions = {}): Promise<RunResult> {
    this.sweep({ reportAsides: false });
    if ((o.trigger ?? 'manual') === 'schedule') {
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
    return { backup: await this.execute(id, null, o, (ctl, plan) => this.controlBackup(ctl, plan)) };
  }

  /**
   * The frame every backup runs in: plan (space check before any write), watch the volume while
   * writing, verify, place, catalog, retention; on any error remove the partial output and record why.
   */
  private async execute(
    id: number,
    projectId: number | null,
    o: RunOptions,
    body: (ctl: RunControl, plan: (need: Need) => void) => Promise<{ manifest: Manifest; finalDir: string; fresh: number }>,
  ): Promise<BackupRow> {
    const scope = scopeOf(projectId);
    const ctl = new RunControl(o.onProgress);
    if (o.signal) {
      const onAbort = () => ctl.abort(o.signal!.reason instanceof Error ? o.signal!.reason : new Error(String(o.signal!.reason)));
      if (o.signal.aborted) onAbort();
      else o.signal.addEventListener('abort', onAbort, { once: true });
    }
    const vol = () => volumeOf(this.root);
    const reserve: Reserve = reserveFor(vol(), this.settings, sameDevice(this.root, this.cfg.dataDir));
    let need: Need = { bytes: 0, inodes: 0 };
    let numbers: SpaceNumbers | undefined;
    const snap = (): SpaceNumbers => {
      const v = vol();
      return {
        neededBytes: need.bytes,
        freeBytes: v.freeBytes,
        reserveBytes: reserve.bytes,
        neededInodes: need.inodes,
        freeInodes: v.freeInodes,
        reserveInodes: reserve.inodes,
      };
    };
    let watcher: NodeJS.Timeout | undefined;
    const leaseTimer = setInterval(() => {
      try {
        if (!renewLease(this.db, scope, id)) ctl.abort(new Error('the backup lease was taken over'));
      } catch (e) {
        log.warn('backup lease renewal failed', { id, error: String(e) });
      }
    }, 10_000);
    leaseTimer.unref();
    let stage: string | undefined;
    // Set once the finished backup is renamed into place: an abort in the last moment removes it too.
    let placed: string | undefined;
    const t0 = Date.now();
    try {
      const plan = (n: Need) => {
        need = n;
        ctl.bytesTotal = n.bytes;
        const v = vol();
        const why = checkFits(v, n, reserve);
        if (why) {
          numbers = snap();
          throw new SpaceAbort(`refused before writing: ${why}`);
        }
        // From here on the volume is watched: another writer may fill it while we work.
        watcher = setInterval(() => {
          try {
            const now = vol();
            const below = belowFloor(now, reserve);
            if (below) {
              numbers = snap();
              ctl.abort(new SpaceAbort(`aborted during the run: ${below}`));
            }
          } catch (e) {
            log.warn('space watcher', { error: String(e) });
          }
        }, this.settings.watchMs);
        watcher.unref();
        stage = this.stagingDir(`b${id}`);
        updateBackup(this.db, id, { staging_path: stage });
      };
      const { manifest, finalDir, fresh } = await body(ctl, plan);
      placed = finalDir;
      ctl.throwIfAborted();
      clearInterval(watcher);
      const logical = manifest.files.reduce((a, f) => a + f.size, 0);
      updateBackup(this.db, id, {
        state: 'verified',
        path: finalDir,
        staging_path: null,
        bytes: fresh,
        logical_bytes: logical,
        files: manifest.files.length,
        rev_from: manifest.revFrom,
        rev_to: manifest.youngestRev,
        manifest_sha256: sha256(fs.readFileSync(path.join(finalDir, 'manifest.json'))),
        finished_at: nowIso(),
        duration_ms: Date.now() - t0,
        holder: null,
      });
      log.info('backup verified', { id, project: manifest.project?.slug ?? null, kind: manifest.kind, bytes: fresh, ms: Date.now() - t0 });
      // Retention runs only now, after a new backup verified.
      try {
        applyRetention(this.db, this.settings, projectId);
      } catch (e) {
        log.error('backup retention failed', { id, error: String(e) });
      }
    } catch (err) {
      clearInterval(watcher);
      const e = ctl.aborted instanceof SpaceAbort ? ctl.aborted : err;
      if (stage) fs.rmSync(stage, { recursive: true, force: true });
      if (placed) fs.rmSync(placed, { recursive: true, force: true });
      const row = getBackup(this.db, id);
      const slug = row?.slug ?? null;
      if (e instanceof SpaceAbort || isNoSpace(e)) {
        const reason = e instanceof SpaceAbort ? e.message : `aborted: the volume filled during the run (${(e as Error).message})`;
        const n = numbers ?? snap();
        finishBackup(this.db, id, 'refused', reason, n);
        await alert(this.settings.alertWebhook, 'backup.refused', {
          backup: id,
          project: slug,
          reason,
          needed: n.neededBytes,
          free: n.freeBytes,
          reserve: n.reserveBytes,
        });
      } else {
        const reason = `failed: ${(e as Error).message ?? String(e)}`.slice(0, 4000);
        finishBackup(this.db, id, 'failed', reason);
        await alert(this.settings.alertWebhook, 'backup.failed', { backup: id, project: slug, reason });
      }
    } finally {
      clearInterval(watcher);
      clearInterval(leaseTimer);
      releaseLease(this.db, scope, id);
    }
    return getBackup(this.db, id)!;
  }

  private finalDir(projectId: number | null, slug: string | null, id: number, kind: BackupKind): string {
    const dir = projectId === null ? path.join(this.root, 'keelson') : path.join(this.root, 'projects', `${slug}-${projectId}`);
    return path.join(dir, `${stamp()}-b${id}-${kind}`);
  }

  private async place(ctl: RunControl, stage: string, finalDir: string, manifest: Manifest): Promise<void> {
    ctl.throwIfAborted();
    // The manifest is written last: a backup without one is never used.
    writeFileAtomicSync(path.join(stage, 'manifest.json'), JSON.stringify(manifest, null, 1) + '\n');
    fs.mkdirSync(path.dirname(finalDir), { recursive: true });
    fs.renameSync(stage, finalDir);
    fsyncDirSync(path.dirname(finalDir));
  }

  private async projectBackup(
    ctl: RunControl,
    plan: (need: Need) => void,
    p: ProjectRow,
    kind: BackupKind,
    base: BackupRow | undefined,
  ): Promise<{ manifest: Manifest; finalDir: string; fresh: number }> {
    const id = this.currentId(p.id);
    const repo = this.repoDir(p.slug);
    const env = this.envDir(p.slug);
    const liveUuid = readRepositoryUuid(repo);
    if (liveUuid !== p.repo_uuid) throw new Error(`repository ${repo} has UUID ${liveUuid} but project ${p.slug} records ${p.repo_uuid}`);
    // Read the youngest revision first: every revision file up to it is complete and immutable.
    const youngestAtStart = youngestRevision(repo);
    const liveEntries = listTree(repo, (r) => SVN_SKIP.test(r));
    const hasEnv = fs.existsSync(path.join(env, 'VERSION'));
    const envEntries = hasEnv ? listTree(env, (r) => TRAC_SKIP.test(r)) : [];
    const tracDbSize = hasEnv ? fs.statSync(path.join(env, TRAC_DB)).size : 0;

    let seedRoot = repo;
    let seedEntries: Entry[] = liveEntries;
    let baseManifest: Manifest | undefined;
    let baseRev: number | null = null;
    if (kind === 'incremental' && base?.path) {
      baseManifest = JSON.parse(fs.readFileSync(path.join(base.path, 'manifest.json'), 'utf8')) as Manifest;
      baseRev = baseManifest.youngestRev;
      seedRoot = path.join(base.path, 'svn');
      seedEntries = listTree(seedRoot);
    }
    const linked = (rel: string) => kind === 'incremental' && IMMUTABLE.test(rel);
    // Peak: the seed (linked revision files cost nothing), what svnadmin adds (the live files the
    // seed does not have), the Trac copy and its database, the manifest, and slack.
    const seedNames = new Set(seedEntries.map((e) => e.rel));
    const added = liveEntries.filter((e) => !seedNames.has(e.rel) || !linked(e.rel));
    const n1 = needOf(seedEntries, linked);
    const n2 = kind === 'incremental' ? needOf(added) : { bytes: 0, inodes: 0 };
    const n3 = needOf(envEntries);
    const need = {
      bytes: n1.bytes + n2.bytes + n3.bytes + Math.ceil(tracDbSize * 1.1) + 1024 * 1024,
      inodes: n1.inodes + n2.inodes + n3.inodes + 16,
    };
    plan(need);
    const stage = this.stagingOf(id);
    const svnStage = path.join(stage, 'svn');
    const known = new Map((baseManifest?.files ?? []).map((f) => [f.path, f]));
    const records = new Map<string, FileRecord>();

    ctl.progress('copying repository');
    for (const r of await copyEntries(ctl, seedRoot, svnStage, seedEntries, {
      link: linked,
      knownHash: (rel, size) => {
        const k = known.get(`svn/${rel}`);
        return k && k.size === size ? k.sha256 : undefined;
      },
      // Checksums are taken from the finished copy while it is synced (the 'sync + checksums' phase).
      hash: () => false,
    })) {
      records.set(`svn/${r.path}`, { ...r, path: `svn/${r.path}` });
    }
    // svnadmin makes the copy consistent: revisions committed meanwhile, revision properties,
    // the rep-cache (trimmed to the copied revisions), db/current last.
    ctl.progress('svnadmin hotcopy --incremental');
    await ctl.run('svnadmin', ['hotcopy', '--incremental', '--quiet', repo, svnStage]);
    const youngest = youngestRevision(svnStage);
    const uuid = readRepositoryUuid(svnStage);
    if (uuid !== p.repo_uuid) throw new Error(`copied repository has UUID ${uuid}, not ${p.repo_uuid}`);
    if (youngest < youngestAtStart) throw new Error(`copied repository is at r${youngest}, older than r${youngestAtStart}`);

    if (hasEnv) {
      ctl.progress('copying Trac environment');
      const tracStage = path.join(stage, 'trac');
      await copyEntries(ctl, env, tracStage, envEntries, { hash: () => false });
      fs.mkdirSync(path.join(tracStage, 'db'), { recursive: true });
      await sqliteOnlineBackup(ctl, path.join(env, TRAC_DB), path.join(tracStage, TRAC_DB), true);
    }
    // On disk before it counts: one syncfs of the backup volume (coreutils `sync -f`), not an fsync per
    // file. Meanwhile the sha256 of every file as it is in the backup (hard-linked revision files keep
    // their base's, same inode) is read from the page cache: the kernel's writeback and the hashing
    // overlap instead of following each other. The manifest is written only after both.
    ctl.progress('sync + checksums');
    await Promise.all([ctl.run('sync', ['-f', stage]), hashRest(ctl, stage, '', records)]);

    ctl.progress('verifying');
    updateBackup(this.db, id, { state: 'verifying' });
    const from = baseRev !== null && baseRev < youngest ? baseRev + 1 : kind === 'full' ? 0 : youngest;
    await ctl.run('svnadmin', ['verify', '--quiet', '-r', `${from}:${youngest}`, svnStage]);
    if (hasEnv) integrityCheck(path.join(stage, 'trac', TRAC_DB));

    const files = [...records.values()].sort((a, b) => a.path.localeCompare(b.path));
    const linkedBytes = files
      .filter((f) => f.path.startsWith('svn/') && linked(f.path.slice(4)) && known.has(f.path))
      .reduce((a, f) => a + f.size, 0);
    const total = files.reduce((a, f) => a + f.size, 0);
    const manifest: Manifest = {
      format: 1,
      backupId: id,
      kind,
      baseId: base?.id ?? null,
      project: { id: p.id, slug: p.slug, repoUuid: p.repo_uuid },
      youngestRev: youngest,
      revFrom: kind === 'incremental' && baseRev !== null ? baseRev + 1 : 0,
      createdAt: nowIso(),
      files,
      totalBytes: total,
    };
    const finalDir = this.finalDir(p.id, p.slug, id, kind);
    await this.place(ctl, stage, finalDir, manifest);
    return { manifest, finalDir, fresh: total - linkedBytes };
  }

  private async controlBackup(
    ctl: RunControl,
    plan: (need: Need) => void,
  ): Promise<{ manifest: Manifest; finalDir: string; fresh: number }> {
    const id = this.currentId(null);
    const { pages, pageSize } = databasePages(this.db);
    plan({ bytes: Math.ceil(pages * pageSize * 1.2) + 1024 * 1024, inodes: 8 });
    const stage = this.stagingOf(id);
    fs.mkdirSync(stage, { recursive: true });
    ctl.progress('copying database');
    const dest = path.join(stage, 'keelson.db');
    await this.db.backup(dest, {
      progress: ({ totalPages, remainingPages }) => {
        ctl.throwIfAborted();
        ctl.bytesTotal = totalPages * pageSize;
        ctl.bytesDone = (totalPages - remainingPages) * pageSize;
        ctl.progress('copying database');
        return 256;
      },
    });
    ctl.progress('verifying');
    updateBackup(this.db, id, { state: 'verifying' });
    integrityCheck(dest);
    const records = new Map<string, FileRecord>();
    await hashRest(ctl, stage, '', records);
    await ctl.run('sync', ['-f', stage]);
    const files = [...records.values()];
    const total = files.reduce((a, f) => a + f.size, 0);
    const manifest: Manifest = {
      format: 1,
      backupId: id,
      kind: 'full',
      baseId: null,
      project: null,
      youngestRev: null,
      revFrom: null,
      createdAt: nowIso(),
      files,
      totalBytes: total,
    };
    const finalDir = this.finalDir(null, null, id, 'full');
    await this.place(ctl, stage, finalDir, manifest);
    return { manifest, finalDir, fresh: total };
  }

  /** The running row of a scope (the one whose lease we hold). */
  private currentId(projectId: number | null): number {
    const r = leasedBackupId(this.db, scopeOf(projectId));
    if (r === undefined) throw new Error('no backup lease held');
    return r;
  }
  private stagingOf(id: number): string {
    const s = getBackup(this.db, id)?.staging_path;
    if (!s) throw new Error(`backup #${id} has no staging folder`);
    return s;
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

  readManifest(row: BackupRow): Manifest {
    if (!row.path) throw new InputError(`backup #${row.id} has no files (state ${row.state})`);
    const raw = fs.readFileSync(path.join(row.path, 'manifest.json'));
    if (row.manifest_sha256 && sha256(raw) !== row.manifest_sha256)
      throw new Error(`the manifest of backup #${row.id} does not match the catalog's checksum`);
    return JSON.parse(raw.toString('utf8')) as Manifest;
  }

  projectOf(row: BackupRow): ProjectRow | undefined {
    return row.project_id === null ? undefined : getProjectById(this.db, row.project_id);
  }
}

export function sha256(b: Buffer): string {
  return crypto.createHash('sha256').update(b).digest('hex');
}

/** PRAGMA integrity_check on a copy; throws with SQLite's answer unless it is "ok". */
export function integrityCheck(file: string): void {
  const d = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const rows = d.pragma('integrity_check') as { integrity_check: string }[];
    const msg = rows.map((r) => r.integrity_check).join('; ');
    if (msg !== 'ok') throw new Error(`integrity_check of ${file}: ${msg.slice(0, 500)}`);
  } finally {
    d.close();
  }
}

/** SQLite's online backup API: a consistent copy while Trac keeps writing. The watcher's abort stops it. */
async function sqliteOnlineBackup(ctl: RunControl, src: string, dest: string, readonly: boolean): Promise<void> {
  const d = new Database(src, { readonly, fileMustExist: true });
  try {
    d.pragma('busy_timeout = 5000');
    await d.backup(dest, {
      progress: () => {
        ctl.throwIfAborted();
        return 256;
      },
    });
  } finally {
    d.close();
  }
}

export { fmtBytes };

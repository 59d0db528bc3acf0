import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { layout } from '../config.js';
import { nowIso } from '../store/db.js';
import {
  audit,
  createProject,
  getProject,
  getProjectById,
  JOB_CREDENTIALS,
  JOB_RECONCILE,
  members,
  setProjectState,
} from '../store/model.js';
import { enqueue } from '../jobs/queue.js';
import { ConflictError, DomainError, InputError, NotAllowedError, NotFoundError } from '../errors.js';
import { assertSlug } from '../names.js';
import { readRepositoryUuid, youngestRevision } from '../provision/svn.js';
import { ownRepository, ownTracEnv, purgeRepository, purgeTracEnv, serviceOwners } from '../provision/owner.js';
import { TracHelper } from '../provision/trac.js';
import { publishTracIni, renderProjectTracIni } from '../files/trac/ini.js';
import { publishPostCommitHook } from '../files/hooks/post-commit.js';
import { Apache } from '../provision/apache.js';
import { renderTracPermissions, type ProjectAccess } from '../authz/render.js';
import { publishAuthz, writeCheckedAuthz } from '../authz/publish.js';
import { AuthzChecker } from '../authz/canary.js';
import { fsyncDirSync } from '../sys/fs.js';
import { readAccess } from '../store/permissions.js';
import { log } from '../sys/log.js';
import { RunControl, type Progress } from './control.js';
import { copyEntries, listTree, needOf } from './files.js';
import { checkFits, reserveFor } from './space.js';
import { sameDevice, volumeOf } from '../sys/volume.js';
import { acquireLease, getBackup, releaseLease, renewLease, scopeOf, updateBackup, type BackupRow } from './catalog.js';
import { integrityCheck, type BackupService, type Manifest } from './engine.js';
import { asideFolder, asideLeftovers } from './aside.js';
import { forgetTracPermVersion, setProjectRepoUuid, testRestoreCandidates } from '../store/backups.js';

export class InsufficientStorageError extends DomainError {
  constructor(message: string) {
    super(507, 'insufficient_storage', message);
  }
}

export interface RestoreOptions {
  /** In place: over the project the backup was taken of (suspended while it runs). */
  inPlace?: boolean;
  /** A new project's slug (or, with inPlace, the target, which must be the backup's own project). */
  to?: string;
  /** Owner of a new project; default: the original project's owners. */
  owner?: string;
  admin: boolean;
  actor: string;
  onProgress?: (p: Progress) => void;
  /**
   * In place: called once the project is suspended and its live repository denies everybody,
   * before anything is copied (for tests, to act while the restore runs).
   */
  onSuspended?: () => Promise<void> | void;
  /** How often the lease is renewed (it expires after 60 s); default 10 s. */
  leaseRenewMs?: number;
}

export interface RestoreResult {
  backupId: number;
  project: string;
  mode: 'in-place' | 'new';
  youngestRev: number;
  repoUuid: string;
}

/** A staged repository answers to nobody until the reconciler publishes the project's real authz. */

/**
 * Restores a verified backup: checks the cross-tenant identity (slug, id, repository UUID),
 * copies the files into the data volume's staging folder checking every checksum against the
 * manifest, then swaps them in with renames and has the reconciler republish authz and
 * credentials.
 */
export async function restoreBackup(svc: BackupService, backupId: number, o: RestoreOptions): Promise<RestoreResult> {
  const db = svc.db;
  const cfg = svc.cfg;
  const l = layout(cfg);
  const row = getBackup(db, backupId);
  if (!row) throw new NotFoundError(`no backup #${backupId}`);
  if (row.project_id === null) {
    throw new InputError(
      `backup #${backupId} is Keelson's own database: stop Keelson and copy ${row.path ?? '<backup>'}/keelson.db over ${l.db} (removing keelson.db-wal and -shm)`,
    );
  }
  if (row.state !== 'verified') throw new ConflictError(`backup #${backupId} is ${row.state}; only verified backups are restored`);
  const m = svc.readManifest(row);
  const src = m.project!;
  if (src.id !== row.project_id || src.repoUuid !== row.repo_uuid)
    throw new ConflictError(`backup #${backupId}'s manifest does not match its catalog row; refusing it`);

  let mode: 'in-place' | 'new';
  let targetSlug: string;
  if (o.inPlace) {
    mode = 'in-place';
    targetSlug = o.to ?? src.slug;
    const t = getProject(db, targetSlug);
    if (!t) throw new NotFoundError(`no project ${targetSlug} to restore over; restore to a new slug instead`);
    // Cross-tenant check: never put one project's data under another's name and members.
    if (t.id !== src.id || t.slug !== src.slug || t.repo_uuid !== src.repoUuid) {
      throw new ConflictError(
        `backup #${backupId} is of project ${src.slug} (id ${src.id}, repository ${src.repoUuid}); refusing to restore it over ${t.slug} (id ${t.id}, repository ${t.repo_uuid}). An admin may restore it to a new slug.`,
      );
    }
  } else {
    mode = 'new';
    if (!o.to) throw new InputError('to: the slug of the new project is required (or restore in place)');
    assertSlug(o.to);
    targetSlug = o.to;
    const t = getProject(db, targetSlug);
    if (t) {
      if (t.id === src.id && t.repo_uuid === src.repoUuid)
        throw new ConflictError(`${t.slug} is the backup's own project: restore it in place`);
      throw new ConflictError(
        `backup #${backupId} is of project ${src.slug}; refusing to restore it over ${t.slug}, another project. Choose a new slug.`,
      );
    }
    if (!o.admin) throw new NotAllowedError('restoring a backup into a new project needs an operator (admin)');
  }

  const targetId = mode === 'in-place' ? src.id : null;
  const scope = targetId !== null ? scopeOf(targetId) : `restore:${targetSlug}`;
  const owners = await serviceOwners(cfg);
  acquireLease(db, scope, backupId);
  // From here on everything runs inside the try below, whose finally stops the renewal and releases the lease.
  const ctl = new RunControl(o.onProgress);
  // Renewed like a backup's: a restore that lost its lease (taken over after it expired) stops
  // before it swaps anything in, and its children are killed.
  const leaseTimer = setInterval(() => {
    try {
      if (!renewLease(db, scope, backupId)) ctl.abort(new ConflictError(`the restore lease of ${scope} was taken over; restore stopped`));
    } catch (e) {
      log.warn('restore lease renewal failed', { backup: backupId, error: String(e) });
    }
  }, o.leaseRenewMs ?? 10_000);
  leaseTimer.unref();
  const stage = path.join(l.staging, `restore-${targetSlug}-p${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
  const repoDir = path.join(l.svnRoot, targetSlug);
  const envDir = path.join(l.tracRoot, targetSlug);
  const hasTrac = m.files.some((f) => f.path.startsWith('trac/'));
  let prevState: string | undefined;
  const moved: { live: string; aside: string }[] = [];
  // Trac, as the Trac user through Keelson's helper: checks the new trac.ini, then resets the environment.
  const trac = new TracHelper(cfg, l);
  // libsvn's parser, for every authz file the restore writes (deny-all until the reconciler publishes).
  const checker = new AuthzChecker(cfg.python);
  let asideDir: string | undefined;
  const placed: string[] = [];
  try {
    // Leftovers of a restore that died are reported, never deleted (they may be the only live copy).
    asideLeftovers(cfg);
    // Space on the data volume: the restored copy must fit with the reserve left.
    const entries = listTree(row.path!);
    const need = needOf(entries);
    const v = volumeOf(cfg.dataDir);
    const why = checkFits(v, need, reserveFor(v, svc.settings, true));
    if (why) throw new InsufficientStorageError(`restore refused: ${why}`);

    // In place: the project is suspended, and its live repository denies everybody before a byte
    // is copied. Suspension alone reaches Apache only when the reconciler republishes authz; a
    // commit Apache accepted during the restore would be acknowledged and then discarded.
    let denyAll: ProjectAccess | undefined;
    if (mode === 'in-place') {
      const t = getProjectById(db, src.id)!;
      prevState = t.state;
      if (t.state !== 'suspended') setProjectState(db, t.id, 'suspended', null);
      // Published like any version (the suspended snapshot's): recorded and renamed in one write
      // transaction, so a publisher still holding an older, active snapshot finds itself stale and
      // cannot write it over the deny-all file. A newer version published meanwhile is suspended
      // too; the loop publishes over it at its own version.
      for (let attempt = 0; ; attempt++) {
        const snap = readAccess(db, src.id);
        if (!snap) throw new NotFoundError(`project ${targetSlug} went away`);
        denyAll = { ...snap.access, suspended: true };
        const r = await publishAuthz(db, {
          projectId: src.id,
          file: path.join(repoDir, 'conf', 'authz'),
          access: denyAll,
          version: snap.version,
          checker,
          publisher: `restore:pid:${process.pid}`,
        });
        if (!r.stale) break;
        if (attempt === 5) throw new ConflictError(`the permissions of ${targetSlug} keep changing; restore not started`);
      }
      await o.onSuspended?.();
      ctl.throwIfAborted();
    }

    // Copy and check every file against the manifest.
    ctl.bytesTotal = m.totalBytes;
    ctl.progress('copying and checking');
    const want = new Map(m.files.map((f) => [f.path, f]));
    const got = await copyEntries(
      ctl,
      row.path!,
      stage,
      entries.filter((e) => e.rel !== 'manifest.json'),
    );
    for (const f of got) {
      const w = want.get(f.path);
      if (!w) continue; // files svnadmin recreates (locks) are not in every manifest
      if (w.sha256 !== f.sha256 || w.size !== f.size)
        throw new ConflictError(`backup #${backupId}: ${f.path} does not match its checksum; the backup is damaged`);
      want.delete(f.path);
    }
    if (want.size)
      throw new ConflictError(`backup #${backupId} is missing ${want.size} files, e.g. ${[...want.keys()][0]}; the backup is damaged`);
    const svnStage = path.join(stage, 'svn');
    const tracStage = path.join(stage, 'trac');
    if (readRepositoryUuid(svnStage) !== src.repoUuid || youngestRevision(svnStage) !== m.youngestRev) {
      throw new Error(`backup #${backupId}: the restored repository is not r${m.youngestRev} of ${src.repoUuid}`);
    }
    if (hasTrac) integrityCheck(path.join(tracStage, 'db', 'trac.db'));

    let newUuid = src.repoUuid;
    if (mode === 'new') {
      // A copy is a new repository: its own UUID, and nobody has access until the reconciler publishes.
      newUuid = crypto.randomUUID();
      await ctl.run('svnadmin', ['setuuid', svnStage, newUuid]);
      await writeCheckedAuthz(path.join(svnStage, 'conf', 'authz'), { slug: targetSlug, visibility: 'private', members: [] }, checker);
    } else {
      // Same UUID, new instance ID (setuuid makes one): Apache's FSFS caches are keyed by it, and
      // the restored revisions after the backup's youngest will differ from the ones they cached.
      await ctl.run('svnadmin', ['setuuid', svnStage, src.repoUuid]);
      // In place: the suspended project's authz (nobody)
      // until the reconciler publishes today's access rules after the restore.
      await writeCheckedAuthz(path.join(svnStage, 'conf', 'authz'), denyAll!, checker);
    }
    if (hasTrac) {
      // Today's trac.ini, never the backup's: an older release let Trac write it (a log file
      // anywhere, components enabled), and Trac is about to open this environment.
      await publishTracIni(
        path.join(tracStage, 'conf', 'trac.ini'),
        renderProjectTracIni({
          slug: targetSlug,
          title: mode === 'new' ? targetSlug : (getProject(db, targetSlug)?.title ?? targetSlug),
          inheritFile: l.tracInherit,
          repoDir,
          baseUrl: `${cfg.publicUrl}/trac/${targetSlug}`,
        }),
        trac,
        { shared: false },
      );
    }
    // Today's hook for the project it becomes, not the backup's day's (nor, for a copy, the original's).
    await publishPostCommitHook(svnStage, targetSlug, l.commitSpool);
    // A backup may be older than the rules: what Keelson does not own goes before anything is served.
    purgeRepository(svnStage);
    await ownRepository(svnStage, owners, { deep: true });
    ctl.throwIfAborted();
    ctl.progress('swapping in');
    const swap = (staged: string, live: string, what: 'svn' | 'trac') => {
      if (fs.existsSync(live)) {
        if (mode === 'new') throw new ConflictError(`${live} exists; refusing to replace files no project owns`);
        // Not in staging (swept at start): until the restore ends this may be the only live copy.
        asideDir ??= asideFolder(cfg, hasTrac ? [l.svnRoot, l.tracRoot] : [l.svnRoot], targetSlug, src.id);
        const aside = path.join(asideDir, what);
        fs.renameSync(live, aside);
        moved.push({ live, aside });
      }
      // The two renames back to back: between them the live path does not exist (clients get 404,
      // and a restore killed there leaves the project without a repository). The directory fsyncs
      // come after both; a directory fsync can wait for a journal commit of everything just copied.
      fs.renameSync(staged, live);
      placed.push(live);
      if (asideDir) fsyncDirSync(asideDir);
      fsyncDirSync(path.dirname(live));
    };
    swap(svnStage, repoDir, 'svn');
    if (hasTrac) {
      // The cache of the repository in trac.db may be ahead of or behind the restored repository,
      // or of another path: rebuild it from the repository now in place.
      // Trac runs as the Trac user through Keelson's helper (its guard loads no plugin from the
      // backup), never as root. A copy keeps none of the old project's members: permissions are the
      // role groups only until the reconciler converges them.
      purgeTracEnv(tracStage);
      await ownTracEnv(tracStage, owners, { deep: true });
      const perms = mode === 'new' ? renderTracPermissions({ slug: targetSlug, visibility: 'private', members: [] }) : undefined;
      await trac.call('restore_env', { target: tracStage, perms, sync: true, clean: true });
      ctl.throwIfAborted();
      swap(tracStage, envDir, 'trac');
      // Trac re-reads an environment whose trac.ini changed; make sure a cached one is dropped.
      const ini = path.join(envDir, 'conf', 'trac.ini');
      const t = new Date(Date.now() + 1000);
      if (fs.existsSync(ini)) fs.utimesSync(ini, t, t);
    }

    if (mode === 'in-place') {
      // Apache's Subversion and Trac processes cache revisions and environments; revisions after
      // the backup's youngest are about to be committed again with other contents. A graceful
      // restart gives every process fresh caches without dropping a request in flight.
      const apache = new Apache(cfg, l);
      if (apache.mainPid()) await apache.start();
    }

    let project = targetSlug;
    db.transaction(() => {
      if (mode === 'new') {
        const orig = getProjectById(db, src.id);
        const ownerName = o.owner ?? (orig ? members(db, orig.id).find((x) => x.role === 'owner')?.user : undefined);
        if (!ownerName) throw new InputError("owner: the original project is gone; name the new project's owner");
        const p = createProject(db, o.actor, {
          slug: targetSlug,
          title: orig?.title ?? targetSlug,
          visibility: orig?.visibility ?? 'private',
          owner: ownerName,
        });
        setProjectRepoUuid(db, p.id, newUuid);
        project = p.slug;
        enqueue(db, JOB_RECONCILE, p.id);
      } else {
        // Back to its state first, then the reconcile: it publishes the access of that state over
        // the deny-all authz, and converges Trac's permission table, which came from the backup.
        if (prevState && prevState !== 'suspended') setProjectState(db, src.id, prevState as 'active', null);
        forgetTracPermVersion(db, src.id);
        enqueue(db, JOB_RECONCILE, src.id);
      }
      enqueue(db, JOB_CREDENTIALS, null);
      audit(db, o.actor, 'backup.restore', project, { backup: backupId, mode, from: src.slug, rev: m.youngestRev });
    })();
    prevState = undefined;
    moved.length = 0;
    if (asideDir) fs.rmSync(asideDir, { recursive: true, force: true });
    log.info('backup restored', { backup: backupId, project, mode, rev: m.youngestRev, at: nowIso() });
    return { backupId, project, mode, youngestRev: m.youngestRev!, repoUuid: newUuid };
  } catch (e) {
    // Put back what was moved aside; a new project's placed files go.
    for (const mv of moved.reverse()) {
      fs.rmSync(mv.live, { recursive: true, force: true });
      fs.renameSync(mv.aside, mv.live);
    }
    try {
      if (asideDir) fs.rmdirSync(asideDir); // empty now: everything was put back
    } catch (e2) {
      log.warn('restore: aside folder not removed', { path: asideDir, error: String(e2) });
    }
    if (mode === 'new' && !getProject(db, targetSlug)) for (const d of placed) fs.rmSync(d, { recursive: true, force: true });
    if (prevState && prevState !== 'suspended') setProjectState(db, src.id, prevState as 'active', null);
    // The live repository's authz is the deny-all one: the reconciler republishes the real one.
    if (mode === 'in-place') enqueue(db, JOB_RECONCILE, src.id);
    throw e;
  } finally {
    trac.close();
    checker.close();
    clearInterval(leaseTimer);
    fs.rmSync(stage, { recursive: true, force: true });
    releaseLease(db, scope, backupId);
  }
}

/** A test restore of one backup into the backup volume's staging: checksums, svnadmin verify, integrity_check, identity. */
export async function testRestore(svc: BackupService, row: BackupRow): Promise<void> {
  const m: Manifest = svc.readManifest(row);
  const entries = listTree(row.path!);
  const v = volumeOf(svc.root);
  // The backup volume may be the live data volume: then the stricter reserve protects the live service.
  const why = checkFits(v, needOf(entries), reserveFor(v, svc.settings, sameDevice(svc.root, svc.cfg.dataDir)));
  if (why) throw new InsufficientStorageError(`test restore refused: ${why}`);
  fs.mkdirSync(svc.staging, { recursive: true });
  const stage = path.join(svc.staging, `test-b${row.id}-p${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
  const ctl = new RunControl();
  try {
    const got = await copyEntries(
      ctl,
      row.path!,
      stage,
      entries.filter((e) => e.rel !== 'manifest.json'),
    );
    const have = new Map(got.map((f) => [f.path, f]));
    for (const f of m.files) {
      const g = have.get(f.path);
      if (!g || g.sha256 !== f.sha256) throw new Error(`${f.path}: checksum mismatch or missing`);
    }
    if (m.project) {
      const svnStage = path.join(stage, 'svn');
      if (readRepositoryUuid(svnStage) !== m.project.repoUuid) throw new Error('repository UUID differs from the manifest');
      if (youngestRevision(svnStage) !== m.youngestRev) throw new Error('youngest revision differs from the manifest');
      await ctl.run('svnadmin', ['verify', '--quiet', svnStage]);
      if (fs.existsSync(path.join(stage, 'trac', 'db', 'trac.db'))) integrityCheck(path.join(stage, 'trac', 'db', 'trac.db'));
    } else integrityCheck(path.join(stage, 'keelson.db'));
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

/** The scheduled test restore of a rotating sample: the backups tested longest ago (or never) first. */
export async function testRestoreSample(svc: BackupService, n: number, alertFn: (id: number, reason: string) => Promise<void>) {
  const rows = testRestoreCandidates(svc.db, n);
  const out: { id: number; ok: boolean; error?: string }[] = [];
  for (const r of rows) {
    try {
      await testRestore(svc, r);
      updateBackup(svc.db, r.id, { test_restored_at: nowIso(), test_restore_ok: 1 });
      out.push({ id: r.id, ok: true });
    } catch (e) {
      const msg = (e as Error).message;
      updateBackup(svc.db, r.id, { test_restored_at: nowIso(), test_restore_ok: 0 });
      out.push({ id: r.id, ok: false, error: msg });
      await alertFn(r.id, msg);
    }
  }
  return out;
}

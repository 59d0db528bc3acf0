import fs from 'node:fs';
import path from 'node:path';
import { getProjectById } from '../store/projects.js';
import { inUnit } from '../domain/unit.js';
import { noEffects } from '../domain/context.js';
import { setProjectState } from '../domain/lifecycle.js';
import { ConflictError, NotFoundError } from '../errors.js';
import { readAccess } from '../store/permissions.js';
import { publishAuthz } from '../authz/publish.js';
import { renderTracPermissions } from '../authz/render.js';
import { ownTracEnv, purgeTracEnv } from '../provision/owner.js';
import { Apache } from '../provision/apache.js';
import { fsyncDirSync } from '../sys/fs.js';
import { log } from '../sys/log.js';
import { asideFolder } from './aside.js';
import type { RestoreRun } from './restore-copy.js';

/**
 * In place: the project is suspended, and its live repository denies everybody before a byte
 * is copied. Suspension alone reaches Apache only when the reconciler republishes authz; a
 * commit Apache accepted during the restore would be acknowledged and then discarded.
 */
export async function suspendForRestore(r: RestoreRun): Promise<void> {
  const db = r.svc.db;
  const { src, targetSlug } = r.plan;
  const t = getProjectById(db, src.id)!;
  r.prevState = t.state;
  if (t.state !== 'suspended') inUnit({ db, fx: noEffects }, 'system', (u) => setProjectState(u, t.id, 'suspended'));
  // Published like any version (the suspended snapshot's): recorded and renamed in one write
  // transaction, so a publisher still holding an older, active snapshot finds itself stale and
  // cannot write it over the deny-all file. A newer version published meanwhile is suspended
  // too; the loop publishes over it at its own version.
  for (let attempt = 0; ; attempt++) {
    const snap = readAccess(db, src.id);
    if (!snap) throw new NotFoundError(`project ${targetSlug} went away`);
    r.denyAll = { ...snap.access, suspended: true };
    const res = await publishAuthz(db, {
      projectId: src.id,
      file: path.join(r.repoDir, 'conf', 'authz'),
      access: r.denyAll,
      version: snap.version,
      checker: r.checker,
      publisher: `restore:pid:${process.pid}`,
    });
    if (!res.stale) break;
    if (attempt === 5) throw new ConflictError(`the permissions of ${targetSlug} keep changing; restore not started`);
  }
}

/**
 * Renames staged trees over live ones. In place, a live tree is first renamed aside (never into
 * staging, which is swept at start: until the restore ends it may be the only live copy); on
 * failure `putBack` returns every moved tree, and a new project's placed trees go.
 */
export class Swapper {
  private readonly moved: { live: string; aside: string }[] = [];
  private readonly placed: string[] = [];
  private asideDir: string | undefined;

  constructor(private readonly r: RestoreRun) {}

  swap(staged: string, live: string, what: 'svn' | 'trac'): void {
    const { cfg, l, plan } = this.r;
    if (fs.existsSync(live)) {
      if (plan.mode === 'new') throw new ConflictError(`${live} exists; refusing to replace files no project owns`);
      // Not in staging (swept at start): until the restore ends this may be the only live copy.
      this.asideDir ??= asideFolder(cfg, this.r.hasTrac ? [l.svnRoot, l.tracRoot] : [l.svnRoot], plan.targetSlug, plan.src.id);
      const aside = path.join(this.asideDir, what);
      fs.renameSync(live, aside);
      this.moved.push({ live, aside });
    }
    // The two renames back to back: between them the live path does not exist (clients get 404,
    // and a restore killed there leaves the project without a repository). The directory fsyncs
    // come after both; a directory fsync can wait for a journal commit of everything just copied.
    fs.renameSync(staged, live);
    this.placed.push(live);
    if (this.asideDir) fsyncDirSync(this.asideDir);
    fsyncDirSync(path.dirname(live));
  }

  /** The restore is recorded: what was moved aside is no longer needed. */
  done(): void {
    this.moved.length = 0;
    if (this.asideDir) fs.rmSync(this.asideDir, { recursive: true, force: true });
  }

  /**
   * Puts back what was moved aside; a new project's placed trees go unless the restore was
   * recorded (then its project owns them). Never decided by looking the slug up: a project someone
   * else made with that slug meanwhile must not inherit the backup's files.
   */
  putBack(recorded: boolean): void {
    for (const mv of this.moved.reverse()) {
      fs.rmSync(mv.live, { recursive: true, force: true });
      fs.renameSync(mv.aside, mv.live);
    }
    try {
      if (this.asideDir) fs.rmdirSync(this.asideDir); // empty now: everything was put back
    } catch (e2) {
      log.warn('restore: aside folder not removed', { path: this.asideDir, error: String(e2) });
    }
    if (this.r.plan.mode === 'new' && !recorded) for (const d of this.placed) fs.rmSync(d, { recursive: true, force: true });
  }
}

/** Swaps the repository in, then the Trac environment (reset by Trac, as the Trac user, first); in place, Apache restarts gracefully. */
export async function swapIn(r: RestoreRun, sw: Swapper): Promise<void> {
  const { ctl, plan } = r;
  sw.swap(path.join(r.stage, 'svn'), r.repoDir, 'svn');
  if (r.hasTrac) {
    const tracStage = path.join(r.stage, 'trac');
    // The cache of the repository in trac.db may be ahead of or behind the restored repository,
    // or of another path: rebuild it from the repository now in place.
    // Trac runs as the Trac user through Keelson's helper (its guard loads no plugin from the
    // backup), never as root. A copy keeps none of the old project's members: permissions are the
    // role groups only until the reconciler converges them.
    purgeTracEnv(tracStage);
    await ownTracEnv(tracStage, r.owners, { deep: true });
    const perms = plan.mode === 'new' ? renderTracPermissions({ slug: plan.targetSlug, visibility: 'private', members: [] }) : undefined;
    await r.trac.call('restore_env', { target: tracStage, perms, sync: true, clean: true });
    ctl.throwIfAborted();
    sw.swap(tracStage, r.envDir, 'trac');
    // Trac re-reads an environment whose trac.ini changed; make sure a cached one is dropped.
    const ini = path.join(r.envDir, 'conf', 'trac.ini');
    const t = new Date(Date.now() + 1000);
    if (fs.existsSync(ini)) fs.utimesSync(ini, t, t);
  }

  if (plan.mode === 'in-place') {
    // Apache's Subversion and Trac processes cache revisions and environments; revisions after
    // the backup's youngest are about to be committed again with other contents. A graceful
    // restart gives every process fresh caches without dropping a request in flight.
    const apache = new Apache(r.cfg, r.l);
    if (apache.mainPid()) await apache.start();
  }
}

import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import type { Config, Layout } from '../config.js';
import type { DB } from '../store/db.js';
import { getProjectById, setProjectState, audit, type ProjectRow } from '../store/model.js';
import { readAccess, readAllAccess } from '../store/permissions.js';
import { renderAuthz, renderPostCommitHook, renderTracPermissions, type ProjectAccess } from '../authz/render.js';
import {
  discardStaged,
  fsyncDir,
  readIfExists,
  renameStaged,
  syncFileSystem,
  writeFileAtomic,
  writeTempSync,
  type Staged,
} from '../authz/atomic.js';
import { syncCredentials } from '../authz/credentials.js';
import { AuthzChecker } from '../authz/canary.js';
import { commitAuthz, discard, publishAuthz, sha256, sweepDeadTempsSync, type PreparedAuthz } from '../authz/publish.js';
import { createRepository, makeStandardLayout, readRepositoryUuid } from './svn.js';
import { TracHelper, renderProjectTracIni, renderSharedTracIni } from './trac.js';
import { run } from './exec.js';
import { apacheOwner, chownTree, pidAlive, pidOfEntry, type Owner } from './owner.js';
import { log } from '../log.js';

export class IntegrityError extends Error {}

/** 0 for a file another drain already removed. */
function mtimeMs(file: string): number {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

/**
 * Converges the disk to the database, project by project. Every step checks before it acts,
 * so running it again after a crash at any point finishes the work, and running it on a
 * converged project changes nothing. Repositories and Trac environments are built in the
 * staging folder and renamed into place only when complete: a half-made one is never served.
 */
export class Reconciler {
  readonly trac: TracHelper;
  readonly checker: AuthzChecker;
  private owner: Owner | undefined;
  private template = '';
  private ready: Promise<void> | undefined;
  private filesReady: Promise<void> | undefined;
  private startupCredentials = { upserted: 0, removed: 0 };

  constructor(
    private readonly cfg: Config,
    private readonly l: Layout,
    private readonly db: DB,
  ) {
    this.trac = new TracHelper(cfg.python);
    this.checker = new AuthzChecker(cfg.python);
  }

  /** Directories, shared Trac settings, the Trac template; sweeps staging leftovers. */
  init(): Promise<void> {
    this.ready ??= this.doInit();
    return this.ready;
  }

  /** What publishing authz, hooks and credentials needs (no Trac): `reconcile --all --files-only`. */
  initFiles(): Promise<void> {
    this.filesReady ??= this.doInitFiles();
    return this.filesReady;
  }

  private async doInitFiles(): Promise<void> {
    const l = this.l;
    this.owner = await apacheOwner(this.cfg.apacheUser, this.cfg.apacheGroup);
    for (const d of [l.svnRoot, l.tracRoot, l.staging, l.authDir, l.cacheDir, l.tracShared, path.dirname(l.commitSpool)]) {
      fs.mkdirSync(d, { recursive: true, mode: 0o755 });
    }
    fs.mkdirSync(l.commitSpool, { recursive: true });
    if (this.owner) {
      // Apache's user must reach the data directory; say so instead of serving 403s later.
      await run('runuser', ['-u', this.cfg.apacheUser, '--', 'test', '-x', this.cfg.dataDir]).catch(() => {
        throw new Error(
          `${this.cfg.apacheUser} cannot reach ${this.cfg.dataDir}: every parent directory must be searchable (o+x) by Apache's user`,
        );
      });
      fs.chownSync(l.commitSpool, this.owner.uid, this.owner.gid);
      fs.chownSync(l.authDir, 0, this.owner.gid);
      fs.chmodSync(l.authDir, 0o750);
      await chownTree(path.join(l.cacheDir), this.owner);
    }
    // Staging entries carry their maker's pid: those of dead processes are debris of a run that
    // died (nothing there is ever served); a live worker's or CLI's work in progress is left alone.
    for (const e of fs.readdirSync(l.staging)) {
      const pid = pidOfEntry(e);
      if (pid && pid !== process.pid && pidAlive(pid)) continue;
      fs.rmSync(path.join(l.staging, e), { recursive: true, force: true });
    }
    this.startupCredentials = syncCredentials(this.db, l.authDb, this.owner);
    // libsvn's authz parser loaded now, so the first publish does not wait for it.
    await this.checker.call('ping');
  }

  private async doInit(): Promise<void> {
    await this.initFiles();
    const l = this.l;
    await writeFileAtomic(l.tracInherit, renderSharedTracIni());
    const version = ((await this.trac.call('ping')) as { trac_version: string }).trac_version;
    // The template is named by what it holds, so a new Trac or new role permissions make a new one.
    const basePerms = renderTracPermissions({ slug: 'template', visibility: 'private', members: [] });
    const tag = crypto
      .createHash('sha256')
      .update(JSON.stringify([version, basePerms]))
      .digest('hex')
      .slice(0, 12);
    this.template = path.join(l.cacheDir, `trac-template-${tag}`);
    await this.trac.call('ensure_template', {
      path: this.template,
      staging: this.stagingPath('template'),
      inherit: l.tracInherit,
      perms: basePerms,
    });
  }

  close(): void {
    this.trac.close();
    this.checker.close();
  }

  private stagingPath(what: string): string {
    return path.join(this.l.staging, `${what}-p${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
  }

  repoDir(slug: string): string {
    return path.join(this.l.svnRoot, slug);
  }
  envDir(slug: string): string {
    return path.join(this.l.tracRoot, slug);
  }

  async syncCredentials(): Promise<void> {
    await this.init();
    const r = syncCredentials(this.db, this.l.authDb, this.owner);
    if (r.upserted || r.removed) log.info('credentials synced', r);
  }

  async reconcile(projectId: number): Promise<void> {
    await this.init();
    const p = getProjectById(this.db, projectId);
    if (!p || p.state === 'deleted') return;
    try {
      if (p.state === 'deleting') return await this.remove(p);
      await this.converge(p);
      // Re-read: the state may have changed while we worked (a later job will handle that).
      const now = getProjectById(this.db, projectId);
      if (now && (now.state === 'provisioning' || now.state === 'failed')) {
        setProjectState(this.db, p.id, 'active');
        audit(this.db, 'reconciler', 'project.active', p.slug);
        // Revision 1 is in the spool, held there until the environment existed.
        await this.drainCommitSpool();
      } else if (now?.last_error) {
        this.db.prepare(`UPDATE projects SET last_error = NULL WHERE id = ?`).run(p.id);
      }
    } catch (e) {
      this.db.prepare(`UPDATE projects SET last_error = ? WHERE id = ?`).run(String((e as Error).message).slice(0, 2000), p.id);
      throw e;
    }
  }

  private async converge(p0: ProjectRow): Promise<void> {
    const snap = readAccess(this.db, p0.id);
    if (!snap) return;
    const { project: p, access, version } = snap;
    const repoDir = this.repoDir(p.slug);
    const envDir = this.envDir(p.slug);
    const ini = renderProjectTracIni({
      slug: p.slug,
      title: p.title,
      inheritFile: this.l.tracInherit,
      repoDir,
      baseUrl: `${this.cfg.publicUrl}/trac/${p.slug}`,
    });
    const perms = renderTracPermissions(access);

    // A new repository is made while the helper copies the Trac template and sets its
    // permissions; Trac needs the repository only when it first reads it.
    const envExists = fs.existsSync(path.join(envDir, 'VERSION'));
    const stagedEnv = envExists ? undefined : this.stagingPath(`trac-${p.slug}`);
    try {
      await Promise.all([
        this.ensureRepository(p, repoDir, access),
        stagedEnv && this.trac.call('prepare_env', { template: this.template, target: stagedEnv, ini, perms }),
      ]);

      // Published in place on every run; unchanged files are not rewritten.
      await this.publishFiles(p.id, p.slug, access, version);

      if (stagedEnv) {
        // Trac's cache learns of revision 1 (the layout) through the spool like any commit:
        // the hook was in place before that commit, and reconcile() drains the spool next.
        await chownTree(stagedEnv, this.owner);
        fs.renameSync(stagedEnv, envDir);
        await fsyncDir(this.l.tracRoot);
      } else {
        await writeFileAtomic(path.join(envDir, 'conf', 'trac.ini'), ini, { ...this.fileOwner() });
        // Trac's permission table is converged when the permission state moved since it last was.
        if (p.trac_perm_version !== version) await this.trac.call('prepare_env', { target: envDir, perms });
      }
      this.db
        .prepare(`UPDATE projects SET trac_perm_version = ? WHERE id = ? AND (trac_perm_version IS NULL OR trac_perm_version < ?)`)
        .run(version, p.id, version);
    } catch (e) {
      if (stagedEnv) fs.rmSync(stagedEnv, { recursive: true, force: true });
      throw e;
    }
    log.debug('project converged', { slug: p.slug });
  }

  private fileOwner(): { uid?: number; gid?: number } {
    return this.owner ? { uid: this.owner.uid, gid: this.owner.gid } : {};
  }

  private async ensureRepository(p: ProjectRow, repoDir: string, access: ProjectAccess): Promise<void> {
    const uuid = readRepositoryUuid(repoDir);
    if (uuid !== undefined) {
      // "Should never happen" is still checked: never publish one project's access onto another's data.
      if (uuid !== p.repo_uuid) {
        throw new IntegrityError(
          `repository ${repoDir} has UUID ${uuid} but project ${p.slug} records ${p.repo_uuid}; refusing to touch it`,
        );
      }
      return;
    }
    if (fs.existsSync(repoDir)) throw new IntegrityError(`${repoDir} exists but is not a Subversion repository; refusing to touch it`);
    // Only a project being provisioned gets a new, empty repository. A live project whose
    // repository is gone (deleted by hand, a restore interrupted mid-swap) is an incident: an empty
    // repository with its UUID would hide it, and take commits that belong on top of the real one.
    if (p.state !== 'provisioning' && p.state !== 'failed') {
      throw new IntegrityError(
        `the repository of ${p.slug} (${p.state}) is missing at ${repoDir}; not creating an empty one. Restore it from a backup (keelson backup list ${p.slug}) or from a restore's aside folder`,
      );
    }
    const stage = this.stagingPath(`svn-${p.slug}`);
    try {
      await createRepository(stage, p.repo_uuid);
      // The hook goes in before the layout commit, so revision 1 reaches Trac like any other.
      await writeFileAtomic(path.join(stage, 'hooks', 'post-commit'), renderPostCommitHook(p.slug, this.l.commitSpool), { mode: 0o755 });
      await makeStandardLayout(stage);
      const authz = renderAuthz(access);
      await this.checker.verify(authz, access);
      await writeFileAtomic(path.join(stage, 'conf', 'authz'), authz);
      await chownTree(stage, this.owner);
      fs.renameSync(stage, repoDir);
      await fsyncDir(this.l.svnRoot);
    } catch (e) {
      fs.rmSync(stage, { recursive: true, force: true });
      throw e;
    }
  }

  /** The repository's authz file (versioned, see publishAuthz) and post-commit hook. */
  private async publishFiles(id: number, slug: string, access: ProjectAccess, version: number): Promise<boolean> {
    const repoDir = this.repoDir(slug);
    const r = await publishAuthz(this.db, {
      projectId: id,
      file: path.join(repoDir, 'conf', 'authz'),
      access,
      version,
      checker: this.checker,
      owner: this.owner,
      publisher: `pid:${process.pid}`,
    });
    if (r.stale) log.info('authz publish skipped: a newer version is already published', { slug, version });
    const hook = await writeFileAtomic(path.join(repoDir, 'hooks', 'post-commit'), renderPostCommitHook(slug, this.l.commitSpool), {
      mode: 0o755,
      ...this.fileOwner(),
    });
    return r.changed || hook;
  }

  /**
   * The fast half of `keelson reconcile --all`: every live project's authz file and hook, and the
   * credentials database, regenerated from the database alone, many at a time. A project whose
   * repository is missing (or that is not yet active) is returned for a full reconcile.
   */
  async rebuildFiles(opts: { onProgress?: (done: number, total: number) => void } = {}) {
    const t0 = Date.now();
    const wasReady = this.filesReady !== undefined;
    await this.initFiles();
    // initFiles has just synced the credentials, unless it ran earlier in this process.
    const again = wasReady ? syncCredentials(this.db, this.l.authDb, this.owner) : { upserted: 0, removed: 0 };
    const cred = {
      upserted: this.startupCredentials.upserted + again.upserted,
      removed: this.startupCredentials.removed + again.removed,
    };
    this.startupCredentials = { upserted: 0, removed: 0 };
    const phases: Record<string, number> = { start: Date.now() - t0 };
    let mark = Date.now();
    const phase = (name: string) => {
      phases[name] = Date.now() - mark;
      mark = Date.now();
    };
    const all = readAllAccess(this.db);
    opts.onProgress?.(0, all.length);
    const needFull: number[] = [];
    const failed: { slug: string; error: string }[] = [];
    const fail = (id: number, slug: string, e: unknown) => {
      const error = e instanceof Error ? e.message : String(e);
      failed.push({ slug, error });
      this.db.prepare(`UPDATE projects SET last_error = ? WHERE id = ?`).run(error.slice(0, 2000), id);
    };
    interface Item {
      id: number;
      slug: string;
      authz: PreparedAuthz;
      text: string;
      hook: Staged;
      hookText?: string;
    }
    const items: Item[] = [];
    // 1. Render every project and compare with what is on disk.
    for (const [n, s] of all.entries()) {
      const p = s.project;
      try {
        if ((p.state !== 'active' && p.state !== 'suspended') || readRepositoryUuid(this.repoDir(p.slug)) !== p.repo_uuid) {
          needFull.push(p.id);
          continue;
        }
        const repoDir = this.repoDir(p.slug);
        const file = path.join(repoDir, 'conf', 'authz');
        sweepDeadTempsSync(path.dirname(file));
        const text = renderAuthz(s.access);
        const hookFile = path.join(repoDir, 'hooks', 'post-commit');
        const hookText = renderPostCommitHook(p.slug, this.l.commitSpool);
        items.push({
          id: p.id,
          slug: p.slug,
          text,
          authz: {
            input: {
              projectId: p.id,
              file,
              access: s.access,
              version: s.version,
              checker: this.checker,
              owner: this.owner,
              publisher: `rebuild:pid:${process.pid}`,
            },
            checksum: sha256(text),
            same: readIfExists(file) === text,
          },
          hook: { target: hookFile },
          hookText: readIfExists(hookFile) === hookText ? undefined : hookText,
        });
      } catch (e) {
        fail(p.id, p.slug, e);
      }
      if ((n + 1) % 1000 === 0) opts.onProgress?.(n + 1, all.length);
    }
    phase('render');
    let changed = 0;
    try {
      // 2+3. libsvn parses every changed rendering and answers its canaries, 250 files a round
      //    trip (an unchanged file was checked when it was published); all batches are sent at
      //    once, and while the checker works through them this process writes the temporary files
      //    of the batches already answered. Not fsynced one by one: one syncfs makes them durable.
      const bad = new Set<Item>();
      const write = (i: Item) => {
        try {
          if (!i.authz.same) i.authz.tmp = writeTempSync(i.authz.input.file, i.text, { mode: 0o644, ...this.fileOwner() });
          if (i.hookText !== undefined) i.hook.tmp = writeTempSync(i.hook.target, i.hookText, { mode: 0o755, ...this.fileOwner() });
        } catch (e) {
          bad.add(i);
          fail(i.id, i.slug, e);
        }
      };
      const toCheck = items.filter((i) => !i.authz.same);
      const batches: Item[][] = [];
      for (let i = 0; i < toCheck.length; i += 250) batches.push(toCheck.slice(i, i + 250));
      const answers = batches.map((b) => this.checker.verifyMany(b.map((x) => ({ text: x.text, access: x.authz.input.access }))));
      for (const i of items) if (i.authz.same) write(i);
      for (const [n, batch] of batches.entries()) {
        (await answers[n]!).forEach((err, k) => {
          const i = batch[k]!;
          if (err) {
            bad.add(i);
            fail(i.id, i.slug, err);
          } else write(i);
        });
      }
      phase('check+write');
      const good = items.filter((i) => !bad.has(i));
      const writing = good.some((i) => i.authz.tmp || i.hook.tmp);
      if (writing) await syncFileSystem(this.l.svnRoot);
      phase('syncfs');
      // 4. The renames, each behind the published-version check, 500 to a write transaction.
      const commit = good;
      for (let i = 0; i < commit.length; i += 500) {
        this.db
          .transaction(() => {
            for (const r of commit.slice(i, i + 500)) {
              try {
                const res = commitAuthz(this.db, r.authz);
                if (res.stale) log.info('authz publish skipped: a newer version is already published', { slug: r.slug });
                const hook = renameStaged(r.hook);
                if (res.changed || hook) changed++;
              } catch (e) {
                fail(r.id, r.slug, e);
              }
            }
          })
          .immediate();
      }
      phase('rename');
      // 5. And one flush for the renames themselves.
      if (writing) await syncFileSystem(this.l.svnRoot);
      phase('syncfs2');
      opts.onProgress?.(all.length, all.length);
    } finally {
      for (const r of items) {
        await discard(r.authz);
        await discardStaged(r.hook);
      }
    }
    return { projects: all.length, changed, needFull, failed, credentials: cred, ms: Date.now() - t0, phases };
  }

  /** Deletion: each tree is moved out of the served folders first, then removed. */
  private async remove(p: ProjectRow): Promise<void> {
    for (const dir of [this.envDir(p.slug), this.repoDir(p.slug)]) {
      if (!fs.existsSync(dir)) continue;
      if (dir === this.repoDir(p.slug)) {
        const uuid = readRepositoryUuid(dir);
        if (uuid && uuid !== p.repo_uuid)
          throw new IntegrityError(`${dir} has UUID ${uuid}, not ${p.slug}'s ${p.repo_uuid}; not deleting it`);
      }
      const gone = this.stagingPath(`deleted-${p.slug}`);
      fs.renameSync(dir, gone);
      fs.rmSync(gone, { recursive: true, force: true });
    }
    setProjectState(this.db, p.id, 'deleted');
    audit(this.db, 'reconciler', 'project.deleted', p.slug);
  }

  /** Tells Trac about commits the post-commit hooks dropped in the spool. */
  async drainCommitSpool(): Promise<number> {
    await this.init();
    let n = 0;
    const bySlug = new Map<string, { revs: number[]; files: string[] }>();
    for (const f of fs.readdirSync(this.l.commitSpool)) {
      const m = f.match(/^([a-z][a-z0-9-]{1,38}[a-z0-9])\.(\d+)$/);
      const full = path.join(this.l.commitSpool, f);
      if (!m) {
        if (!f.includes('.tmp.')) fs.rmSync(full, { force: true });
        continue;
      }
      const e = bySlug.get(m[1]!) ?? { revs: [], files: [] };
      e.revs.push(Number(m[2]));
      e.files.push(full);
      bySlug.set(m[1]!, e);
    }
    for (const [slug, e] of bySlug) {
      const env = this.envDir(slug);
      if (fs.existsSync(path.join(env, 'VERSION'))) {
        // changeset_added also catches up on any earlier revisions Trac has not seen.
        await this.trac.call('changeset_added', { path: env, revs: e.revs.sort((a, b) => a - b) });
      } else if (fs.existsSync(this.repoDir(slug)) || e.files.some((f) => Date.now() - mtimeMs(f) < 3_600_000)) {
        // A project still being provisioned: its first commit waits for its environment.
        continue;
      }
      for (const f of e.files) fs.rmSync(f, { force: true });
      n += e.revs.length;
    }
    return n;
  }
}

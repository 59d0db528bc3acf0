import fs from 'node:fs';
import path from 'node:path';
import type { Config, Layout } from '../config.js';
import type { DB } from '../store/db.js';
import { getProjectById, setProjectError, setTracPermVersion, type ProjectRow } from '../store/projects.js';
import { inUnit } from '../domain/unit.js';
import { audit } from '../store/audit.js';
import { noEffects } from '../domain/context.js';
import { setProjectState } from '../domain/lifecycle.js';
import { readAccess } from '../store/permissions.js';
import { renderTracPermissions } from '../authz/render.js';
import type { ProjectAccess } from '../names.js';
import { checkHookTemplate, publishHooks } from '../files/hooks/post-commit.js';
import { fsyncDir } from '../sys/fs.js';
import { syncCredentials } from '../files/credentials/credentials.js';
import { AuthzChecker } from '../authz/canary.js';
import { publishAuthz, writeCheckedAuthz } from '../authz/publish.js';
import { createRepository, makeStandardLayout, readRepositoryUuid } from './svn.js';
import { TracHelper } from './trac.js';
import { publishTracIni, renderProjectTracIni } from '../files/trac/ini.js';
import { ownRepository, ownTracEnv, purgeRepository, purgeTracEnv, serviceOwners, type Owners } from './owner.js';
import * as dirs from './dirs.js';
import { prepareDirectories, prepareTrac, sweepStaging } from './setup.js';
import { rebuildFiles, type RebuildOptions, type RebuildResult } from './rebuild.js';
import { CommitSpool } from './spool.js';
import { Usage } from './usage.js';
import { quotaFile } from '../files/quota/quota.js';
import { log } from '../sys/log.js';

export class IntegrityError extends Error {}

/**
 * Converges the disk to the database, project by project. Every step checks before it acts,
 * so running it again after a crash at any point finishes the work, and running it on a
 * converged project changes nothing. Repositories and Trac environments are built in the
 * staging folder and renamed into place only when complete: a half-made one is never served.
 */
export class Reconciler {
  readonly trac: TracHelper;
  /** The commit feed's own Trac helper: a provisioning call stuck in the other never holds up commits, nor the reverse. */
  readonly feedTrac: TracHelper;
  readonly checker: AuthzChecker;
  /** Apache's and Trac's users (undefined when not root): see owner.ts for who writes what. */
  private owners: Owners | undefined;
  private readonly spool: CommitSpool;
  /** Storage measures and the quota files the pre-commit hooks and Trac read. */
  readonly usage: Usage;
  private template = '';
  private ready: Promise<void> | undefined;
  private filesReady: Promise<void> | undefined;
  private startupCredentials = { upserted: 0, removed: 0 };

  constructor(
    private readonly cfg: Config,
    private readonly l: Layout,
    private readonly db: DB,
  ) {
    this.trac = new TracHelper(cfg, l);
    this.feedTrac = new TracHelper(cfg, l, { size: 2 });
    this.checker = new AuthzChecker(cfg.python);
    this.usage = new Usage(l, db);
    this.spool = new CommitSpool(l, db, this.feedTrac, this.usage);
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
    this.owners = await serviceOwners(this.cfg);
    await prepareDirectories(this.cfg, this.l, this.owners);
    sweepStaging(this.l.staging);
    this.startupCredentials = syncCredentials(this.db, this.l.authDb, this.owners?.apache);
    await this.usage.publishDefault();
    // libsvn's authz parser loaded now, so the first publish does not wait for it.
    await this.checker.call('ping');
  }

  private async doInit(): Promise<void> {
    await this.initFiles();
    this.template = await prepareTrac(this.cfg, this.l, this.trac, this.owners);
  }

  close(): void {
    this.trac.close();
    this.feedTrac.close();
    this.checker.close();
  }

  private stagingPath(what: string): string {
    return dirs.stagingPath(this.l, what);
  }

  repoDir(slug: string): string {
    return dirs.repoDir(this.l, slug);
  }
  envDir(slug: string): string {
    return dirs.envDir(this.l, slug);
  }

  async syncCredentials(): Promise<void> {
    await this.init();
    const r = syncCredentials(this.db, this.l.authDb, this.owners?.apache);
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
        inUnit({ db: this.db, fx: noEffects }, 'system', (u) => {
          setProjectState(u, p.id, 'active');
          audit(u.db, 'reconciler', 'project.active', p.slug);
        });
        // Revision 1 is in the spool, held there until the environment existed.
        await this.drainCommitSpool();
      } else if (now?.last_error) {
        setProjectError(this.db, p.id, null);
      }
      // The project's storage measured and its quota file written, off the path to a usable project
      // (until its file exists, the hooks measure the whole repository: slower, never unlimited).
      await this.usage.refresh(p.slug).catch((err: Error) => log.warn('storage measure failed', { slug: p.slug, error: err.message }));
    } catch (e) {
      setProjectError(this.db, p.id, String((e as Error).message));
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
      await Promise.all([this.ensureRepository(p, repoDir, access), stagedEnv && this.stageEnv(stagedEnv, ini, perms)]);

      // Published in place on every run; unchanged files are not rewritten. What Keelson does not
      // own (a planted hook, an extra conf file) is removed, and owners and modes are checked.
      await this.publishFiles(p.id, p.slug, access, version);

      if (stagedEnv) {
        // Trac's cache learns of revision 1 (the layout) through the spool like any commit:
        // the hook was in place before that commit, and reconcile() drains the spool next.
        fs.renameSync(stagedEnv, envDir);
        await fsyncDir(this.l.tracRoot);
      } else {
        const removed = purgeTracEnv(envDir);
        if (removed.length) log.warn('removed from a Trac environment what Keelson does not own', { slug: p.slug, removed });
        await publishTracIni(path.join(envDir, 'conf', 'trac.ini'), ini, this.trac, { shared: false });
        await ownTracEnv(envDir, this.owners, { deep: false });
        // Trac's permission table converged and repository rows other than the project's own
        // removed (Trac as the Trac user; both are no-ops, without a write, when they hold).
        const r = await this.trac.call<{ added: unknown[]; removed: unknown[]; purged_repository_rows: number }>('prepare_env', {
          target: envDir,
          perms,
        });
        if (r.purged_repository_rows)
          log.warn('removed foreign repository rows from trac.db', { slug: p.slug, rows: r.purged_repository_rows });
        if (p.trac_perm_version === version && (r.added.length || r.removed.length))
          log.warn("Trac's permission table had drifted from Keelson's; converged", { slug: p.slug, added: r.added, removed: r.removed });
      }
      setTracPermVersion(this.db, p.id, version);
    } catch (e) {
      if (stagedEnv) fs.rmSync(stagedEnv, { recursive: true, force: true });
      throw e;
    }
    log.debug('project converged', { slug: p.slug });
  }

  /**
   * A new environment in staging: a copy of the template (Keelson's files), the project's trac.ini,
   * owners and modes, then Trac (as the Trac user) converges its permission table.
   */
  private async stageEnv(stagedEnv: string, ini: string, perms: [string, string][]): Promise<void> {
    await fs.promises.cp(this.template, stagedEnv, { recursive: true, verbatimSymlinks: true });
    await publishTracIni(path.join(stagedEnv, 'conf', 'trac.ini'), ini, this.trac, { shared: false });
    await ownTracEnv(stagedEnv, this.owners, { deep: true });
    await this.trac.call('prepare_env', { target: stagedEnv, perms });
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
    // A quota file an earlier project of this name left must not judge the new one's first commit.
    fs.rmSync(quotaFile(this.l.quotaDir, p.slug), { force: true });
    try {
      await createRepository(stage, p.repo_uuid);
      // The hooks go in before the layout commit, so revision 1 reaches Trac like any other.
      await publishHooks(stage, p.slug, this.l);
      await makeStandardLayout(stage);
      await writeCheckedAuthz(path.join(stage, 'conf', 'authz'), access, this.checker);
      await ownRepository(stage, this.owners, { deep: true });
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
      owner: undefined,
      publisher: `pid:${process.pid}`,
    });
    if (r.stale) log.info('authz publish skipped: a newer version is already published', { slug, version });
    const hook = await publishHooks(repoDir, slug, this.l);
    const removed = purgeRepository(repoDir);
    if (removed.length) log.warn('removed from a repository what Keelson does not own', { slug, removed });
    await ownRepository(repoDir, this.owners, { deep: false });
    return r.changed || hook;
  }

  /**
   * The fast half of `keelson reconcile --all`: every live project's authz file and hook, and the
   * credentials database, regenerated from the database alone, many at a time. A project whose
   * repository is missing (or that is not yet active) is returned for a full reconcile.
   */
  async rebuildFiles(opts: RebuildOptions = {}): Promise<RebuildResult> {
    const t0 = Date.now();
    const wasReady = this.filesReady !== undefined;
    await this.initFiles();
    // The hook is one template with a checked slug: the shell parses it once here, not per project.
    await checkHookTemplate(this.l);
    // initFiles has just synced the credentials, unless it ran earlier in this process.
    const again = wasReady ? syncCredentials(this.db, this.l.authDb, this.owners?.apache) : { upserted: 0, removed: 0 };
    const cred = {
      upserted: this.startupCredentials.upserted + again.upserted,
      removed: this.startupCredentials.removed + again.removed,
    };
    this.startupCredentials = { upserted: 0, removed: 0 };
    return rebuildFiles({ db: this.db, l: this.l, checker: this.checker }, t0, cred, opts);
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
    fs.rmSync(quotaFile(this.l.quotaDir, p.slug), { force: true });
    inUnit({ db: this.db, fx: noEffects }, 'system', (u) => {
      setProjectState(u, p.id, 'deleted');
      audit(u.db, 'reconciler', 'project.deleted', p.slug);
    });
  }

  /**
   * Tells Trac about commits the post-commit hooks dropped in the spool. Each project on its own:
   * one whose environment fails (or hangs: the call times out) keeps its files in the spool, gets
   * the error as its lastError and is tried again later with backoff; the others go on.
   */
  async drainCommitSpool(): Promise<number> {
    await this.init();
    return this.spool.drain();
  }
}

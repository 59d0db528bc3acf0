import path from 'node:path';
import crypto from 'node:crypto';
import type { Config, Layout } from '../config.js';
import { getProject } from '../store/projects.js';
import { ConflictError } from '../errors.js';
import { readRepositoryUuid, youngestRevision } from '../provision/svn.js';
import { ownRepository, purgeRepository, type Owners } from '../provision/owner.js';
import type { TracHelper } from '../provision/trac.js';
import { publishTracIni, renderProjectTracIni } from '../files/trac/ini.js';
import { publishHooks } from '../files/hooks/post-commit.js';
import type { ProjectAccess } from '../names.js';
import { writeCheckedAuthz } from '../authz/publish.js';
import type { AuthzChecker } from '../authz/canary.js';
import type { RunControl } from './control.js';
import { copyEntries, type Entry } from './files.js';
import { integrityCheck } from '../sys/sqlite.js';
import type { RestoreOptions, RestorePlan } from './restore-plan.js';
import type { BackupService } from './engine.js';

/** One restore in progress: its plan, control, staging folder, live paths and helpers. */
export interface RestoreRun {
  svc: BackupService;
  cfg: Config;
  l: Layout;
  plan: RestorePlan;
  o: RestoreOptions;
  ctl: RunControl;
  /** In the data volume's staging folder (swept at start), named with this process's pid. */
  stage: string;
  repoDir: string;
  envDir: string;
  hasTrac: boolean;
  /** Trac, as the Trac user through Keelson's helper: checks the new trac.ini, then resets the environment. */
  trac: TracHelper;
  /** libsvn's parser, for every authz file the restore writes (deny-all until the reconciler publishes). */
  checker: AuthzChecker;
  owners: Owners | undefined;
  /** In place: the project's state before the restore suspended it (put back at the end or on failure). */
  prevState?: string;
  /** In place: the suspended rendering of the project's access (nobody), published live and written into the copy. */
  denyAll?: ProjectAccess;
}

/** Copies the backup into staging, checking every file against the manifest, then the repository's identity and Trac's database. */
export async function copyChecked(r: RestoreRun, entries: Entry[]): Promise<void> {
  const { ctl, plan, stage } = r;
  const m = plan.manifest;
  ctl.bytesTotal = m.totalBytes;
  ctl.progress('copying and checking');
  const want = new Map(m.files.map((f) => [f.path, f]));
  const got = await copyEntries(
    ctl,
    plan.row.path!,
    stage,
    entries.filter((e) => e.rel !== 'manifest.json'),
  );
  for (const f of got) {
    const w = want.get(f.path);
    if (!w) continue; // files svnadmin recreates (locks) are not in every manifest
    if (w.sha256 !== f.sha256 || w.size !== f.size)
      throw new ConflictError(`backup #${plan.backupId}: ${f.path} does not match its checksum; the backup is damaged`);
    want.delete(f.path);
  }
  if (want.size)
    throw new ConflictError(`backup #${plan.backupId} is missing ${want.size} files, e.g. ${[...want.keys()][0]}; the backup is damaged`);
  const svnStage = path.join(stage, 'svn');
  if (readRepositoryUuid(svnStage) !== plan.src.repoUuid || youngestRevision(svnStage) !== m.youngestRev) {
    throw new Error(`backup #${plan.backupId}: the restored repository is not r${m.youngestRev} of ${plan.src.repoUuid}`);
  }
  if (r.hasTrac) integrityCheck(path.join(stage, 'trac', 'db', 'trac.db'));
}

/**
 * Makes the staged copy today's before anything is swapped: its repository UUID (a copy gets a
 * new one; in place the same one with a new instance ID), a deny-all authz, today's trac.ini and
 * post-commit hook, and Keelson's owners. Returns the repository UUID.
 */
export async function prepareStage(r: RestoreRun): Promise<string> {
  const { ctl, plan, l, cfg } = r;
  const { targetSlug } = plan;
  const svnStage = path.join(r.stage, 'svn');
  let uuid = plan.src.repoUuid;
  if (plan.mode === 'new') {
    // A copy is a new repository: its own UUID, and nobody has access until the reconciler publishes.
    uuid = crypto.randomUUID();
    await ctl.run('svnadmin', ['setuuid', svnStage, uuid]);
    await writeCheckedAuthz(path.join(svnStage, 'conf', 'authz'), { slug: targetSlug, visibility: 'private', members: [] }, r.checker);
  } else {
    // Same UUID, new instance ID (setuuid makes one): Apache's FSFS caches are keyed by it, and
    // the restored revisions after the backup's youngest will differ from the ones they cached.
    await ctl.run('svnadmin', ['setuuid', svnStage, plan.src.repoUuid]);
    // In place: the suspended project's authz (nobody)
    // until the reconciler publishes today's access rules after the restore.
    await writeCheckedAuthz(path.join(svnStage, 'conf', 'authz'), r.denyAll!, r.checker);
  }
  if (r.hasTrac) {
    // Today's trac.ini, never the backup's: an older release let Trac write it (a log file
    // anywhere, components enabled), and Trac is about to open this environment.
    await publishTracIni(
      path.join(r.stage, 'trac', 'conf', 'trac.ini'),
      renderProjectTracIni({
        slug: targetSlug,
        title: plan.mode === 'new' ? targetSlug : (getProject(r.svc.db, targetSlug)?.title ?? targetSlug),
        inheritFile: l.tracInherit,
        repoDir: r.repoDir,
        baseUrl: `${cfg.publicUrl}/trac/${targetSlug}`,
      }),
      r.trac,
      { shared: false },
    );
  }
  // Today's hooks for the project it becomes, not the backup's day's (nor, for a copy, the original's).
  await publishHooks(svnStage, targetSlug, l);
  // A backup may be older than the rules: what Keelson does not own goes before anything is served.
  purgeRepository(svnStage);
  await ownRepository(svnStage, r.owners, { deep: true });
  return uuid;
}

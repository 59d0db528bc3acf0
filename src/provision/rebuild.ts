import path from 'node:path';
import type { Layout } from '../config.js';
import type { DB } from '../store/db.js';
import { setProjectError } from '../store/projects.js';
import { readAllAccess } from '../store/permissions.js';
import { stageHooks } from '../files/hooks/post-commit.js';
import { discardStaged, renameStaged, syncFileSystem, type Staged } from '../sys/fs.js';
import type { AuthzChecker } from '../authz/canary.js';
import { commitAuthz, discard, planAuthz, stageAuthz, sweepDeadTempsSync, type PreparedAuthz } from '../authz/publish.js';
import { readRepositoryUuid } from './svn.js';
import { repoDir } from './dirs.js';
import { log } from '../sys/log.js';

/** What the bulk rebuild works with. */
export interface RebuildContext {
  db: DB;
  l: Layout;
  checker: AuthzChecker;
}

export interface RebuildOptions {
  onProgress?: (done: number, total: number) => void;
}

export interface RebuildResult {
  projects: number;
  /** Projects whose authz file or hook changed on disk. */
  changed: number;
  /** Projects for a full reconcile (repository missing, or not yet active). */
  needFull: number[];
  failed: { slug: string; error: string }[];
  credentials: { upserted: number; removed: number };
  ms: number;
  /** Milliseconds each phase took. */
  phases: Record<string, number>;
}

interface Item {
  id: number;
  slug: string;
  authz: PreparedAuthz;
  text: string;
  hooks: Staged[];
  /** The hook is written (to its temporary name) with the authz file, once that one is checked. */
  repoDir: string;
}

/** Records a project's failure (its lastError) and goes on with the others. */
type Fail = (id: number, slug: string, e: unknown) => void;

/** Projects checked by libsvn in one round trip. */
const CHECK_BATCH = 250;
/** Renames in one write transaction. */
const COMMIT_BATCH = 500;

/** Phase timings: each call records the time since the previous one under `name`. */
function phaseClock(t0: number): { phases: Record<string, number>; phase: (name: string) => void } {
  const phases: Record<string, number> = { start: Date.now() - t0 };
  let mark = Date.now();
  const phase = (name: string) => {
    phases[name] = Date.now() - mark;
    mark = Date.now();
  };
  return { phases, phase };
}

/** 1. Render every project and compare with what is on disk. */
function renderAll(ctx: RebuildContext, all: ReturnType<typeof readAllAccess>, fail: Fail, opts: RebuildOptions) {
  const items: Item[] = [];
  const needFull: number[] = [];
  for (const [n, s] of all.entries()) {
    const p = s.project;
    try {
      if ((p.state !== 'active' && p.state !== 'suspended') || readRepositoryUuid(repoDir(ctx.l, p.slug)) !== p.repo_uuid) {
        needFull.push(p.id);
        continue;
      }
      const dir = repoDir(ctx.l, p.slug);
      const file = path.join(dir, 'conf', 'authz');
      sweepDeadTempsSync(path.dirname(file));
      const { prepared, text } = planAuthz({
        projectId: p.id,
        file,
        access: s.access,
        version: s.version,
        checker: ctx.checker,
        owner: undefined,
        publisher: `rebuild:pid:${process.pid}`,
      });
      items.push({ id: p.id, slug: p.slug, text, authz: prepared, hooks: [], repoDir: dir });
    } catch (e) {
      fail(p.id, p.slug, e);
    }
    if ((n + 1) % 1000 === 0) opts.onProgress?.(n + 1, all.length);
  }
  return { items, needFull };
}

/**
 * 2+3. libsvn parses every changed rendering and answers its canaries, CHECK_BATCH files a round
 * trip (an unchanged file was checked when it was published); all batches are sent at once, and
 * while the checker works through them this process writes the temporary files of the batches
 * already answered. Not fsynced one by one: one syncfs makes them durable.
 * Returns the items that failed (their failure recorded).
 */
async function checkAndStage(ctx: RebuildContext, items: Item[], fail: Fail): Promise<Set<Item>> {
  const bad = new Set<Item>();
  const write = (i: Item) => {
    try {
      stageAuthz(i.authz, i.text);
      i.hooks = stageHooks(i.repoDir, i.slug, ctx.l);
    } catch (e) {
      bad.add(i);
      fail(i.id, i.slug, e);
    }
  };
  const toCheck = items.filter((i) => !i.authz.same);
  const batches: Item[][] = [];
  for (let i = 0; i < toCheck.length; i += CHECK_BATCH) batches.push(toCheck.slice(i, i + CHECK_BATCH));
  const answers = batches.map((b) => ctx.checker.verifyMany(b.map((x) => ({ text: x.text, access: x.authz.input.access }))));
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
  return bad;
}

/** 4. The renames, each behind the published-version check, COMMIT_BATCH to a write transaction. */
function commitAll(ctx: RebuildContext, commit: Item[], fail: Fail): number {
  let changed = 0;
  for (let i = 0; i < commit.length; i += COMMIT_BATCH) {
    ctx.db
      .transaction(() => {
        for (const r of commit.slice(i, i + COMMIT_BATCH)) {
          try {
            const res = commitAuthz(ctx.db, r.authz);
            if (res.stale) log.info('authz publish skipped: a newer version is already published', { slug: r.slug });
            const hook = r.hooks.map(renameStaged).some(Boolean);
            if (res.changed || hook) changed++;
          } catch (e) {
            fail(r.id, r.slug, e);
          }
        }
      })
      .immediate();
  }
  return changed;
}

/**
 * The fast half of `keelson reconcile --all` once the credentials are synced (`credentials`):
 * every live project's authz file and hook regenerated from the database alone, many at a time.
 * A project whose repository is missing (or that is not yet active) is returned for a full reconcile.
 */
export async function rebuildFiles(
  ctx: RebuildContext,
  t0: number,
  credentials: RebuildResult['credentials'],
  opts: RebuildOptions,
): Promise<RebuildResult> {
  const { phases, phase } = phaseClock(t0);
  const all = readAllAccess(ctx.db);
  opts.onProgress?.(0, all.length);
  const failed: RebuildResult['failed'] = [];
  const fail: Fail = (id, slug, e) => {
    const error = e instanceof Error ? e.message : String(e);
    failed.push({ slug, error });
    setProjectError(ctx.db, id, error);
  };
  const { items, needFull } = renderAll(ctx, all, fail, opts);
  phase('render');
  let changed = 0;
  try {
    const bad = await checkAndStage(ctx, items, fail);
    phase('check+write');
    const good = items.filter((i) => !bad.has(i));
    const writing = good.some((i) => i.authz.tmp || i.hooks.some((h) => h.tmp));
    if (writing) await syncFileSystem(ctx.l.svnRoot);
    phase('syncfs');
    changed = commitAll(ctx, good, fail);
    phase('rename');
    // 5. And one flush for the renames themselves.
    if (writing) await syncFileSystem(ctx.l.svnRoot);
    phase('syncfs2');
    opts.onProgress?.(all.length, all.length);
  } finally {
    for (const r of items) {
      await discard(r.authz);
      for (const h of r.hooks) await discardStaged(h);
    }
  }
  return { projects: all.length, changed, needFull, failed, credentials, ms: Date.now() - t0, phases };
}

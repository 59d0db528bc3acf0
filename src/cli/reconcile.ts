import { layout, type Config } from '../config.js';
import { openContext } from '../main/context.js';
import { liveProjects, projectBySlug, reconcileLater } from '../domain/projects.js';
import { Reconciler } from '../provision/reconciler.js';
import { parse, UsageError } from './args.js';

const USAGE = 'keelson reconcile SLUG... | --all [--files-only]';

/**
 * `keelson reconcile`: converges projects to the database now. With --all, first every authz
 * file, hook and the credentials database from the database alone, then (unless --files-only)
 * each project in full, with progress on stderr.
 */
export async function reconcileCommand(cfg: Config, rest: string[]): Promise<number> {
  const { values, positionals: slugs } = parse(rest, { all: { type: 'boolean' }, 'files-only': { type: 'boolean' } }, USAGE);
  const all = !!values.all;
  const filesOnly = !!values['files-only'];
  if (all === slugs.length > 0 || (filesOnly && !all)) throw new UsageError('', USAGE);
  const ctx = openContext(cfg);
  const rec = new Reconciler(cfg, layout(cfg), ctx.db);
  try {
    const t0 = Date.now();
    let failed = 0;
    let projects: { id: number; slug: string }[] = [];
    if (all) {
      const r = await rebuildAll(rec);
      failed += r.failed;
      if (filesOnly) {
        reconcileLater(ctx, r.needFull);
        if (r.needFull.length) console.error(`${r.needFull.length} projects need a full reconcile; queued for the worker`);
        return failed ? 1 : 0;
      }
      // Then the rest (Trac environments, repositories still missing) project by project.
      projects = liveProjects(ctx);
    } else {
      for (const slug of slugs) {
        const p = projectBySlug(ctx, slug);
        if (p) projects.push(p);
        else {
          console.error(`no project ${slug}`);
          failed++;
        }
      }
      if (projects.length === 0) {
        console.error(`usage: ${USAGE}`);
        return 2;
      }
      await rec.syncCredentials();
    }
    for (const [i, p] of projects.entries()) {
      try {
        await rec.reconcile(p.id);
        process.stderr.write(`\r[${i + 1}/${projects.length}] ${p.slug} ok          `);
      } catch (e) {
        failed++;
        console.error(`\n${p.slug}: ${(e as Error).message}`);
      }
    }
    await rec.drainCommitSpool();
    console.error(`\nreconciled ${projects.length} projects, ${failed} failed, in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return failed ? 1 : 0;
  } finally {
    rec.close();
    ctx.close();
  }
}

/** Every authz file, hook and the credentials database, from the database alone. */
async function rebuildAll(rec: Reconciler): Promise<{ failed: number; needFull: number[] }> {
  const r = await rec.rebuildFiles({ onProgress: (d, n) => process.stderr.write(`\rauthz and hooks: ${d}/${n}   `) });
  console.error(
    `\nauthz + hooks of ${r.projects} projects (${r.changed} rewritten) and credentials (+${r.credentials.upserted} -${r.credentials.removed}) in ${(r.ms / 1000).toFixed(2)} s`,
  );
  console.error(
    `  phases (ms): ${Object.entries(r.phases)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  );
  for (const f of r.failed) console.error(`${f.slug}: ${f.error}`);
  return { failed: r.failed.length, needFull: r.needFull };
}

/**
 * bench/backup, two figures, each next to a baseline measured in the same run:
 *
 * 1. A full backup of a ~1 GB repository (50 revisions of 20 MB random data) against `cp -a` of
 *    the same repository followed by `sync` (and, for reference, plain `svnadmin hotcopy` + sync).
 *    Keelson's figure is split: the backup until it is complete and synced on disk (copy,
 *    `svnadmin hotcopy --incremental` consistency pass, sha256 of every file, syncfs), and the
 *    `svnadmin verify` that follows before it counts. Target: backup at least 0.8x cp's speed.
 * 2. An incremental run over 1,000 projects of which 10 changed (repositories only), against a
 *    loop of `svnadmin hotcopy --incremental` over the same 1,000 repositories. Target: <= 10 s.
 *
 *   npm run build && node dist/bench/backup.js [--size-mb 1000] [--projects 1000] [--changed 10]
 *
 * Data goes under /var/tmp (KEELSON_BENCH_DIR to change); removed at the end.
 */
import fs from 'node:fs';
import crypto from 'node:crypto';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { loadConfig, layout } from '../src/config.js';
import { openDatabase, type DB } from '../src/store/db.js';
import { createProject } from '../src/domain/projects.js';
import { registerUser } from '../src/domain/users.js';
import { operator } from '../src/domain/context.js';
import { makeContext } from '../src/main/context.js';
import { hashPassword } from '../src/sys/password.js';
import { BackupService } from '../src/backup/engine.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const SIZE_MB = arg('--size-mb', 1000);
const PROJECTS = arg('--projects', 1000);
const CHANGED = arg('--changed', 10);
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 26 });
const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const time = (fn: () => void) => {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
};
const duBytes = (dir: string) => Number(sh('du', ['-sb', dir]).toString().split('\t')[0]);

process.env.KEELSON_LOG = 'silent';
const root = fs.mkdtempSync(path.join(process.env.KEELSON_BENCH_DIR || '/var/tmp', 'keelson-bench-backup-'));
fs.chmodSync(root, 0o755);
const cfg = loadConfig({ KEELSON_DATA_DIR: path.join(root, 'data') });
const l = layout(cfg);
for (const d of [l.svnRoot, l.tracRoot, l.staging]) fs.mkdirSync(d, { recursive: true });
const db: DB = openDatabase(l.db);
const ctx = makeContext(db, cfg);
const bench = operator('bench');
registerUser(ctx, bench, { name: 'bench', email: 'b@example.com', passwordHash: await hashPassword('a long enough password') });

/** A project row and its repository (no Trac environment: repositories only). */
function project(slug: string, fromRepo?: string): { id: number; dir: string } {
  const p = createProject(ctx, bench, { slug, title: slug, visibility: 'private', owner: 'bench' });
  db.prepare(`UPDATE projects SET state = 'active' WHERE id = ?`).run(p.id);
  db.prepare(`DELETE FROM jobs`).run();
  const dir = path.join(l.svnRoot, slug);
  if (fromRepo) sh('cp', ['-a', fromRepo, dir]);
  else sh('svnadmin', ['create', dir]);
  sh('svnadmin', ['setuuid', dir, p.repo_uuid]);
  return { id: p.id, dir };
}

async function bigRepository(): Promise<void> {
  console.log(`\n== 1. full backup of a ${SIZE_MB} MB repository vs cp -a (same run) ==`);
  const { dir } = project('big');
  const chunk = path.join(root, 'chunk.bin');
  const revs = Math.max(1, Math.round(SIZE_MB / 20));
  const t0 = performance.now();
  for (let i = 0; i < revs; i++) {
    fs.writeFileSync(chunk, crypto.randomBytes(20 * 1024 * 1024));
    sh('svnmucc', ['-m', `r${i + 1}`, '-U', `file://${dir}`, 'put', chunk, `f${i}.bin`]);
  }
  fs.rmSync(chunk);
  const size = duBytes(dir);
  console.log(`repository: ${(size / 1e6).toFixed(0)} MB in ${revs} revisions (made in ${secs(performance.now() - t0)})`);
  sh('sync', []);

  const svc = new BackupService(db, cfg, cfg.backup);
  const rows: string[] = [];
  for (let round = 1; round <= 3; round++) {
    const cpDir = path.join(root, `cp-${round}`);
    const cp = time(() => {
      sh('cp', ['-a', dir, cpDir]);
      sh('sync', []);
    });
    let verifyAt = 0;
    const t = performance.now();
    const phases: [string, number][] = [];
    const r = await svc.runProject('big', {
      kind: 'full',
      onProgress: (p) => {
        if (phases[phases.length - 1]?.[0] !== p.phase) phases.push([p.phase, performance.now()]);
        if (p.phase === 'verifying' && !verifyAt) verifyAt = performance.now();
      },
    });
    const ends = [...phases.slice(1).map((x) => x[1]), performance.now()];
    console.log(`  phases: ${phases.map(([name, at], i) => `${name} ${secs(ends[i]! - at)}`).join(', ')}`);
    const total = performance.now() - t;
    if (r.backup?.state !== 'verified') throw new Error(`backup ${r.backup?.state}: ${r.backup?.reason}`);
    const backup = verifyAt - t;
    const hcDir = path.join(root, `hotcopy-${round}`);
    const hc = time(() => {
      sh('svnadmin', ['hotcopy', dir, hcDir]);
      sh('sync', []);
    });
    rows.push(
      `round ${round}: cp -a + sync ${secs(cp)} | Keelson backup (copy, hotcopy --incremental, sha256, syncfs) ${secs(backup)} = ${(cp / backup).toFixed(2)}x cp's speed | + svnadmin verify ${secs(total - backup)} (total ${secs(total)} = ${(cp / total).toFixed(2)}x) | svnadmin hotcopy + sync ${secs(hc)} = ${(cp / hc).toFixed(2)}x`,
    );
    fs.rmSync(cpDir, { recursive: true, force: true });
    fs.rmSync(hcDir, { recursive: true, force: true });
  }
  for (const r of rows) console.log(r);
  db.prepare(`UPDATE projects SET state = 'deleted' WHERE slug = 'big'`).run();
}

async function manyProjects(): Promise<void> {
  console.log(`\n== 2. incremental over ${PROJECTS} projects, ${CHANGED} changed (same run: svnadmin hotcopy --incremental loop) ==`);
  const tpl = path.join(root, 'template-repo');
  sh('svnadmin', ['create', tpl]);
  sh('svnmucc', ['-m', 'layout', '-U', `file://${tpl}`, 'mkdir', 'trunk', 'mkdir', 'branches', 'mkdir', 'tags']);
  for (let i = 0; i < 5; i++) {
    fs.writeFileSync(path.join(root, 'f.txt'), `file ${i}\n`.repeat(200));
    sh('svnmucc', ['-m', `r${i}`, '-U', `file://${tpl}`, 'put', path.join(root, 'f.txt'), `trunk/f${i}.txt`]);
  }
  const slugs: string[] = [];
  let t0 = performance.now();
  for (let i = 0; i < PROJECTS; i++) {
    const slug = `p${String(i).padStart(4, '0')}`;
    project(slug, tpl);
    slugs.push(slug);
  }
  console.log(`made ${PROJECTS} projects in ${secs(performance.now() - t0)}`);
  const svc = new BackupService(db, cfg, cfg.backup);
  t0 = performance.now();
  const first = await svc.runAll('full');
  console.log(`first full backups of all: ${secs(performance.now() - t0)} (${JSON.stringify(first)})`);
  // The baseline's own copies, made once (not timed).
  const mirror = path.join(root, 'mirror');
  fs.mkdirSync(mirror);
  for (const s of slugs) sh('svnadmin', ['hotcopy', '--quiet', path.join(l.svnRoot, s), path.join(mirror, s)]);

  const changed = slugs.filter((_, i) => i % Math.floor(PROJECTS / CHANGED) === 0).slice(0, CHANGED);
  fs.writeFileSync(path.join(root, 'c.txt'), 'changed\n');
  for (const s of changed)
    sh('svnmucc', ['-m', 'change', '-U', `file://${path.join(l.svnRoot, s)}`, 'put', path.join(root, 'c.txt'), 'trunk/changed.txt']);
  sh('sync', []);

  t0 = performance.now();
  const inc = await svc.runAll('incremental');
  const keelson = performance.now() - t0;
  const baseline = time(() => {
    for (const s of slugs) sh('svnadmin', ['hotcopy', '--incremental', '--quiet', path.join(l.svnRoot, s), path.join(mirror, s)]);
  });
  console.log(
    `Keelson incremental run: ${secs(keelson)} (${JSON.stringify(inc)}) | svnadmin hotcopy --incremental over all ${PROJECTS}: ${secs(baseline)} | ${(baseline / keelson).toFixed(1)}x faster`,
  );
  if (inc.done !== CHANGED || inc.skipped !== PROJECTS - CHANGED) throw new Error('expected exactly the changed projects to be backed up');
}

try {
  if (SIZE_MB > 0) await bigRepository();
  if (PROJECTS > 0) await manyProjects();
} finally {
  db.close();
  fs.rmSync(root, { recursive: true, force: true });
}

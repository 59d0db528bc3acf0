import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import Database from 'better-sqlite3';
import request from 'supertest';
import { PROJECT_ROOT } from '../../src/paths.js';
import { readRepositoryUuid, youngestRevision } from '../../src/provision/svn.js';
import { BackupService } from '../../src/backup/engine.js';
import { getBackup, type BackupRow } from '../../src/store/backups.js';
import { applyRetention } from '../../src/backup/retention.js';
import { restoreBackup } from '../../src/backup/restore.js';
import { testRestore, testRestoreSample } from '../../src/backup/test-restore.js';
import { renderAuthz } from '../../src/authz/render.js';
import { readAccess } from '../../src/store/permissions.js';
import { publishAuthz } from '../../src/authz/publish.js';
import { AuthzChecker } from '../../src/authz/canary.js';
import { volumeOf } from '../../src/sys/volume.js';
import { listTree, needOf } from '../../src/backup/files.js';
import { http, layout, startHost, svn, tree, until, type TestHost } from '../helpers/host.js';
import { webhook } from '../helpers/webhook.js';

/**
 * Backups on real volumes: tmpfs mounted here (as root), the real svnadmin, Trac, Apache and svn
 * client. Nothing is skipped: a machine that cannot mount tmpfs fails these tests.
 */

const MiB = 1024 * 1024;

function mountTmpfs(tag: string, size: string): string {
  const dir = fs.mkdtempSync(path.join('/var/tmp', `keelson-bk-${tag}-`));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir]);
  return dir;
}
function unmount(dir: string | undefined): void {
  if (!dir) return;
  try {
    execFileSync('umount', [dir]);
  } catch {
    execFileSync('umount', ['-l', dir]);
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

/** A Trac ticket and a wiki page, written through Trac's own Python API. */
function tracWrite(python: string, envDir: string, ticket: string, page: string, text: string): void {
  const code = `
import sys
from trac.env import Environment
from trac.ticket.model import Ticket
from trac.wiki.model import WikiPage
env = Environment(sys.argv[1])
t = Ticket(env)
t['summary'] = sys.argv[2]
t['reporter'] = 'olivia'
t['status'] = 'new'
t.insert()
w = WikiPage(env, sys.argv[3])
w.text = sys.argv[4]
w.save('olivia', 'written by the backup test')
env.shutdown()
`;
  execFileSync(python, ['-c', code, envDir, ticket, page, text], { stdio: ['ignore', 'pipe', 'pipe'] });
}

function tracRead(envDir: string): { tickets: string[]; pages: Record<string, string> } {
  const d = new Database(path.join(envDir, 'db', 'trac.db'), { readonly: true });
  try {
    const tickets = (d.prepare(`SELECT summary FROM ticket ORDER BY id`).pluck().all() as string[]).sort();
    const pages: Record<string, string> = {};
    for (const r of d
      .prepare(`SELECT name, text FROM wiki w WHERE version = (SELECT max(version) FROM wiki x WHERE x.name = w.name)`)
      .all() as {
      name: string;
      text: string;
    }[])
      pages[r.name] = r.text;
    return { tickets, pages };
  } finally {
    d.close();
  }
}

/** A test world: users, projects and commits through the real API, Apache and svn client. */
class World {
  pw: Record<string, string> = {};
  constructor(readonly h: TestHost) {}
  creds(u: string) {
    return { user: u, password: this.pw[u]! };
  }
  async user(name: string) {
    const r = await this.h.api.post('/api/v1/users').send({ name, email: `${name}@example.com`, password: 'a long enough password' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    this.pw[name] = r.body.accessToken;
  }
  async project(slug: string, owner: string) {
    const r = await this.h.api.post('/api/v1/projects').send({ slug, owner, title: `Project ${slug}` });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    await until(`${slug} active`, async () => (await this.h.api.get(`/api/v1/projects/${slug}`)).body.state === 'active', 30_000);
  }
  async settled() {
    await until('queue empty', async () => (await this.h.api.get('/api/v1/health')).body.jobsQueued === 0, 30_000).catch((e) => {
      // Say which jobs are stuck and why, not only that the queue did not empty.
      const jobs = this.h.run.db
        .prepare(`SELECT kind, project_id, state, attempts, last_error FROM jobs WHERE state IN ('pending', 'running')`)
        .all();
      throw new Error(`${(e as Error).message}; jobs: ${JSON.stringify(jobs)}`);
    });
  }
  /** Commits files (name -> content) to trunk over HTTP as user u; returns the new revision. */
  async commit(slug: string, u: string, files: Record<string, string | Buffer>): Promise<number> {
    const wc = fs.mkdtempSync(path.join(os.tmpdir(), 'bkwc-'));
    try {
      const co = await svn(['checkout', `${this.h.svnUrl(slug)}/trunk`, wc], this.creds(u));
      assert.equal(co.code, 0, co.stderr);
      for (const [name, content] of Object.entries(files)) {
        const f = path.join(wc, name);
        const existed = fs.existsSync(f);
        fs.writeFileSync(f, content);
        if (!existed) assert.equal((await svn(['add', '--force', f])).code, 0);
      }
      const ci = await svn(['commit', '-m', `commit by ${u}`, wc], this.creds(u));
      assert.equal(ci.code, 0, ci.stderr);
      const m = /Committed revision (\d+)/.exec(ci.stdout);
      assert.ok(m, ci.stdout);
      return Number(m[1]);
    } finally {
      fs.rmSync(wc, { recursive: true, force: true });
    }
  }
  async cat(slug: string, u: string, file: string): Promise<string> {
    const r = await svn(['cat', `${this.h.svnUrl(slug)}/trunk/${file}`], this.creds(u));
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  }
  repo(slug: string) {
    return path.join(layout(this.h.cfg).svnRoot, slug);
  }
  env(slug: string) {
    return path.join(layout(this.h.cfg).tracRoot, slug);
  }
  projectRow(slug: string) {
    return this.h.run.db.prepare(`SELECT * FROM projects WHERE slug = ? AND state <> 'deleted'`).get(slug) as {
      id: number;
      repo_uuid: string;
      state: string;
    };
  }
}

const random = (n: number) => crypto.randomBytes(n);

function service(h: TestHost, over: Partial<BackupService['settings']> = {}): BackupService {
  return new BackupService(h.run.db, h.cfg, { ...h.cfg.backup, ...over });
}

function stagingEntries(h: TestHost): string[] {
  const s = path.join(h.cfg.backupDir, '.staging');
  return fs.existsSync(s) ? fs.readdirSync(s) : [];
}

function integrityOk(file: string): string {
  const d = new Database(file, { readonly: true });
  try {
    return (d.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check).join(';');
  } finally {
    d.close();
  }
}

/** Waits (polling fast) until fn is true; for catching a run in the act. */
async function soon(what: string, fn: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** GET /api/v1/jobs/:id as the API answers it (a restore job). */
interface JobView {
  id: number;
  kind: string;
  project: string | null;
  state: 'pending' | 'running' | 'done' | 'failed';
  attempts: number;
  maxAttempts: number;
  lastError: string | null;
  createdAt: string;
  heartbeatAt: string | null;
  finishedAt: string | null;
  restore: { backupId: number; target: string; mode: 'in-place' | 'new'; startedAt: string | null } | null;
  result: { backupId: number; project: string; mode: 'in-place' | 'new'; youngestRev: number; repoUuid: string } | null;
  error: { status: number; code: string; message: string } | null;
}

/** Follows a job (polling fast) until it is done or failed; returns it and the states seen on the way, in order. */
async function followJob(h: TestHost, id: number, timeoutMs = 180_000): Promise<{ job: JobView; seen: string[] }> {
  const seen: string[] = [];
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = await h.api.get(`/api/v1/jobs/${id}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const job = r.body as JobView;
    if (seen[seen.length - 1] !== job.state) seen.push(job.state);
    if (job.state === 'done' || job.state === 'failed') return { job, seen };
    if (Date.now() > end) throw new Error(`job #${id} is still ${job.state} after ${timeoutMs} ms: ${JSON.stringify(job)}`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

/** POST /api/v1/backups/:id/restore: 202 with the queued job, followed until it ends. */
async function restoreThroughApi(h: TestHost, backupId: number, body: object): Promise<JobView> {
  const r = await h.api.post(`/api/v1/backups/${backupId}/restore`).send(body);
  assert.equal(r.status, 202, JSON.stringify(r.body));
  assert.equal(r.body.status, `/api/v1/jobs/${r.body.job.id}`);
  return (await followJob(h, r.body.job.id)).job;
}

const backupEnv = {
  KEELSON_BACKUP_RESERVE_PERCENT: '0',
  KEELSON_BACKUP_RESERVE_BYTES: '0',
  KEELSON_BACKUP_RESERVE_INODES: '0',
  KEELSON_BACKUP_RESERVE_INODES_PERCENT: '0',
  KEELSON_BACKUP_WATCH_MS: '20',
};

describe('backups on their own small volume (tmpfs)', () => {
  let h: TestHost;
  let w: World;
  let vol: string | undefined;

  before(async () => {
    vol = mountTmpfs('vol', '96m');
    h = await startHost('backup', {}, { ...backupEnv, KEELSON_BACKUP_DIR: vol });
    w = new World(h);
    await w.user('olivia');
    await w.user('bob');
    await w.project('alpha', 'olivia');
    await w.project('beta', 'bob');
    await w.commit('alpha', 'olivia', { 'README.txt': 'alpha readme\n', 'big.bin': random(20 * MiB) });
    await w.commit('beta', 'bob', { 'beta.txt': 'beta only\n' });
    tracWrite(h.cfg.python, w.env('alpha'), 'first ticket', 'BackupNotes', 'written before the first backup');
  });
  after(async () => {
    await h?.stop();
    unmount(vol);
  });

  it('a backup that cannot fit is refused before a byte is written, and the catalog says why', async () => {
    const before = volumeOf(vol!);
    assert.deepEqual(tree(vol!), []);
    // 96 MiB volume, a ~21 MiB project: with 80 MiB to keep free it cannot fit.
    h.cfg.backup.reserveBytes = 80 * MiB;
    try {
      const r = await h.api.post('/api/v1/backups').send({ project: 'alpha', kind: 'full' });
      assert.equal(r.status, 202, JSON.stringify(r.body));
      const row = await until('refusal in the catalog', async () => {
        const l = await h.api.get('/api/v1/backups?project=alpha');
        return l.body.backups.find((b: { state: string }) => b.state !== 'running' && b.state !== 'verifying');
      });
      assert.equal(row.state, 'refused');
      assert.equal(row.project, 'alpha');
      assert.match(row.reason, /refused before writing: needs .* free .* must stay free/);
      assert.ok(row.needed > 20 * MiB, `needed ${row.needed}`);
      assert.equal(row.reserve, 80 * MiB);
      assert.ok(row.free > 0 && row.free - row.needed < row.reserve);
      // Not a byte: nothing on the volume, free space unchanged.
      assert.deepEqual(tree(vol!), []);
      assert.equal(volumeOf(vol!).freeBytes, before.freeBytes);
      const l = await h.api.get('/api/v1/backups');
      assert.equal(l.status, 200);
      assert.equal(l.body.volume.path, vol);
      assert.equal(l.body.volume.sameDeviceAsData, false);
      assert.equal(l.body.projects.find((p: { slug: string }) => p.slug === 'alpha').lastGoodAt, null);
      // A scheduled run right after a refusal backs off instead of trying again.
      const s = service(h);
      const again = await s.runProject('alpha', { kind: 'full', trigger: 'schedule' });
      assert.match(again.skipped ?? '', /backing off/);
    } finally {
      h.cfg.backup.reserveBytes = 0;
    }
  });

  it('a volume another writer fills during the run: the backup aborts, its partial files are gone, the catalog says why', async () => {
    // The refusal is an alert: a JSON POST to the configured webhook.
    const hook = await webhook();
    const posts = hook.alerts;
    const s = service(h, { reserveBytes: 16 * MiB, alertWebhook: hook.url });
    const filler = path.join(vol!, 'filler.bin');
    const run = s.runProject('alpha', { kind: 'full', trigger: 'manual' });
    // As soon as the run has its staging folder, another writer takes the volume down to 8 MiB free.
    await soon('staging folder', () => stagingEntries(h).length > 0);
    const free = volumeOf(vol!).freeBytes;
    try {
      fs.writeFileSync(filler, Buffer.alloc(Math.max(0, free - 8 * MiB)));
    } catch (e) {
      assert.equal((e as NodeJS.ErrnoException).code, 'ENOSPC');
    }
    const r = await run;
    assert.equal(r.skipped, undefined);
    const row = r.backup!;
    assert.equal(row.state, 'refused', row.reason ?? '');
    assert.match(row.reason!, /aborted (during the run|: the volume filled)/);
    assert.ok(row.needed_bytes! > 20 * MiB);
    assert.equal(row.reserve_bytes, 16 * MiB);
    assert.ok(row.free_bytes! < 16 * MiB, `free ${row.free_bytes}`);
    assert.equal(row.path, null);
    // Partial output gone: only the other writer's file is left on the volume.
    assert.deepEqual(stagingEntries(h), []);
    assert.deepEqual(
      tree(vol!).filter((f) => f !== '.staging'),
      ['filler.bin'],
    );
    fs.rmSync(filler);
    assert.equal((await h.api.get('/api/v1/backups')).body.backups.find((b: { id: number }) => b.id === row.id).state, 'refused');
    hook.close();
    assert.equal(posts.length, 1);
    assert.equal(posts[0]!.event, 'backup.refused');
    assert.equal(posts[0]!.backup, row.id);
    assert.equal(posts[0]!.project, 'alpha');
    assert.equal(posts[0]!.reserve, 16 * MiB);
    assert.match(String(posts[0]!.reason), /aborted/);
  });

  let fullId = 0;
  let inc1 = 0;
  let inc2 = 0;
  let revAtInc2 = 0;

  it('full, then incrementals that share unchanged revision files; unchanged projects are not copied again', async () => {
    // The first good backup through the API and the worker.
    const r = await h.api.post('/api/v1/backups').send({ project: 'alpha', kind: 'full' });
    assert.equal(r.status, 202);
    const full = await until('full verified', async () => {
      const l = await h.api.get('/api/v1/backups?project=alpha');
      return l.body.backups.find((b: { state: string; kind: string }) => b.kind === 'full' && b.state === 'verified');
    });
    fullId = full.id;
    assert.ok(full.bytes > 20 * MiB);
    const fullRow = getBackup(h.run.db, fullId)!;
    const m = JSON.parse(fs.readFileSync(path.join(fullRow.path!, 'manifest.json'), 'utf8'));
    assert.equal(m.project.slug, 'alpha');
    assert.equal(m.project.id, w.projectRow('alpha').id);
    assert.equal(m.project.repoUuid, w.projectRow('alpha').repo_uuid);
    assert.equal(m.youngestRev, youngestRevision(w.repo('alpha')));
    assert.ok(m.files.some((f: { path: string; sha256: string }) => f.path === 'trac/db/trac.db' && /^[0-9a-f]{64}$/.test(f.sha256)));

    const s = service(h);
    const same = await s.runProject('alpha', { kind: 'incremental' });
    assert.match(same.skipped ?? '', /unchanged since backup/);

    await w.commit('alpha', 'olivia', { 'second.txt': 'second\n' });
    tracWrite(h.cfg.python, w.env('alpha'), 'second ticket', 'Second', 'after the full');
    const a = await s.runProject('alpha', { kind: 'incremental' });
    assert.equal(a.backup!.state, 'verified', a.backup!.reason ?? '');
    assert.equal(a.backup!.kind, 'incremental');
    assert.equal(a.backup!.base_id, fullId);
    inc1 = a.backup!.id;
    // The 20 MiB revision is shared with the full backup, not written again.
    assert.ok(a.backup!.bytes < 5 * MiB, `incremental wrote ${a.backup!.bytes}`);

    revAtInc2 = await w.commit('alpha', 'olivia', { 'third.txt': 'third\n', 'README.txt': 'alpha readme, edited\n' });
    const b = await s.runProject('alpha', { kind: 'incremental' });
    assert.equal(b.backup!.state, 'verified', b.backup!.reason ?? '');
    assert.equal(b.backup!.base_id, inc1);
    assert.equal(b.backup!.rev_to, revAtInc2);
    inc2 = b.backup!.id;
    const l = await h.api.get('/api/v1/backups');
    const alpha = l.body.projects.find((p: { slug: string }) => p.slug === 'alpha');
    assert.ok(alpha.lastGoodAt && alpha.lastGoodAgeSeconds >= 0 && alpha.lastGoodAgeSeconds < 120);
    const entry = l.body.backups.find((x: { id: number }) => x.id === inc2);
    for (const k of ['id', 'project', 'kind', 'state', 'bytes', 'startedAt', 'finishedAt', 'durationMs', 'reason'])
      assert.ok(k in entry, k);
    // The older backups still match their own checksums (shared files were never written in place).
    await testRestore(s, getBackup(h.run.db, fullId)!);
    await testRestore(s, getBackup(h.run.db, inc1)!);
  });

  it('restore in place: the incremental chain restores to its latest revision, same UUID, contents, Trac tickets and wiki', async () => {
    const p = w.projectRow('alpha');
    const tracBefore = tracRead(w.env('alpha'));
    const readme = await w.cat('alpha', 'olivia', 'README.txt');
    const big = execFileSync('svnlook', ['cat', w.repo('alpha'), 'trunk/big.bin'], { maxBuffer: 64 * MiB });
    // Damage after the backup: a new commit and a new ticket that the restore must take away.
    const later = await w.commit('alpha', 'olivia', { 'later.txt': 'after the backup\n' });
    assert.equal(later, revAtInc2 + 1);
    tracWrite(h.cfg.python, w.env('alpha'), 'ticket after backup', 'LaterPage', 'gone after restore');

    // A job: 202 at once (the restore has not run yet), then pending -> running -> done with the result.
    const t0 = Date.now();
    const r = await h.api.post(`/api/v1/backups/${inc2}/restore`).send({ inPlace: true });
    const answeredMs = Date.now() - t0;
    assert.equal(r.status, 202, JSON.stringify(r.body));
    assert.ok(answeredMs < 5000, `answered after ${answeredMs} ms`);
    assert.deepEqual(r.body.job, { id: r.body.job.id, kind: 'restore', state: 'pending' });
    assert.equal(r.body.status, `/api/v1/jobs/${r.body.job.id}`);
    assert.equal(r.headers.location, r.body.status);
    assert.equal(r.body.target, 'alpha');
    assert.equal(r.body.mode, 'in-place');
    // A second restore into the same project while this one is queued or running is refused, not merged.
    const second = await h.api.post(`/api/v1/backups/${inc1}/restore`).send({ inPlace: true });
    assert.equal(second.status, 409, JSON.stringify(second.body));
    assert.match(second.body.error.message, new RegExp(`a restore into alpha is already (pending|running) \\(job #${r.body.job.id}\\)`));
    const { job, seen } = await followJob(h, r.body.job.id);
    assert.deepEqual([r.body.job.state, ...seen.filter((x) => x !== 'pending')], ['pending', 'running', 'done'], JSON.stringify(job));
    assert.equal(job.kind, 'restore');
    assert.equal(job.project, 'alpha');
    assert.equal(job.attempts, 1);
    assert.equal(job.maxAttempts, 1);
    assert.equal(job.lastError, null);
    assert.equal(job.error, null);
    assert.ok(Date.parse(job.createdAt) <= Date.parse(job.restore!.startedAt!));
    assert.ok(Date.parse(job.restore!.startedAt!) <= Date.parse(job.finishedAt!));
    assert.deepEqual(job.restore, { backupId: inc2, target: 'alpha', mode: 'in-place', startedAt: job.restore!.startedAt });
    assert.deepEqual(job.result, { backupId: inc2, project: 'alpha', mode: 'in-place', youngestRev: revAtInc2, repoUuid: p.repo_uuid });
    assert.equal(job.result!.mode, 'in-place');
    assert.equal((await h.api.get('/api/v1/jobs/999999')).status, 404);
    await w.settled();
    assert.equal(w.projectRow('alpha').state, 'active');
    assert.equal(youngestRevision(w.repo('alpha')), revAtInc2);
    assert.equal(readRepositoryUuid(w.repo('alpha')), p.repo_uuid);
    assert.equal(await w.cat('alpha', 'olivia', 'README.txt'), readme);
    assert.ok(execFileSync('svnlook', ['cat', w.repo('alpha'), 'trunk/big.bin'], { maxBuffer: 64 * MiB }).equals(big));
    const info = await svn(['info', '--show-item', 'revision', w.h.svnUrl('alpha')], w.creds('olivia'));
    assert.equal(info.stdout.trim(), String(revAtInc2));
    assert.deepEqual(tracRead(w.env('alpha')), tracBefore);
    const page = await http(`${h.tracUrl('alpha')}/wiki/Second`, w.creds('olivia'));
    assert.equal(page.status, 200);
    assert.match(page.body, /after the full/);
    assert.equal((await http(`${h.tracUrl('alpha')}/wiki/BackupNotes`, w.creds('olivia'))).status, 200);
    // Access is today's: bob (not a member) still cannot read; olivia can commit on top.
    assert.notEqual((await svn(['info', w.h.svnUrl('alpha')], w.creds('bob'))).code, 0);
    assert.equal(await w.commit('alpha', 'olivia', { 'after-restore.txt': 'ok\n' }), revAtInc2 + 1);
    // Apache's caches did not serve the old revision of that number (the instance ID changed).
    assert.equal(await w.cat('alpha', 'olivia', 'after-restore.txt'), 'ok\n');
    assert.equal(await w.commit('alpha', 'olivia', { 'after-restore-2.txt': 'ok\n' }), revAtInc2 + 2);
    const audit = h.run.db.prepare(`SELECT count(*) FROM audit_log WHERE action = 'backup.restore' AND target = 'alpha'`).pluck().get();
    assert.equal(audit, 1);
  });

  it('an in-place restore refuses commits from its start (never acknowledged, then discarded); afterwards commits work again', async () => {
    const s = service(h);
    const id = w.projectRow('alpha').id;
    const youngest = youngestRevision(w.repo('alpha'));
    assert.ok(youngest > revAtInc2);
    const wc = fs.mkdtempSync(path.join(os.tmpdir(), 'bkwc-'));
    try {
      const co = await svn(['checkout', `${h.svnUrl('alpha')}/trunk`, wc], w.creds('olivia'));
      assert.equal(co.code, 0, co.stderr);
      const f = path.join(wc, 'during-restore.txt');
      fs.writeFileSync(f, 'committed while the restore ran\n');
      assert.equal((await svn(['add', f])).code, 0);
      let during: Awaited<ReturnType<typeof svn>> | undefined;
      let liveAuthz = '';
      // A publisher that read the access before the suspension and publishes while the restore runs.
      const inFlight = readAccess(h.run.db, id)!;
      assert.equal(inFlight.access.suspended, false);
      const r = await restoreBackup(s, inc2, {
        inPlace: true,
        admin: true,
        actor: 'test',
        // The restore is under way (project suspended, nothing copied yet): the owner commits.
        onSuspended: async () => {
          assert.equal(w.projectRow('alpha').state, 'suspended');
          const file = path.join(w.repo('alpha'), 'conf', 'authz');
          const checker = new AuthzChecker(h.cfg.python);
          try {
            const late = await publishAuthz(h.run.db, { projectId: id, file, ...inFlight, checker, publisher: 'test' });
            assert.equal(late.stale, true, 'an older snapshot is not published over the deny-all file');
          } finally {
            checker.close();
          }
          liveAuthz = fs.readFileSync(file, 'utf8');
          during = await svn(['commit', '-m', 'during the restore', wc], w.creds('olivia'));
          assert.equal(youngestRevision(w.repo('alpha')), youngest, 'nothing was committed to the live repository');
        },
      });
      assert.equal(r.youngestRev, revAtInc2);
      // The live repository denied everybody: the suspended rendering of the project's own access.
      assert.equal(liveAuthz, renderAuthz({ ...readAccess(h.run.db, id)!.access, suspended: true }));
      assert.match(liveAuthz, /suspended: nobody has access/);
      assert.ok(during, 'the commit ran during the restore');
      assert.notEqual(during.code, 0, `a commit during the restore was acknowledged: ${during.stdout}`);
      assert.doesNotMatch(during.stdout, /Committed revision/);
      assert.match(during.stderr, /403|forbidden/i);
    } finally {
      fs.rmSync(wc, { recursive: true, force: true });
    }
    // After: active again, the real access published over the deny-all, commits accepted.
    await w.settled();
    assert.equal(w.projectRow('alpha').state, 'active');
    assert.equal(youngestRevision(w.repo('alpha')), revAtInc2);
    const access = readAccess(h.run.db, id)!.access;
    assert.equal(access.suspended, false);
    assert.equal(fs.readFileSync(path.join(w.repo('alpha'), 'conf', 'authz'), 'utf8'), renderAuthz(access));
    assert.equal(await w.commit('alpha', 'olivia', { 'after-second-restore.txt': 'ok\n' }), revAtInc2 + 1);
    assert.notEqual((await svn(['cat', `${h.svnUrl('alpha')}/trunk/during-restore.txt`], w.creds('olivia'))).code, 0);
    assert.notEqual((await svn(['info', h.svnUrl('alpha')], w.creds('bob'))).code, 0);
  });

  it('a restore killed mid-swap: the live trees it moved aside survive the staging sweeps and are reported, not deleted', async () => {
    const cli = path.join(PROJECT_ROOT, 'dist', 'src', 'cli', 'main.js');
    const env = {
      ...process.env,
      ...backupEnv,
      KEELSON_DATA_DIR: h.cfg.dataDir,
      KEELSON_BACKUP_DIR: h.cfg.backupDir,
      KEELSON_APACHE_PORT: String(h.cfg.apachePort),
      KEELSON_LOG: 'silent',
    };
    const id = w.projectRow('alpha').id;
    const liveRev = youngestRevision(w.repo('alpha'));
    assert.ok(liveRev > revAtInc2);
    // The backup volume is another device here: the aside folder is the data directory's.
    const root = path.join(h.cfg.dataDir, 'restore-aside');
    const asideSvn = () =>
      fs.existsSync(root)
        ? fs
            .readdirSync(root)
            .map((e) => path.join(root, e, 'svn'))
            .find((d) => fs.existsSync(d))
        : undefined;
    assert.equal(asideSvn(), undefined);
    const child = spawn(process.execPath, [cli, 'backup', 'restore', String(inc2), '--in-place'], { env, stdio: 'ignore' });
    await soon('the live repository moved aside', () => !!asideSvn(), 60_000);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const aside = path.dirname(asideSvn()!);
    assert.match(path.basename(aside), new RegExp(`^alpha-${id}-p${child.pid}-[0-9a-f]+$`));
    // The reconciler's start-up sweep of its staging (`keelson reconcile --all --files-only` runs
    // it, as a restarted server does) and the backup sweep remove the dead restore's staging, not this.
    const staging = layout(h.cfg).staging;
    execFileSync(process.execPath, [cli, 'reconcile', '--all', '--files-only'], { env, stdio: 'ignore' });
    assert.deepEqual(
      fs.readdirSync(staging).filter((e) => e.includes(`-p${child.pid}-`)),
      [],
    );
    const swept = service(h).sweep();
    assert.deepEqual(swept.asides, [aside], 'the leftover is reported');
    // It is the live repository as it was, with the commit made after the backup.
    assert.equal(youngestRevision(path.join(aside, 'svn')), liveRev);
    assert.equal(readRepositoryUuid(path.join(aside, 'svn')), w.projectRow('alpha').repo_uuid);

    // The operator runs the restore again (the dead one's lease does not block it) and resumes the project.
    await w.settled();
    const again = await restoreThroughApi(h, inc2, { inPlace: true });
    assert.equal(again.state, 'done', JSON.stringify(again));
    assert.ok(fs.existsSync(path.join(aside, 'svn')), 'a later restore reports the leftover and leaves it');
    assert.equal((await h.api.post('/api/v1/projects/alpha/resume')).status, 200);
    await w.settled();
    assert.equal(w.projectRow('alpha').state, 'active');
    assert.equal(youngestRevision(w.repo('alpha')), revAtInc2);
    assert.equal(await w.commit('alpha', 'olivia', { 'after-killed-restore.txt': 'ok\n' }), revAtInc2 + 1);
    fs.rmSync(aside, { recursive: true });
    assert.deepEqual(service(h).sweep().asides, []);
  });

  it('a restore renews its lease while it runs, and stops before swapping anything in once the lease is taken over', async () => {
    const id = w.projectRow('alpha').id;
    const scope = `project:${id}`;
    const lease = () =>
      h.run.db.prepare(`SELECT * FROM backup_leases WHERE scope = ?`).get(scope) as { holder: string; expires_at: number } | undefined;
    const liveRev = youngestRevision(w.repo('alpha'));
    let renewed = false;
    await assert.rejects(
      restoreBackup(service(h), inc2, {
        inPlace: true,
        admin: true,
        actor: 'test',
        leaseRenewMs: 50,
        onSuspended: async () => {
          // A lease about to expire is pushed out again by the running restore.
          h.run.db.prepare(`UPDATE backup_leases SET expires_at = ? WHERE scope = ?`).run(Date.now() + 1000, scope);
          await soon('the lease renewed', () => lease()!.expires_at > Date.now() + 30_000, 5000);
          renewed = true;
          // Another holder takes the lease over (as after an expiry): the restore must stop.
          h.run.db.prepare(`UPDATE backup_leases SET holder = 'elsewhere:1' WHERE scope = ?`).run(scope);
          await new Promise((r) => setTimeout(r, 300));
        },
      }),
      /lease of project:\d+ was taken over/,
    );
    assert.ok(renewed);
    // Nothing was swapped in; the other holder's lease is not released by the stopped restore.
    assert.equal(youngestRevision(w.repo('alpha')), liveRev);
    assert.equal(lease()!.holder, 'elsewhere:1');
    h.run.db.prepare(`DELETE FROM backup_leases WHERE scope = ?`).run(scope);
    assert.deepEqual(service(h).sweep().asides, []);
    // The project is back as it was: active, its real authz republished, commits accepted.
    await w.settled();
    assert.equal(w.projectRow('alpha').state, 'active');
    assert.equal(fs.readFileSync(path.join(w.repo('alpha'), 'conf', 'authz'), 'utf8'), renderAuthz(readAccess(h.run.db, id)!.access));
    assert.equal(await w.commit('alpha', 'olivia', { 'after-stopped-restore.txt': 'ok\n' }), liveRev + 1);
  });

  it("restoring project A's backup over project B is refused; an admin may restore it to a new slug", async () => {
    const beta = w.projectRow('beta');
    const betaRev = youngestRevision(w.repo('beta'));
    for (const body of [{ inPlace: true, to: 'beta' }, { to: 'beta' }]) {
      const r = await h.api.post(`/api/v1/backups/${fullId}/restore`).send(body);
      assert.equal(r.status, 409, JSON.stringify(r.body));
      assert.match(r.body.error.message, /refusing to restore it over beta/);
    }
    assert.equal(youngestRevision(w.repo('beta')), betaRev);
    assert.equal(readRepositoryUuid(w.repo('beta')), beta.repo_uuid);
    assert.equal(w.projectRow('beta').state, 'active');
    assert.equal(await w.cat('beta', 'bob', 'beta.txt'), 'beta only\n');

    const bad = await h.api.post(`/api/v1/backups/${fullId}/restore`).send({ to: '../etc' });
    assert.equal(bad.status, 400);

    const r = await restoreThroughApi(h, fullId, { to: 'alpha-copy' });
    assert.equal(r.state, 'done', JSON.stringify(r));
    assert.equal(r.result!.project, 'alpha-copy');
    assert.equal(r.result!.mode, 'new');
    await until('alpha-copy active', async () => (await h.api.get('/api/v1/projects/alpha-copy')).body.state === 'active', 30_000);
    await w.settled();
    const copy = w.projectRow('alpha-copy');
    assert.notEqual(copy.repo_uuid, w.projectRow('alpha').repo_uuid, 'a copy is a new repository');
    assert.equal(readRepositoryUuid(w.repo('alpha-copy')), copy.repo_uuid);
    assert.equal(youngestRevision(w.repo('alpha-copy')), getBackup(h.run.db, fullId)!.rev_to);
    assert.equal(await w.cat('alpha-copy', 'olivia', 'README.txt'), 'alpha readme\n');
    assert.deepEqual(tracRead(w.env('alpha-copy')).tickets, ['first ticket']);
    assert.equal((await http(`${h.tracUrl('alpha-copy')}/wiki/BackupNotes`, w.creds('olivia'))).status, 200);
    // bob is not a member of the copy: its Trac gives him nothing (as for a project that does not exist).
    assert.equal((await http(`${h.tracUrl('alpha-copy')}/wiki/BackupNotes`, w.creds('bob'))).status, 404);
  });

  it('the web UI restores through the same job: the operator picks the target on a form and follows the job page until it ends', async () => {
    const PW = 'a long enough password';
    const made = await h.api.post('/api/v1/users').send({ name: 'opal', email: 'opal@example.com', password: PW, admin: true });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const csrfOf = (page: string) => /<meta name="csrf-token" content="([^"]+)">/.exec(page)![1]!;
    const signIn = async (name: string, password: string) => {
      const a = request.agent(h.run.url!);
      const token = csrfOf((await a.get('/login')).text);
      const login = await a.post('/login').type('form').send({ _csrf: token, username: name, password });
      assert.equal(login.status, 303, login.text);
      return a;
    };
    // Not for project owners: the form and the job page are the operator's.
    const olivia = await signIn('olivia', PW);
    assert.equal((await olivia.get(`/admin/backups/${fullId}/restore`)).status, 403);

    const a = await signIn('opal', PW);
    const form = await a.get(`/admin/backups/${fullId}/restore`);
    assert.equal(form.status, 200);
    assert.match(form.text, new RegExp(`Restore backup #${fullId}`));
    // A bad target comes back on the form, next to its field, and queues nothing.
    const bad = await a
      .post(`/admin/backups/${fullId}/restore`)
      .type('form')
      .send({ _csrf: csrfOf(form.text), mode: 'new', to: '../etc' });
    assert.equal(bad.status, 400);
    assert.match(bad.text, /id="rs-to-err"/);
    const posted = await a
      .post(`/admin/backups/${fullId}/restore`)
      .type('form')
      .send({ _csrf: csrfOf(form.text), mode: 'new', to: 'alpha-web', owner: 'olivia' });
    assert.equal(posted.status, 303, posted.text);
    const jobPath = posted.headers.location as string;
    assert.match(jobPath, /^\/admin\/jobs\/\d+$/);
    const states: string[] = [];
    const page = await until(
      'the job page shows the restore done',
      async () => {
        const p = await a.get(jobPath);
        assert.equal(p.status, 200);
        const state = /<span class="state (\w+)">/.exec(p.text)![1]!;
        if (states.at(-1) !== state) states.push(state);
        // While it runs the page reloads itself (no script needed); once it ended it does not.
        assert.equal(/http-equiv="refresh"/.test(p.text), state === 'pending' || state === 'running');
        return state === 'done' || state === 'failed' ? p : undefined;
      },
      180_000,
    );
    assert.ok(page);
    assert.equal(states.at(-1), 'done', page.text);
    assert.match(page.text, /into alpha-web \(new\)/);
    assert.match(page.text, /id="job-result">[^<]*&quot;project&quot;:&quot;alpha-web&quot;/);
    // The same job through the API.
    const id = Number(jobPath.split('/').at(-1));
    const api = (await h.api.get(`/api/v1/jobs/${id}`)).body;
    assert.equal(api.state, 'done');
    assert.equal(api.result.project, 'alpha-web');
    await until('alpha-web active', async () => (await h.api.get('/api/v1/projects/alpha-web')).body.state === 'active', 30_000);
    assert.equal(await w.cat('alpha-web', 'olivia', 'README.txt'), 'alpha readme\n');
  });

  it("SIGKILL mid-backup: the worker's next run sweeps the leftovers and succeeds; the lease does not block", async () => {
    const cli = path.join(PROJECT_ROOT, 'dist', 'src', 'cli', 'main.js');
    const env = {
      ...process.env,
      ...backupEnv,
      KEELSON_DATA_DIR: h.cfg.dataDir,
      KEELSON_BACKUP_DIR: h.cfg.backupDir,
      KEELSON_LOG: 'silent',
    };
    const child = spawn(process.execPath, [cli, 'backup', 'run', 'alpha', '--full'], { env, stdio: 'ignore' });
    const running = () =>
      h.run.db.prepare(`SELECT * FROM backups WHERE state IN ('running','verifying') AND holder LIKE ?`).get(`%:${child.pid}`) as
        BackupRow | undefined;
    await soon('the CLI backup writing', () => {
      const r = running();
      return !!r?.staging_path && fs.existsSync(path.join(r.staging_path, 'svn', 'db'));
    });
    const killed = running()!;
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    assert.ok(fs.existsSync(killed.staging_path!), 'the killed run left its staging folder');
    const lease = h.run.db.prepare(`SELECT * FROM backup_leases WHERE backup_id = ?`).get(killed.id) as { expires_at: number } | undefined;
    assert.ok(lease && lease.expires_at > Date.now(), 'the dead run still holds an unexpired lease');

    // The next backup runs in the server's long-lived worker (which has run backups before): every
    // run sweeps, not only a process's first.
    const post = await h.api.post('/api/v1/backups').send({ project: 'alpha', kind: 'full' });
    assert.equal(post.status, 202, JSON.stringify(post.body));
    const next = await until('the worker backup finished', async () => {
      const l = await h.api.get('/api/v1/backups?project=alpha');
      return l.body.backups.find(
        (b: { id: number; state: string }) => b.id > killed.id && b.state !== 'running' && b.state !== 'verifying',
      );
    });
    assert.equal(next.state, 'verified', next.reason ?? '');
    assert.equal(next.kind, 'full');
    assert.equal(getBackup(h.run.db, killed.id)!.state, 'aborted');
    assert.match(getBackup(h.run.db, killed.id)!.reason!, /interrupted/);
    assert.equal(fs.existsSync(killed.staging_path!), false);
    assert.deepEqual(stagingEntries(h), []);
  });

  it('retention never removes the newest verified backup and never breaks a chain', async () => {
    const s = service(h);
    const id = w.projectRow('alpha').id;
    const rows = () =>
      h.run.db.prepare(`SELECT * FROM backups WHERE project_id = ? AND state = 'verified' ORDER BY id`).all(id) as BackupRow[];
    // Two more chains, full <- inc and full <- inc <- inc, one backup every 9 days: before each new
    // backup the earlier ones move 9 days into the past (retention runs after each with the defaults).
    // A refused incremental stays an incremental: never retried as a (bigger) full.
    await w.commit('alpha', 'olivia', { 'refused-inc.txt': 'x\n' });
    const tight = service(h, { reserveBytes: 95 * MiB });
    const refused = await tight.runProject('alpha', { kind: 'incremental' });
    assert.equal(refused.backup!.state, 'refused');
    assert.equal(refused.backup!.kind, 'incremental');
    assert.match((await tight.runProject('alpha', { kind: 'incremental', trigger: 'schedule' })).skipped ?? '', /backing off/);
    const after = await s.runProject('alpha', { kind: 'incremental' });
    assert.equal(after.backup!.state, 'verified', after.backup!.reason ?? '');
    assert.equal(after.backup!.kind, 'incremental');
    const made: number[] = [];
    for (const kind of ['full', 'incremental', 'full', 'incremental', 'incremental'] as const) {
      for (const r of rows()) {
        const at = new Date(Date.parse(r.started_at) - 9 * 86_400_000).toISOString();
        h.run.db.prepare(`UPDATE backups SET started_at = ? WHERE id = ?`).run(at, r.id);
      }
      await w.commit('alpha', 'olivia', { [`r-${made.length}.txt`]: `${kind}\n` });
      const r = await s.runProject('alpha', { kind });
      assert.equal(r.backup!.state, 'verified', r.backup!.reason ?? '');
      if (kind === 'incremental') assert.equal(r.backup!.base_id, made[made.length - 1]);
      made.push(r.backup!.id);
    }
    const newest = rows()[rows().length - 1]!;
    assert.equal(newest.id, made[4]);
    assert.ok(rows().length >= 6, `kept by the default rules: ${rows().length}`);
    const expired = applyRetention(h.run.db, { ...h.cfg.backup, keepDaily: 1, keepWeekly: 1, keepMonthly: 1 }, id, h.cfg.backupDir);
    assert.ok(expired.length > 0, `something expired: ${JSON.stringify(rows().map((r) => [r.id, r.kind, r.base_id, r.started_at]))}`);
    const kept = rows();
    assert.ok(
      kept.some((r) => r.id === newest.id),
      'the newest verified backup is kept',
    );
    const keptIds = new Set(kept.map((r) => r.id));
    for (const r of kept) {
      // Every kept backup's chain is whole, back to a full.
      let b: BackupRow | undefined = r;
      while (b && b.kind === 'incremental') {
        assert.ok(b.base_id !== null && keptIds.has(b.base_id), `#${b.id}'s base #${b.base_id} was kept`);
        b = kept.find((x) => x.id === b!.base_id);
      }
      assert.ok(b && b.kind === 'full');
      await testRestore(s, r);
    }
    for (const e of expired) {
      const row = getBackup(h.run.db, e)!;
      assert.equal(row.state, 'expired');
      assert.equal(fs.existsSync(row.path!), false);
    }
    // Even with every count at zero, the newest verified backup and its chain stay.
    applyRetention(h.run.db, { ...h.cfg.backup, keepDaily: 0, keepWeekly: 0, keepMonthly: 0 }, id, h.cfg.backupDir);
    const last = rows();
    assert.ok(last.some((r) => r.id === newest.id));
    assert.ok(last.some((r) => r.kind === 'full'));
    for (const r of last) await testRestore(s, r);
  });

  it('the scheduled test restore checks a rotating sample and catches a damaged backup; a damaged backup is never restored', async () => {
    const s = service(h);
    const verified = h.run.db.prepare(`SELECT * FROM backups WHERE state = 'verified' ORDER BY id`).all() as BackupRow[];
    assert.ok(verified.length >= 3);
    // Damage one byte of a file that belongs to the oldest backup alone (not a shared revision file).
    const victim = verified[0]!;
    const ini = path.join(victim.path!, 'trac', 'conf', 'trac.ini');
    const text = fs.readFileSync(ini);
    text.writeUInt8(text.readUInt8(text.length - 2) ^ 1, text.length - 2);
    fs.writeFileSync(ini, text);
    const alerts: number[] = [];
    const first = await testRestoreSample(s, 2, async (id) => void alerts.push(id));
    assert.deepEqual(
      first.map((r) => r.id),
      verified.slice(0, 2).map((r) => r.id),
    );
    assert.equal(first[0]!.ok, false);
    assert.match(first[0]!.error!, /trac\/conf\/trac\.ini: checksum mismatch/);
    assert.equal(first[1]!.ok, true, first[1]!.error);
    assert.deepEqual(alerts, [victim.id]);
    // The next sample rotates on to backups not tested yet.
    const second = await testRestoreSample(s, 1, async () => {});
    assert.equal(second[0]!.id, verified[2]!.id);
    assert.equal(getBackup(h.run.db, victim.id)!.test_restore_ok, 0);
    const l = await h.api.get('/api/v1/backups?project=alpha');
    assert.equal(l.body.backups.find((b: { id: number }) => b.id === victim.id).testRestoreOk, false);
    // Found while copying, so in the job: it fails with the 409 the restore raised, and its message.
    const r = await restoreThroughApi(h, victim.id, { to: 'from-damaged' });
    assert.equal(r.state, 'failed', JSON.stringify(r));
    assert.equal(r.error!.status, 409, JSON.stringify(r));
    assert.match(r.error!.message, /does not match its checksum; the backup is damaged/);
    assert.match(r.lastError!, /does not match its checksum; the backup is damaged/);
    assert.equal(r.attempts, 1, 'a failed restore is not retried');
    assert.equal((await h.api.get('/api/v1/projects/from-damaged')).status, 404);
    assert.equal(fs.existsSync(path.join(layout(h.cfg).svnRoot, 'from-damaged')), false);
  });

  it('the CLI backs up with progress and lists the catalog; a project owner reads its own backups', async () => {
    const cli = path.join(PROJECT_ROOT, 'dist', 'src', 'cli', 'main.js');
    const env = {
      ...process.env,
      ...backupEnv,
      KEELSON_DATA_DIR: h.cfg.dataDir,
      KEELSON_BACKUP_DIR: h.cfg.backupDir,
      KEELSON_LOG: 'silent',
    };
    const run = spawn(process.execPath, [cli, 'backup', 'run', 'beta', '--full'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    run.stdout.on('data', (b) => (out += b));
    run.stderr.on('data', (b) => (err += b));
    const code = await new Promise((r) => run.once('exit', r));
    assert.equal(code, 0, err);
    assert.match(out, /^beta: backup #\d+ full verified \(.* written, .* s\)/m);
    // Progress lines: phase, bytes done of total, rate, ETA.
    assert.match(err, /beta: copying repository {2}[\d.]+ (B|KiB|MiB) of [\d.]+ (B|KiB|MiB) {2}[\d.]+ (B|KiB|MiB)\/s/);
    const list = JSON.parse(execFileSync(process.execPath, [cli, 'backup', 'list', 'beta'], { env }).toString());
    assert.equal(list.backups[0].project, 'beta');
    assert.equal(list.backups[0].state, 'verified');
    assert.deepEqual(
      list.projects.map((p: { slug: string }) => p.slug),
      ['beta'],
    );
    const own = await h.api.get('/api/v1/projects/beta/backups');
    assert.equal(own.status, 200);
    assert.ok(own.body.backups.every((b: { project: string }) => b.project === 'beta'));
    assert.equal(own.body.volume, undefined);
    assert.equal((await h.api.get('/api/v1/projects/nosuch/backups')).status, 404);
    assert.equal((await h.api.get('/api/v1/backups?project=nosuch')).status, 404);
    assert.equal((await h.api.post('/api/v1/backups').send({ kind: 'weekly' })).status, 400);
  });

  it("Keelson's own database is backed up with SQLite's online backup and passes integrity_check", async () => {
    const r = await h.api.post('/api/v1/backups').send({ control: true });
    assert.equal(r.status, 202);
    const row = await until('control backup', async () => {
      const l = await h.api.get('/api/v1/backups');
      return l.body.backups.find((b: { project: string | null; state: string }) => b.project === null && b.state === 'verified');
    });
    const b = getBackup(h.run.db, row.id)!;
    assert.equal(integrityOk(path.join(b.path!, 'keelson.db')), 'ok');
    const d = new Database(path.join(b.path!, 'keelson.db'), { readonly: true });
    assert.ok((d.prepare(`SELECT count(*) FROM projects`).pluck().get() as number) >= 3);
    d.close();
  });
});

describe('backups on the live data volume (tmpfs)', () => {
  let h: TestHost;
  let w: World;
  let vol: string | undefined;

  before(async () => {
    vol = mountTmpfs('live', '160m');
    h = await startHost('backup-live', {}, { ...backupEnv, KEELSON_DATA_DIR: vol });
    w = new World(h);
    await w.user('olivia');
    await w.project('live', 'olivia');
    await w.commit('live', 'olivia', { 'data.bin': random(24 * MiB) });
  });
  after(async () => {
    await h?.stop();
    unmount(vol);
  });

  it('live SVN commits and API writes keep succeeding during and after a refused or aborted backup; the database stays intact', async () => {
    const v = volumeOf(vol!);
    const s0 = service(h);
    assert.equal((await s0.volume()).sameDeviceAsData, true);
    // Refused: the reserve is doubled on the live volume, so a reserve that would let it fit elsewhere refuses here.
    const reserve = Math.floor((v.freeBytes - 30 * MiB) / 2) + 8 * MiB;
    const refused = await service(h, { reserveBytes: reserve }).runProject('live', { kind: 'full' });
    assert.equal(refused.backup!.state, 'refused');
    assert.match(refused.backup!.reason!, /stricter reserve/);
    assert.equal(refused.backup!.reserve_bytes, reserve * 2);
    assert.deepEqual(stagingEntries(h), []);
    assert.ok((await w.commit('live', 'olivia', { 'after-refusal.txt': 'ok\n' })) > 0);
    const u = await h.api.post('/api/v1/users').send({ name: 'carol', email: 'c@example.com', password: 'a long enough password' });
    assert.equal(u.status, 201);

    // Aborted: another writer eats the volume down to 24 MiB free while the backup runs; the floor is 2 x 20 MiB.
    const s = service(h, { reserveBytes: 20 * MiB });
    const filler = path.join(vol!, 'filler.bin');
    const run = s.runProject('live', { kind: 'full' });
    await soon('staging folder', () => stagingEntries(h).length > 0);
    const commitDuring = w.commit('live', 'olivia', { 'during.txt': 'committed while the backup aborted\n' });
    try {
      fs.writeFileSync(filler, Buffer.alloc(Math.max(0, volumeOf(vol!).freeBytes - 24 * MiB)));
    } catch (e) {
      assert.equal((e as NodeJS.ErrnoException).code, 'ENOSPC');
    }
    const r = await run;
    assert.equal(r.backup!.state, 'refused', r.backup!.reason ?? '');
    assert.match(r.backup!.reason!, /aborted/);
    assert.deepEqual(stagingEntries(h), []);
    assert.ok((await commitDuring) > 0);
    // After: the live service writes on, with the other writer's file still there.
    assert.ok((await w.commit('live', 'olivia', { 'after-abort.txt': 'ok\n' })) > 0);
    const m = await h.api.put('/api/v1/projects/live/members/carol').send({ role: 'developer' });
    assert.equal(m.status, 200, JSON.stringify(m.body));
    await w.settled();
    assert.equal(integrityOk(layout(h.cfg).db), 'ok');
    execFileSync('svnadmin', ['verify', '--quiet', w.repo('live')]);
    fs.rmSync(filler);
    const ok = await service(h, { reserveBytes: 4 * MiB }).runProject('live', { kind: 'full' });
    assert.equal(ok.backup!.state, 'verified', ok.backup!.reason ?? '');
  });

  it('a test restore on the live data volume keeps the stricter reserve', async () => {
    const row = h.run.db
      .prepare(`SELECT * FROM backups WHERE slug = 'live' AND state = 'verified' ORDER BY id DESC LIMIT 1`)
      .get() as BackupRow;
    assert.ok(row);
    const need = needOf(listTree(row.path!)).bytes;
    const f = h.cfg.backup.sameDeviceFactor;
    assert.ok(f > 1);
    // Enough with the plain reserve, not with the stricter one the live volume gets.
    const room = volumeOf(vol!).freeBytes - need;
    const reserve = Math.floor(room / f) + MiB;
    assert.ok(room - 4 * MiB > reserve, `room ${room}, reserve ${reserve}`);
    await assert.rejects(testRestore(service(h, { reserveBytes: reserve }), row), /test restore refused: .*stricter reserve/);
    await testRestore(service(h, { reserveBytes: 4 * MiB }), row);
  });
});

describe('a restore through the API is a job of the worker process: queued, not merged, and recovered after a SIGKILL', () => {
  let h: TestHost;
  let w: World;
  let worker: ChildProcess | undefined;
  let backupId = 0;
  let backupRev = 0;
  const cli = path.join(PROJECT_ROOT, 'dist', 'src', 'cli', 'main.js');

  /** `keelson worker` in its own process (as crash.test.ts runs it), on this host's data directory. */
  function startWorker(): ChildProcess {
    const env = {
      ...process.env,
      ...backupEnv,
      KEELSON_DATA_DIR: h.cfg.dataDir,
      KEELSON_HTTP_PORT: String(h.cfg.httpPort),
      KEELSON_APACHE_PORT: String(h.cfg.apachePort),
      KEELSON_LOG: 'silent',
    };
    return spawn(process.execPath, [cli, 'worker'], { env, stdio: 'ignore' });
  }
  async function stopWorker(signal: NodeJS.Signals): Promise<void> {
    const c = worker;
    worker = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    c.kill(signal);
    await new Promise((r) => c.once('exit', r));
  }
  /** The folders an in-place restore of gamma moved live trees into (either aside root). */
  function asides(): string[] {
    const roots = [path.join(h.cfg.backupDir, '.restore-aside'), path.join(h.cfg.dataDir, 'restore-aside')];
    return roots.flatMap((r) => (fs.existsSync(r) ? fs.readdirSync(r).map((e) => path.join(r, e)) : []));
  }
  const activeRestores = () =>
    h.run.db.prepare(`SELECT count(*) FROM jobs WHERE kind = 'restore' AND state IN ('pending','running')`).pluck().get() as number;

  before(async () => {
    // API and Apache in this process; the worker is a separate process we can stop and kill.
    h = await startHost('backup-job', { worker: false }, backupEnv);
    w = new World(h);
    worker = startWorker();
    await w.user('olivia');
    await w.project('gamma', 'olivia');
    await w.commit('gamma', 'olivia', { 'gamma.txt': 'gamma at the backup\n', 'data.bin': random(8 * MiB) });
    tracWrite(h.cfg.python, w.env('gamma'), 'gamma ticket', 'GammaNotes', 'in the backup');
    const b = await service(h).runProject('gamma', { kind: 'full' });
    assert.equal(b.backup!.state, 'verified', b.backup!.reason ?? '');
    backupId = b.backup!.id;
    backupRev = b.backup!.rev_to!;
    await w.commit('gamma', 'olivia', { 'after.txt': 'after the backup\n' });
    await w.settled();
    await stopWorker('SIGTERM');
  });
  after(async () => {
    await stopWorker('SIGKILL');
    await h?.stop();
  });

  it('queued while no worker runs: pending; a second restore into the same target is 409; restores into two new slugs stay two jobs; the worker runs them', async () => {
    const r = await h.api.post(`/api/v1/backups/${backupId}/restore`).send({ inPlace: true });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const id = r.body.job.id as number;
    assert.deepEqual(r.body, {
      job: { id, kind: 'restore', state: 'pending' },
      status: `/api/v1/jobs/${id}`,
      backupId,
      target: 'gamma',
      mode: 'in-place',
    });
    await new Promise((res) => setTimeout(res, 300));
    const pending = (await h.api.get(`/api/v1/jobs/${id}`)).body as JobView;
    assert.equal(pending.state, 'pending');
    assert.equal(pending.attempts, 0);
    assert.equal(pending.project, 'gamma');
    assert.deepEqual(pending.restore, { backupId, target: 'gamma', mode: 'in-place', startedAt: null });
    assert.equal(pending.result, null);
    assert.equal(pending.finishedAt, null);
    for (const body of [{ inPlace: true }, { inPlace: true, to: 'gamma' }]) {
      const again = await h.api.post(`/api/v1/backups/${backupId}/restore`).send(body);
      assert.equal(again.status, 409, JSON.stringify(again.body));
      assert.equal(again.body.error.message, `a restore into gamma is already pending (job #${id}); wait until it ends`);
    }
    // Into new slugs (jobs without a project): one per slug, never merged into another's.
    const c1 = await h.api.post(`/api/v1/backups/${backupId}/restore`).send({ to: 'gamma-one' });
    assert.equal(c1.status, 202, JSON.stringify(c1.body));
    const c2 = await h.api.post(`/api/v1/backups/${backupId}/restore`).send({ to: 'gamma-two' });
    assert.equal(c2.status, 202, JSON.stringify(c2.body));
    assert.notEqual(c1.body.job.id, c2.body.job.id);
    const dup = await h.api.post(`/api/v1/backups/${backupId}/restore`).send({ to: 'gamma-one', owner: 'olivia' });
    assert.equal(dup.status, 409, JSON.stringify(dup.body));
    assert.match(dup.body.error.message, new RegExp(`a restore into gamma-one is already pending \\(job #${c1.body.job.id}\\)`));
    assert.equal(activeRestores(), 3);

    worker = startWorker();
    const { job, seen } = await followJob(h, id);
    assert.deepEqual(seen, ['pending', 'running', 'done'], JSON.stringify(job));
    assert.deepEqual(job.result, {
      backupId,
      project: 'gamma',
      mode: 'in-place',
      youngestRev: backupRev,
      repoUuid: w.projectRow('gamma').repo_uuid,
    });
    assert.equal(job.attempts, 1);
    for (const [c, slug] of [
      [c1, 'gamma-one'],
      [c2, 'gamma-two'],
    ] as const) {
      const done = (await followJob(h, c.body.job.id)).job;
      assert.equal(done.state, 'done', JSON.stringify(done));
      assert.equal(done.result!.project, slug);
      assert.equal(done.result!.mode, 'new');
      assert.equal(done.result!.youngestRev, backupRev);
    }
    await w.settled();
    assert.equal(w.projectRow('gamma').state, 'active');
    assert.equal(youngestRevision(w.repo('gamma')), backupRev);
    assert.equal(await w.cat('gamma', 'olivia', 'gamma.txt'), 'gamma at the backup\n');
    assert.equal(await w.cat('gamma-two', 'olivia', 'gamma.txt'), 'gamma at the backup\n');
    assert.equal(activeRestores(), 0);
  });

  it('SIGKILL of the worker mid-restore: the job fails with a lastError naming what is left (never stuck running), the project stays suspended with its live trees kept aside; restoring again and resuming recovers it', async () => {
    const liveRev = await w.commit('gamma', 'olivia', { 'live.txt': 'committed after the first restore\n' });
    assert.equal(liveRev, backupRev + 1);
    assert.deepEqual(asides(), []);
    const r = await h.api.post(`/api/v1/backups/${backupId}/restore`).send({ inPlace: true });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const id = r.body.job.id as number;
    await soon('the live repository moved aside', () => asides().some((a) => fs.existsSync(path.join(a, 'svn'))), 120_000);
    const killed = worker!;
    await stopWorker('SIGKILL');
    const aside = asides()[0]!;
    assert.match(path.basename(aside), new RegExp(`^gamma-${w.projectRow('gamma').id}-p${killed.pid}-[0-9a-f]+$`));
    // The dead worker's job still says running until a worker recovers it.
    assert.equal(((await h.api.get(`/api/v1/jobs/${id}`)).body as JobView).state, 'running');

    worker = startWorker();
    const { job } = await followJob(h, id, 60_000);
    assert.equal(job.state, 'failed', JSON.stringify(job));
    assert.equal(job.attempts, 2, 'claimed once more, to be closed, not re-run');
    assert.match(
      job.lastError!,
      new RegExp(`^interrupted: worker [^ ]+:${killed.pid}:[^ ]+ stopped before finishing; a restore is not re-run on its own`),
    );
    assert.match(job.lastError!, /Project gamma is left suspended \(its repository denies everybody\)/);
    assert.ok(job.lastError!.includes(`moved aside are kept in ${aside}:`), job.lastError!);
    assert.deepEqual(job.error, { status: 500, code: 'interrupted', message: job.lastError });
    assert.equal(job.result, null);
    assert.equal(activeRestores(), 0);

    // What the restore-safety rules left: suspended, nobody gets in, the live trees kept and reported.
    assert.equal(w.projectRow('gamma').state, 'suspended');
    const denied = await http(`${h.svnUrl('gamma')}/`, w.creds('olivia'));
    assert.ok(denied.status === 403 || denied.status === 404, `the owner got ${denied.status} from the repository`);
    assert.equal(youngestRevision(path.join(aside, 'svn')), liveRev);
    assert.equal(readRepositoryUuid(path.join(aside, 'svn')), w.projectRow('gamma').repo_uuid);
    assert.deepEqual(service(h).sweep().asides, [aside]);
    assert.deepEqual(
      fs.readdirSync(layout(h.cfg).staging).filter((e) => e.includes(`-p${killed.pid}-`)),
      [],
      "the new worker's start swept the dead restore's staging",
    );

    // The operator restores again (the dead worker's lease does not block it) and resumes the project.
    const again = await restoreThroughApi(h, backupId, { inPlace: true });
    assert.equal(again.state, 'done', JSON.stringify(again));
    assert.equal(again.attempts, 1);
    assert.ok(fs.existsSync(path.join(aside, 'svn')), 'a later restore reports the leftover and leaves it');
    assert.equal((await h.api.post('/api/v1/projects/gamma/resume')).status, 200);
    await w.settled();
    assert.equal(w.projectRow('gamma').state, 'active');
    assert.equal(youngestRevision(w.repo('gamma')), backupRev);
    assert.deepEqual(tracRead(w.env('gamma')).tickets, ['gamma ticket']);
    assert.equal(await w.commit('gamma', 'olivia', { 'after-killed-restore.txt': 'ok\n' }), backupRev + 1);
    fs.rmSync(aside, { recursive: true });
    assert.deepEqual(service(h).sweep().asides, []);
  });
});

import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { migrate } from '../../src/store/db.js';
import { MIGRATIONS } from '../../src/store/migrations.js';
import { claim, complete, enqueue, fail, recoverAbandoned, type Job } from '../../src/store/jobs.js';
import { getJob } from '../../src/store/jobs.js';
import { getRestoreJob, insertRestoreJob, markRestoreStarted, setRestoreResult } from '../../src/store/backups.js';
import { JOB_RESTORE, restoreJobHandler } from '../../src/backup/restore-job.js';
import { BackupService } from '../../src/backup/engine.js';
import { acquireLease } from '../../src/store/leases.js';
import { loadConfig } from '../../src/config.js';

function db() {
  const d = new Database(':memory:');
  migrate(d);
  d.prepare(
    `INSERT INTO projects (id, slug, title, visibility, state, repo_uuid, created_at, updated_at) VALUES (1,'alpha','a','private','suspended','u','t','t')`,
  ).run();
  d.prepare(
    `INSERT INTO backups (id, project_id, slug, repo_uuid, kind, state, started_at) VALUES (7, 1, 'alpha', 'u', 'full', 'verified', 't')`,
  ).run();
  return d;
}
const restore = (d: Database.Database, target: string, projectId: number | null) =>
  insertRestoreJob(d, {
    kind: JOB_RESTORE,
    backupId: 7,
    target,
    mode: projectId === null ? 'new' : 'in-place',
    projectId,
    payload: { backupId: 7 },
  });
const dead = `${os.hostname()}:999999999:x`;

describe('restore jobs in the queue', () => {
  it('one pending or running restore per target; restores are never coalesced (two new slugs are two jobs)', () => {
    const d = db();
    const a = restore(d, 'alpha', 1);
    assert.ok(a.id);
    assert.deepEqual(restore(d, 'alpha', 1), { busy: { id: a.id, state: 'pending' } });
    const c1 = restore(d, 'copy-one', null);
    const c2 = restore(d, 'copy-two', null);
    assert.ok(c1.id && c2.id && c1.id !== c2.id);
    assert.equal(getJob(d, c1.id)!.max_attempts, 1);
    assert.equal(getJob(d, c1.id)!.state, 'pending');
    // Other kinds still coalesce.
    enqueue(d, 'reconcile', 1);
    enqueue(d, 'reconcile', 1);
    assert.equal(d.prepare(`SELECT count(*) FROM jobs WHERE kind = 'reconcile'`).pluck().get(), 1);
    const j = claim(d, 'w')!;
    assert.equal(j.id, a.id);
    assert.deepEqual(restore(d, 'alpha', 1), { busy: { id: a.id, state: 'running' } });
    complete(d, j.id, 'w');
    assert.ok(restore(d, 'alpha', 1).id, 'a finished restore does not block the next');
  });

  it('a failed restore is not retried; one whose worker died goes back to pending (for its handler to close)', () => {
    const d = db();
    const a = restore(d, 'alpha', 1);
    const j = claim(d, 'w')!;
    assert.equal(fail(d, j, 'w', 'boom'), 'failed');
    const b = restore(d, 'alpha', 1);
    claim(d, dead);
    assert.equal(recoverAbandoned(d, 30_000), 1);
    const back = getJob(d, b.id!)!;
    assert.equal(back.state, 'pending');
    assert.match(back.last_error!, /stopped before finishing/);
    assert.notEqual(a.id, b.id);
  });

  it('migration 6 can be applied again (an install re-running migrations from an older version)', () => {
    const d = db();
    restore(d, 'alpha', 1);
    // Migration 6 itself again (later migrations add columns, which SQLite cannot do twice).
    d.exec(MIGRATIONS[5]!);
    assert.equal(d.prepare(`SELECT count(*) FROM restore_jobs`).pluck().get(), 1);
  });

  it('migration 7 (the lease kind) can be applied again; the leases held stay', () => {
    const d = db();
    acquireLease(d, 'project:1', 7, 'restore');
    d.exec(MIGRATIONS[6]!);
    const l = d.prepare(`SELECT * FROM backup_leases`).all() as { scope: string; kind: string }[];
    assert.deepEqual(
      l.map((x) => [x.scope, x.kind]),
      [['project:1', 'backup']],
    );
    acquireLease(d, 'control', 7, 'restore');
    assert.equal(d.prepare(`SELECT kind FROM backup_leases WHERE scope = 'control'`).pluck().get(), 'restore');
  });
});

describe('the restore job handler after an interruption', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keelson-restore-job-'));
  const cfg = loadConfig({ KEELSON_DATA_DIR: dataDir, KEELSON_HTTP_PORT: '0' });
  after(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  const claimAgain = (d: Database.Database, id: number): Job => {
    claim(d, dead);
    recoverAbandoned(d, 30_000);
    const j = claim(d, 'w2')!;
    assert.equal(j.id, id);
    return j;
  };

  it('does not re-run a restore that had started: it fails saying what was left, and the reconcile of an in-place target is queued', async () => {
    const d = db();
    const svc = new BackupService(d, cfg, cfg.backup);
    const run = restoreJobHandler(svc);
    const a = restore(d, 'alpha', 1);
    markRestoreStarted(d, a.id!, new Date().toISOString());
    const j = claimAgain(d, a.id!);
    await assert.rejects(
      run(j, new AbortController().signal),
      /^Error: interrupted: worker .*:999999999:x stopped before finishing; a restore is not re-run on its own\. Project alpha is left suspended \(its repository denies everybody\); nothing live had been moved aside/,
    );
    assert.equal(JSON.parse(getRestoreJob(d, a.id!)!.error!).code, 'interrupted');
    assert.equal(fail(d, j, 'w2', 'interrupted'), 'failed');
    assert.equal(
      d.prepare(`SELECT count(*) FROM jobs WHERE kind = 'reconcile_project' AND project_id = 1 AND state = 'pending'`).pluck().get(),
      1,
    );
  });

  it('to a new slug: fails saying nothing was placed', async () => {
    const d = db();
    const run = restoreJobHandler(new BackupService(d, cfg, cfg.backup));
    const c = restore(d, 'copy', null);
    markRestoreStarted(d, c.id!, new Date().toISOString());
    await assert.rejects(run(claimAgain(d, c.id!), new AbortController().signal), /Nothing was placed: restore to copy again$/);
  });

  it('a restore recorded before its worker died is done, not run again', async () => {
    const d = db();
    const run = restoreJobHandler(new BackupService(d, cfg, cfg.backup));
    const a = restore(d, 'alpha', 1);
    markRestoreStarted(d, a.id!, new Date().toISOString());
    setRestoreResult(d, a.id!, { backupId: 7, project: 'alpha', mode: 'in-place', youngestRev: 3, repoUuid: 'u' });
    const recorded = getRestoreJob(d, a.id!)!;
    const j = claimAgain(d, a.id!);
    // Not run again: a run would need backup #7's files (there are none here) and would mark the
    // restore started anew; not closed as interrupted: that throws and queues a reconcile.
    await run(j, new AbortController().signal);
    assert.deepEqual(getRestoreJob(d, a.id!), recorded, 'the recorded restore is left as it was');
    assert.equal(recorded.error, null);
    assert.deepEqual(JSON.parse(recorded.result!), { backupId: 7, project: 'alpha', mode: 'in-place', youngestRev: 3, repoUuid: 'u' });
    assert.equal(d.prepare(`SELECT count(*) FROM jobs WHERE kind = 'reconcile_project' AND state = 'pending'`).pluck().get(), 0);
    // The worker completes the job as the handler returned: done.
    complete(d, j.id, 'w2');
    assert.equal(getJob(d, a.id!)!.state, 'done');
  });
});

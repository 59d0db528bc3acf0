/**
 * What waits while a restore runs: an in-place restore suspends the project and puts its state back
 * at the end, so suspending, resuming or deleting it meanwhile would be undone (or would open the
 * repository while it is replaced); a restore into a new slug holds that slug from the moment it is
 * queued. Real use cases over a real (in-memory) database, with the restore's real lease.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { migrate } from '../../src/store/db.js';
import { complete, claim } from '../../src/store/jobs.js';
import { insertRestoreJob } from '../../src/store/backups.js';
import * as seed from '../helpers/seed.js';
import { getProject } from '../../src/store/projects.js';
import { getUser } from '../../src/store/users.js';
import { acquireLease, releaseLease, restoreScopeOf, scopeOf } from '../../src/store/leases.js';
import { JOB_RESTORE } from '../../src/backup/restore-job.js';
import { createProject, deleteProject, setSuspended } from '../../src/domain/projects.js';
import { signup } from '../../src/domain/signin.js';
import { noEffects, operator, type Ctx } from '../../src/domain/context.js';
import { backupPort } from '../../src/main/ports.js';
import { loadConfig } from '../../src/config.js';
import { hashPassword } from '../../src/sys/password.js';

// The store takes a computed hash (hashing is the use case's, off the event loop).
const PW_HASH = await hashPassword('a long enough password');

function setup() {
  const db = new Database(':memory:');
  migrate(db);
  const cfg = loadConfig({ KEELSON_DATA_DIR: '/var/tmp/keelson-unused' });
  const ctx: Ctx = { db, cfg, fx: noEffects, backups: backupPort(db, cfg) };
  seed.createUser(db, 'test', { name: 'olive', email: 'olive@example.com', passwordHash: PW_HASH });
  const p = seed.createProject(db, 'test', { slug: 'alpha', title: 'alpha', visibility: 'private', owner: 'olive' });
  db.prepare(`UPDATE projects SET state = 'active' WHERE id = ?`).run(p.id);
  const backup = (state: string) =>
    Number(
      db
        .prepare(`INSERT INTO backups (project_id, slug, repo_uuid, kind, state, started_at) VALUES (?, 'alpha', 'u', 'full', ?, 't')`)
        .run(p.id, state).lastInsertRowid,
    );
  return { db, ctx, p, backup };
}
const op = operator('test');
const owner = { kind: 'user' as const, label: 'user:olive', user: 'olive', admin: false };

describe('while a restore runs', () => {
  it('an in-place restore’s project cannot be suspended, resumed or deleted; a backup’s can', () => {
    const { db, ctx, p, backup } = setup();
    const verified = backup('verified');
    // The restore holds the project's lease, naming the verified backup it reads.
    acquireLease(db, scopeOf(p.id), verified, 'restore');
    const busy = /alpha is being restored from a backup; try again when the restore has ended$/;
    assert.throws(() => setSuspended(ctx, op, 'alpha', true), busy);
    db.prepare(`UPDATE projects SET state = 'suspended' WHERE id = ?`).run(p.id);
    assert.throws(() => setSuspended(ctx, op, 'alpha', false), busy);
    assert.throws(() => deleteProject(ctx, owner, 'alpha'), busy);
    assert.equal(getProject(db, 'alpha')!.state, 'suspended');
    releaseLease(db, scopeOf(p.id), verified);
    // Once it ended: as usual.
    assert.equal(setSuspended(ctx, op, 'alpha', false).state, 'active');
    // A backup holds the same lease under its own row, running, then verified a moment before it
    // lets go: neither stops anything.
    const own = backup('running');
    acquireLease(db, scopeOf(p.id), own, 'backup');
    assert.equal(setSuspended(ctx, op, 'alpha', true).state, 'suspended');
    db.prepare(`UPDATE backups SET state = 'verified' WHERE id = ?`).run(own);
    assert.equal(setSuspended(ctx, op, 'alpha', false).state, 'active');
    releaseLease(db, scopeOf(p.id), own);
  });

  it('a stalled restore whose lease expired still counts while its process lives; so does a running restore job', () => {
    const { db, ctx, p, backup } = setup();
    const b = backup('verified');
    // Taken two minutes ago and never renewed: expired, but its holder (this process) lives.
    acquireLease(db, scopeOf(p.id), b, 'restore', Date.now() - 120_000);
    assert.throws(() => setSuspended(ctx, op, 'alpha', true), /being restored/);
    releaseLease(db, scopeOf(p.id), b);
    // A worker claimed an in-place restore job and has not taken the lease yet.
    const job = insertRestoreJob(db, { kind: JOB_RESTORE, backupId: b, target: 'alpha', mode: 'in-place', projectId: p.id, payload: {} });
    let j = claim(db, 'w')!;
    while (j.kind !== JOB_RESTORE) {
      complete(db, j.id, 'w');
      j = claim(db, 'w')!;
    }
    assert.equal(j.id, job.id);
    assert.throws(() => deleteProject(ctx, owner, 'alpha'), /being restored/);
    complete(db, j.id, 'w');
    deleteProject(ctx, owner, 'alpha');
    assert.equal(getProject(db, 'alpha')!.state, 'deleting');
  });

  it('a restore into a new slug holds the slug from the moment it is queued until it ends', async () => {
    const { db, ctx, backup } = setup();
    const b = backup('verified');
    const job = insertRestoreJob(db, { kind: JOB_RESTORE, backupId: b, target: 'copy', mode: 'new', projectId: null, payload: {} });
    assert.ok(job.id);
    const held = /copy is being restored from a backup; choose another name$/;
    assert.throws(() => createProject(ctx, op, { slug: 'copy', owner: 'olive', visibility: 'private' }), held);
    await assert.rejects(
      () =>
        signup(
          ctx,
          {
            username: 'mallory',
            email: 'm@example.com',
            password: 'a long enough password',
            project: { slug: 'copy', visibility: 'private' },
          },
          '192.0.2.1',
        ),
      held,
    );
    assert.equal(getUser(db, 'mallory'), undefined, 'the refused signup left no user behind');
    // Running: the worker claimed it and holds the restore's lease.
    let j = claim(db, 'w')!;
    // (The project made above queued its reconcile first.)
    while (j.kind !== JOB_RESTORE) {
      complete(db, j.id, 'w');
      j = claim(db, 'w')!;
    }
    assert.equal(j.id, job.id);
    acquireLease(db, restoreScopeOf('copy'), b, 'restore');
    complete(db, j.id, 'w');
    assert.throws(() => createProject(ctx, op, { slug: 'copy', owner: 'olive', visibility: 'private' }), held, 'the lease still holds it');
    releaseLease(db, restoreScopeOf('copy'), b);
    assert.equal(createProject(ctx, op, { slug: 'copy', owner: 'olive', visibility: 'private' }).slug, 'copy');
  });
});

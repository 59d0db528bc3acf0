import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { migrate } from '../../src/store/db.js';
import { MIGRATIONS } from '../../src/store/migrations.js';
import { claim, complete, enqueue, fail, heartbeat, recoverAbandoned } from '../../src/store/jobs.js';
import os from 'node:os';
import { enqueueBackup } from '../../src/backup/schedule.js';

function db() {
  const d = new Database(':memory:');
  migrate(d);
  d.prepare(
    `INSERT INTO projects (id, slug, title, visibility, state, repo_uuid, created_at, updated_at) VALUES (1,'alpha','a','private','active','u','t','t'), (2,'beta','b','private','active','u','t','t')`,
  ).run();
  return d;
}
const count = (d: Database.Database, state: string) =>
  (d.prepare(`SELECT count(*) AS n FROM jobs WHERE state = ?`).get(state) as { n: number }).n;

describe('job queue', () => {
  it('coalesces a burst of changes into one waiting job per project', () => {
    const d = db();
    for (let i = 0; i < 100; i++) enqueue(d, 'reconcile', 1);
    enqueue(d, 'reconcile', 2);
    assert.equal(count(d, 'pending'), 2);
  });

  it('a backup joining a waiting one keeps the stronger of both: a full, and the scheduler’s rules', () => {
    const d = db();
    const payload = () =>
      JSON.parse((d.prepare(`SELECT payload FROM jobs WHERE state = 'pending' AND project_id = 1`).get() as { payload: string }).payload);
    enqueueBackup(d, 1, { kind: 'incremental', trigger: 'api', actor: 'op' });
    enqueueBackup(d, 1, { kind: 'full', trigger: 'schedule', actor: 'scheduler' });
    assert.deepEqual(payload(), { kind: 'full', trigger: 'schedule', actor: 'scheduler', requestedBy: 'op' });
    // An operator's request joining the scheduled one does not turn it into the operator's.
    enqueueBackup(d, 1, { kind: 'incremental', trigger: 'api', actor: 'op2' });
    assert.deepEqual(payload(), { kind: 'full', trigger: 'schedule', actor: 'scheduler', requestedBy: 'op' });
    assert.equal(count(d, 'pending'), 1);
    // Two scheduled ones stay plain scheduled.
    enqueueBackup(d, 2, { kind: 'incremental', trigger: 'schedule', actor: 'scheduler' });
    enqueueBackup(d, 2, { kind: 'incremental', trigger: 'schedule', actor: 'scheduler' });
    assert.deepEqual(JSON.parse(d.prepare(`SELECT payload FROM jobs WHERE state = 'pending' AND project_id = 2`).pluck().get() as string), {
      kind: 'incremental',
      trigger: 'schedule',
      actor: 'scheduler',
    });
    // Keelson's database (no project) is one waiting job too.
    enqueueBackup(d, null, { kind: 'full', trigger: 'api', actor: 'op' });
    enqueueBackup(d, null, { kind: 'full', trigger: 'schedule', actor: 'scheduler' });
    assert.equal(count(d, 'pending'), 3);
    // The operator asked as well: the scheduled run does not wait out a back-off.
    const control = JSON.parse(
      d.prepare(`SELECT payload FROM jobs WHERE state = 'pending' AND project_id IS NULL`).pluck().get() as string,
    );
    assert.deepEqual(control, { kind: 'full', trigger: 'schedule', actor: 'scheduler', requestedBy: 'op' });
  });

  it('a job claimed once is not claimed again, and one project never runs twice at once', () => {
    const d = db();
    enqueue(d, 'reconcile', 1);
    const j = claim(d, 'w1');
    assert.ok(j);
    assert.equal(claim(d, 'w2'), undefined);
    // A change while it runs waits behind it instead of running beside it.
    enqueue(d, 'reconcile', 1);
    assert.equal(claim(d, 'w2'), undefined);
    complete(d, j.id, 'w1');
    assert.ok(claim(d, 'w2'));
  });

  it('retries with backoff, keeps the last error, and gives up after max attempts', () => {
    const d = db();
    enqueue(d, 'reconcile', 1);
    let now = Date.now();
    for (let attempt = 1; attempt <= 8; attempt++) {
      const j = claim(d, 'w', now);
      assert.ok(j, `attempt ${attempt}`);
      assert.equal(j.attempts, attempt);
      const state = fail(d, j, 'w', `boom ${attempt}`, now);
      assert.equal(state, attempt < 8 ? 'pending' : 'failed');
      assert.equal(claim(d, 'w', now), undefined, 'not due before its backoff');
      now += 10 * 60_000;
    }
    const row = d.prepare(`SELECT state, last_error FROM jobs`).get() as { state: string; last_error: string };
    assert.deepEqual(row, { state: 'failed', last_error: 'boom 8' });
  });

  it("gives back a job whose worker's heartbeat went stale", () => {
    const d = db();
    enqueue(d, 'reconcile', 1);
    const t0 = Date.now();
    const j = claim(d, 'otherhost:1:x', t0)!;
    assert.equal(recoverAbandoned(d, 30_000, t0 + 10_000), 0);
    assert.equal(heartbeat(d, j.id, 'otherhost:1:x', t0 + 20_000), true);
    assert.equal(recoverAbandoned(d, 30_000, t0 + 60_000), 1);
    assert.equal(heartbeat(d, j.id, 'otherhost:1:x'), false, 'the old worker no longer owns it');
    assert.ok(claim(d, 'w2', t0 + 60_000));
  });

  it('gives back at once a job claimed by a process on this host that no longer exists', () => {
    const d = db();
    enqueue(d, 'reconcile', 1);
    claim(d, `${os.hostname()}:999999999:x`);
    assert.equal(recoverAbandoned(d, 30_000), 1);
    assert.equal(count(d, 'pending'), 1);
  });

  it('closes a dead job when a newer one already waits for the same project', () => {
    const d = db();
    enqueue(d, 'reconcile', 1);
    claim(d, `${os.hostname()}:999999999:x`);
    enqueue(d, 'reconcile', 1);
    assert.equal(recoverAbandoned(d, 30_000), 1);
    assert.equal(count(d, 'pending'), 1);
    assert.equal(count(d, 'failed'), 1);
  });
});

describe('migrations', () => {
  it('apply once, record the version, and refuse a newer database', () => {
    const d = new Database(':memory:');
    const n = MIGRATIONS.length;
    assert.ok(n >= 1);
    assert.equal(migrate(d), n);
    assert.equal(d.pragma('user_version', { simple: true }), n);
    assert.equal(migrate(d), n);
    d.pragma('user_version = 99');
    assert.throws(() => migrate(d), /newer than this Keelson knows/);
  });
});

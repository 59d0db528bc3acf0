import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import Database from 'better-sqlite3';
import { http, layout, startHost, until, type TestHost } from '../helpers/host.js';
import { fixtures } from '../helpers/fixtures.js';

/**
 * The Trac helper isolates calls (issue 16, item 5): provisioning runs on a pool of helper
 * processes that each run one call, and the commit feed has a helper of its own. A call stuck in
 * Trac (here the helper's `sleep` op) is killed at its timeout and fails alone: a project being
 * provisioned meanwhile becomes active without a failed attempt, and commits still reach Trac.
 */
describe('the Trac helper: a call that times out fails alone', () => {
  let h: TestHost;
  let f: ReturnType<typeof fixtures>;
  const jobsOf = (slug: string) =>
    h.run.db
      .prepare(`SELECT j.state, j.attempts, j.last_error FROM jobs j JOIN projects p ON p.id = j.project_id WHERE p.slug = ? ORDER BY j.id`)
      .all(slug) as { state: string; attempts: number; last_error: string | null }[];
  const lastError = (slug: string) =>
    h.run.db.prepare(`SELECT last_error FROM projects WHERE slug = ? AND state <> 'deleted'`).pluck().get(slug) as string | null;
  /** Settles to the error, so a rejection is never left unhandled while the test goes on. */
  const outcome = (p: Promise<unknown>) => {
    const o: { done: boolean; error?: Error; at?: number } = { done: false };
    const settled = p.then(
      () => Object.assign(o, { done: true, at: Date.now() }),
      (e: Error) => Object.assign(o, { done: true, error: e, at: Date.now() }),
    );
    return { o, settled };
  };
  const createProject = async (slug: string) => {
    const r = await h.api.post('/api/v1/projects').send({ slug, owner: 'olga', visibility: 'private', title: `Project ${slug}` });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  };
  const active = (slug: string, ms: number) =>
    until(`${slug} active`, async () => (await h.api.get(`/api/v1/projects/${slug}`)).body.state === 'active', ms);
  const changesetInTrac = (slug: string, rev: number, text: string, ms = 15_000) =>
    until(
      `changeset ${rev} of ${slug} in Trac`,
      async () => {
        const r = await http(`${h.tracUrl(slug)}/changeset/${rev}`, f.creds('olga'));
        return r.status === 200 && r.body.includes(text);
      },
      ms,
    );

  before(async () => {
    h = await startHost('trac-helper');
    f = fixtures(h);
    await f.user('olga');
    await f.project('alpha', 'olga');
  });
  after(async () => {
    await h?.stop();
  });

  it('a helper call past its timeout while another project provisions: the call fails, the project becomes active at its first attempt', async () => {
    const t0 = Date.now();
    const hung = outcome(h.run.reconciler.trac.call('sleep', { seconds: 20 }, 1000));
    await createProject('beta');
    await active('beta', 15_000);
    await hung.settled;
    assert.match(String(hung.o.error), /sleep did not answer within 1000 ms/);
    assert.ok(hung.o.at! - t0 < 5000, `the timed-out call failed after ${hung.o.at! - t0} ms`);
    // Well before the hung call would have ended (20 s), and with no failed attempt on the way.
    assert.ok(Date.now() - t0 < 15_000, `beta took ${Date.now() - t0} ms`);
    const jobs = await until('beta jobs done', () => {
      const js = jobsOf('beta');
      return js.length && js.every((j) => j.state !== 'pending' && j.state !== 'running') ? js : undefined;
    });
    for (const j of jobs!) assert.deepEqual([j.state, j.attempts, j.last_error], ['done', 1, null], JSON.stringify(jobs));
    assert.equal(lastError('beta'), null);
    // Its layout commit (revision 1) reached Trac through the feed.
    await changesetInTrac('beta', 1, 'Standard layout');
    // The pool carries on: the killed process was replaced.
    const ping = await h.run.reconciler.trac.call<{ trac_version: string }>('ping', {}, 10_000);
    assert.ok(ping.trac_version);
  });

  it('while provisioning calls hang, another project provisions and commits still reach Trac', async () => {
    const trac = h.run.reconciler.trac;
    const t0 = Date.now();
    // One provisioning process stuck in Trac; the pool's other one provisions gamma.
    const hung1 = outcome(trac.call('sleep', { seconds: 20 }, 12_000));
    await createProject('gamma');
    await active('gamma', 10_000);
    assert.equal(hung1.o.done, false, 'gamma became active only after the hung call ended');
    assert.equal(lastError('gamma'), null);
    // Both provisioning processes stuck now: the commit feed has a helper of its own.
    const hung2 = outcome(trac.call('sleep', { seconds: 20 }, 12_000));
    const ci = await f.commit('alpha', 'olga', { 'feed.txt': 'the feed goes on\n' }, 'trunk', 'feed goes on while the helper hangs');
    assert.equal(ci.code, 0, ci.stderr);
    assert.match(ci.stdout, /Committed revision 2\./);
    await changesetInTrac('alpha', 2, 'feed goes on while the helper hangs', 10_000);
    await changesetInTrac('gamma', 1, 'Standard layout', 5_000);
    assert.equal(hung1.o.done || hung2.o.done, false, 'the commit reached Trac only after the hung calls ended');
    assert.ok(Date.now() - t0 < 12_000);
    await Promise.all([hung1.settled, hung2.settled]);
    for (const o of [hung1.o, hung2.o]) assert.match(String(o.error), /sleep did not answer within 12000 ms/);
    assert.equal(lastError('alpha'), null);
    assert.ok((await trac.call<{ trac_version: string }>('ping', {}, 10_000)).trac_version);
  });

  it("the commit feed: one project's Trac stuck on its database does not hold up another project's commits", async () => {
    await f.project('delta', 'olga');
    // Another process holds delta's trac.db exclusively: Trac's changeset_added for delta blocks
    // on it (SQLite's busy timeout) while the feed delivers alpha's commit.
    const db = new Database(path.join(layout(h.cfg).tracRoot, 'delta', 'db', 'trac.db'));
    db.exec('BEGIN EXCLUSIVE');
    try {
      const d = await f.commit('delta', 'olga', { 'd.txt': 'd\n' }, 'trunk', 'delta while locked');
      assert.equal(d.code, 0, d.stderr);
      const t0 = Date.now();
      const a = await f.commit('alpha', 'olga', { 'a.txt': 'a\n' }, 'trunk', 'alpha goes on');
      assert.equal(a.code, 0, a.stderr);
      await changesetInTrac('alpha', 3, 'alpha goes on', 8_000);
      assert.ok(Date.now() - t0 < 8_000);
      // Control: delta's commit has not reached its Trac while its database is held.
      const r = await http(`${h.tracUrl('delta')}/changeset/2`, f.creds('olga'));
      assert.ok(!r.body.includes('delta while locked'), 'the lock did not hold delta up, so this test proves nothing');
    } finally {
      db.exec('ROLLBACK');
      db.close();
    }
    await changesetInTrac('delta', 2, 'delta while locked', 60_000);
  });
});

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { PROJECT_ROOT } from '../../src/paths.js';
import { readRepositoryUuid } from '../../src/provision/svn.js';
import { http, layout, startHost, svn, tree, until, type TestHost } from '../helpers/host.js';

/** Stop the worker in the middle of provisioning: killed, the next worker finishes cleanly; terminated, it finishes first. */
describe('a worker stopped mid-provisioning (SIGKILL, SIGTERM)', () => {
  let h: TestHost;
  let worker: ChildProcess | undefined;
  let token = '';

  function startWorker(): ChildProcess {
    const env = {
      ...process.env,
      KEELSON_DATA_DIR: h.cfg.dataDir,
      KEELSON_HTTP_PORT: String(h.cfg.httpPort),
      KEELSON_APACHE_PORT: String(h.cfg.apachePort),
      KEELSON_LOG: 'silent',
    };
    return spawn(process.execPath, [path.join(PROJECT_ROOT, 'dist', 'src', 'cli', 'main.js'), 'worker'], { env, stdio: 'ignore' });
  }
  const jobState = (slug: string) =>
    (
      h.run.db
        .prepare(`SELECT j.state FROM jobs j JOIN projects p ON p.id = j.project_id WHERE p.slug = ? ORDER BY j.id DESC LIMIT 1`)
        .get(slug) as { state: string } | undefined
    )?.state;

  before(async () => {
    // API and Apache in this process; the worker is a separate process we can kill.
    h = await startHost('crash', { worker: false });
    const r = await h.api.post('/api/v1/users').send({ name: 'kim', email: 'k@example.com', password: 'a long enough password' });
    token = r.body.accessToken;
  });
  after(async () => {
    worker?.kill('SIGKILL');
    await h?.stop();
  });

  it('ends active with no half-made repository or Trac environment anywhere', async () => {
    const delays = [0, 20, 60, 120, 200];
    const slugs = delays.map((_, i) => `crash${i}`);
    let killedMidway = 0;
    for (const [i, slug] of slugs.entries()) {
      worker = startWorker();
      const w = worker;
      const r = await h.api.post('/api/v1/projects').send({ slug, owner: 'kim' });
      assert.equal(r.status, 201);
      await until(`${slug} claimed`, () => jobState(slug) === 'running' || jobState(slug) === 'done', 30_000);
      await new Promise((res) => setTimeout(res, delays[i]));
      w.kill('SIGKILL');
      await new Promise((res) => w.once('exit', res));
      const state = (await h.api.get(`/api/v1/projects/${slug}`)).body.state;
      if (state === 'provisioning') killedMidway++;
    }
    assert.ok(killedMidway >= 2, `only ${killedMidway} kills landed mid-provisioning`);

    worker = startWorker();
    for (const slug of slugs) {
      await until(`${slug} active`, async () => (await h.api.get(`/api/v1/projects/${slug}`)).body.state === 'active', 60_000);
    }
    const l = layout(h.cfg);
    assert.deepEqual(tree(l.staging), [], 'staging swept');
    assert.deepEqual(fs.readdirSync(l.svnRoot).sort(), [...slugs].sort());
    assert.deepEqual(fs.readdirSync(l.tracRoot).sort(), [...slugs].sort());
    for (const slug of slugs) {
      const p = h.run.db.prepare(`SELECT repo_uuid FROM projects WHERE slug = ?`).get(slug) as { repo_uuid: string };
      assert.equal(readRepositoryUuid(path.join(l.svnRoot, slug)), p.repo_uuid);
      const ls = await svn(['ls', `${h.svnUrl(slug)}`], { user: 'kim', password: token });
      assert.equal(ls.code, 0, ls.stderr);
      assert.deepEqual(ls.stdout.split('\n').filter(Boolean).sort(), ['branches/', 'tags/', 'trunk/']);
      assert.equal((await http(`${h.tracUrl(slug)}/browser`, { user: 'kim', password: token })).status, 200);
    }
  });

  it('SIGTERM lets the job in hand finish and claims nothing new', async () => {
    worker?.kill('SIGKILL');
    worker = startWorker();
    const w = worker;
    const r = await h.api.post('/api/v1/projects').send({ slug: 'graceful', owner: 'kim' });
    assert.equal(r.status, 201);
    await until('graceful claimed', () => jobState('graceful') === 'running', 30_000);
    w.kill('SIGTERM');
    // While stopping, a new project must not be picked up by this worker.
    const late = await h.api.post('/api/v1/projects').send({ slug: 'after-term', owner: 'kim' });
    assert.equal(late.status, 201, JSON.stringify(late.body));
    // Else "after-term stays pending" below would hold because nobody was left to claim it.
    assert.equal(w.exitCode, null, 'the worker was still stopping when the new job arrived');
    assert.equal(w.signalCode, null);
    const code = await new Promise<number | null>((res) => w.once('exit', (c) => res(c)));
    assert.equal(code, 0);
    assert.equal((await h.api.get('/api/v1/projects/graceful')).body.state, 'active');
    assert.equal(jobState('graceful'), 'done');
    assert.equal(jobState('after-term'), 'pending');
    assert.equal((await h.api.get('/api/v1/projects/after-term')).body.state, 'provisioning');
  });
});

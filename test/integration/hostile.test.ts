import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { layout, startHost, tree, until, type TestHost } from '../helpers/host.js';

const HOSTILE: [string, unknown][] = [
  ['dot-dot', '../x'],
  ['slash', 'x/y'],
  ['encoded slash', '%2F'],
  ['uppercase', 'Foo'],
  ['leading dash', '-x'],
  ['reserved svn', 'svn'],
  ['reserved api', 'api'],
  ['bracket', 'a]b'],
  ['newline', 'ab\ncd'],
  ['200 characters', 'a'.repeat(200)],
  ['non-ASCII', 'héllo'],
  ['__proto__', '__proto__'],
  ['comma', 'a,b'],
  ['equals', 'a=b'],
  ['space', 'a b'],
  ['empty', ''],
  ['number', 42],
  ['object', { toString: 'x' }],
];

describe('hostile names are refused at the edge and nothing reaches the disk', () => {
  let h: TestHost;
  let before0: string[];
  /** The last job id once project alpha is provisioned: refused requests must queue none after it. */
  let lastJob = 0;
  const served = () => {
    const l = layout(h.cfg);
    return [...tree(l.svnRoot), ...tree(l.tracRoot), ...tree(l.staging)];
  };

  before(async () => {
    h = await startHost('hostile');
    const r = await h.api.post('/api/v1/users').send({ name: 'owner1', email: 'o@example.com', password: 'a long enough password' });
    assert.equal(r.status, 201);
    // A real project, so a member route passes its project check and reaches the :user parameter.
    const p = await h.api.post('/api/v1/projects').send({ slug: 'alpha', owner: 'owner1' });
    assert.equal(p.status, 201, JSON.stringify(p.body));
    await until('alpha active', async () => (await h.api.get('/api/v1/projects/alpha')).body.state === 'active', 30_000);
    await until('queue empty', async () => (await h.api.get('/api/v1/health')).body.jobsQueued === 0);
    lastJob = h.run.db.prepare(`SELECT ifnull(max(id), 0) FROM jobs`).pluck().get() as number;
    before0 = served();
  });
  after(async () => {
    await h?.stop();
  });

  for (const [label, name] of HOSTILE) {
    it(`project slug: ${label}`, async () => {
      const r = await h.api.post('/api/v1/projects').send({ slug: name, owner: 'owner1' });
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.error.code, 'invalid_input');
      assert.match(r.body.error.message, /^slug: /);
    });
    it(`user name: ${label}`, async () => {
      const r = await h.api.post('/api/v1/users').send({ name, email: 'x@example.com', password: 'a long enough password' });
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.match(r.body.error.message, /^name: /);
    });
    if (typeof name === 'string' && name !== '') {
      it(`in a URL: ${label}`, async () => {
        const r = await h.api.put(`/api/v1/projects/alpha/members/${encodeURIComponent(name)}`).send({ role: 'developer' });
        assert.ok([400, 404].includes(r.status), `${r.status} ${JSON.stringify(r.body)}`);
        // Project alpha exists: the refusal is the user name's, not the project's.
        assert.equal(r.status, 400, JSON.stringify(r.body));
        assert.equal(r.body.error.code, 'invalid_input');
        assert.match(r.body.error.message, /^user: /);
        const g = await h.api.get(`/api/v1/projects/${encodeURIComponent(name)}`);
        assert.ok([400, 404].includes(g.status), `${g.status}`);
        // Looked up as sent (no folding or trimming onto alpha or another project), and found nothing.
        assert.equal(g.body.slug, undefined, JSON.stringify(g.body));
        assert.ok(['invalid_input', 'not_found'].includes(g.body.error?.code), JSON.stringify(g.body));
        if (g.status === 404) assert.equal(g.body.error.message, `no project ${JSON.stringify(name)}`);
      });
    }
  }

  it('bad bodies are 4xx with a message, never 500', async () => {
    const cases: [string, object | string][] = [
      ['missing owner', { slug: 'okslug' }],
      ['bad visibility', { slug: 'okslug', owner: 'owner1', visibility: 'secret' }],
      ['unknown field', { slug: 'okslug', owner: 'owner1', admin: true }],
      ['title with newline', { slug: 'okslug', owner: 'owner1', title: 'a\n[x]' }],
      ['unknown owner', { slug: 'okslug', owner: 'nobody1' }],
    ];
    for (const [label, body] of cases) {
      const r = await h.api.post('/api/v1/projects').send(body);
      assert.equal(r.status, 400, `${label}: ${JSON.stringify(r.body)}`);
      assert.ok(r.body.error.message.length > 0);
    }
    const bad = await h.api.post('/api/v1/projects').set('content-type', 'application/json').send('{"slug": ');
    assert.equal(bad.status, 400);
  });

  it('no token is 401, duplicates are 409', async () => {
    const r = await fetch(`${h.run.url}/api/v1/projects`);
    assert.equal(r.status, 401);
    assert.equal((await r.json()).error.code, 'unauthenticated');
    const dup = await h.api.post('/api/v1/users').send({ name: 'owner1', email: 'o@example.com', password: 'a long enough password' });
    assert.equal(dup.status, 409);
  });

  // (Runs last in this describe, after every refused request above.)
  it('not a single file was created for any refused request', async () => {
    assert.deepEqual(served(), before0);
    const jobs = h.run.db.prepare(`SELECT count(*) AS n FROM jobs WHERE kind = 'reconcile_project' AND id > ?`).get(lastJob) as {
      n: number;
    };
    assert.equal(jobs.n, 0);
    // Alpha's membership is as it was made: no hostile name got in.
    assert.deepEqual(
      (await h.api.get('/api/v1/projects/alpha')).body.members.map((m: { user: string }) => m.user),
      ['owner1'],
    );
  });
});

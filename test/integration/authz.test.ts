import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { http, startHost, svn, until, type TestHost } from '../helpers/host.js';
import { fixtures } from '../helpers/fixtures.js';
import { readAccess } from '../../src/store/permissions.js';
import { renderAuthz, renderTracPermissions } from '../../src/authz/render.js';
import { getProject } from '../../src/store/projects.js';
import { setProjectState } from '../helpers/seed.js';

/**
 * Issue 3 on the real stack: path rules enforced by mod_authz_svn and agreed by Trac's source
 * browser, history and revert, coalesced ordered publishing, Trac permissions equal to the
 * roles, and credentials changes effective on the next request.
 */
describe('authz engine', () => {
  let h: TestHost;
  let f: ReturnType<typeof fixtures>;
  const authzFile = (slug: string) => path.join(h.run.reconciler.repoDir(slug), 'conf', 'authz');
  const can = async (slug: string, u: string | undefined, p: string) =>
    (await http(`${h.svnUrl(slug)}${p}`, u ? f.creds(u) : undefined)).status;
  const browse = async (slug: string, u: string, p: string) => (await http(`${h.tracUrl(slug)}/browser${p}`, f.creds(u))).status;

  before(async () => {
    h = await startHost('authz');
    f = fixtures(h);
    for (const u of ['olivia', 'dev', 'sec', 'vic', 'nora', 'burst']) await f.user(u);
    await f.project('rules', 'olivia');
    await f.setRole('rules', 'dev', 'developer');
    await f.setRole('rules', 'sec', 'developer');
    await f.setRole('rules', 'vic', 'viewer');
    const c = await f.commit('rules', 'olivia', { 'secret/plan.txt': 'the plan\n', README: 'hello\n' });
    assert.equal(c.code, 0, c.stderr);
    await f.published('rules');
  });
  after(async () => {
    await h?.stop();
  });

  it("path rules: SVN and Trac's source browser agree, for every role", async () => {
    const before = (await h.api.get('/api/v1/projects/rules/authz')).body.version;
    const r = await h.api.put('/api/v1/projects/rules/path-rules').send({
      rules: [
        { path: '/trunk/secret', subject: '*', access: '' },
        { path: '/trunk/secret', subject: '@owner', access: 'rw' },
        { path: '/trunk/secret', subject: 'sec', access: 'rw' },
        { path: '/tags', subject: '@developer', access: 'r' },
      ],
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.version, before + 1);
    await f.published('rules');
    const secret = '/trunk/secret/plan.txt';
    assert.equal(await can('rules', 'olivia', secret), 200);
    assert.equal(await can('rules', 'sec', secret), 200);
    assert.equal(await can('rules', 'dev', secret), 403);
    assert.equal(await can('rules', 'vic', secret), 403);
    assert.equal(await can('rules', 'dev', '/trunk/README'), 200);
    assert.equal(await can('rules', 'vic', '/trunk/README'), 200);
    // Trac reads the same file through AuthzSourcePolicy.
    await until('Trac sees rev 2', async () => (await browse('rules', 'olivia', '/trunk/secret')) === 200);
    assert.equal(await browse('rules', 'sec', '/trunk/secret'), 200);
    assert.equal(await browse('rules', 'dev', '/trunk/secret'), 403);
    assert.equal(await browse('rules', 'vic', '/trunk/secret/plan.txt'), 403);
    assert.equal(await browse('rules', 'dev', '/trunk/README'), 200);
    // /tags is read-only for developers: a developer's copy there is refused, the owner's is not.
    const tag = (u: string, name: string) =>
      svn(['copy', '-m', 'tag', `${h.svnUrl('rules')}/trunk/README`, `${h.svnUrl('rules')}/tags/${name}`], f.creds(u));
    const refused = await tag('dev', 'dev-1');
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /403|Forbidden|authoriz/i);
    assert.equal((await tag('olivia', 'rel-1')).code, 0);
    assert.equal(await can('rules', 'dev', '/tags/rel-1'), 200);
    // And a developer still commits on trunk outside the secret folder.
    assert.equal((await f.commit('rules', 'dev', { 'dev.txt': 'x\n' })).code, 0);
  });

  it('bad rules are refused naming the field; nothing is published', async () => {
    const file = fs.readFileSync(authzFile('rules'), 'utf8');
    const v = (await h.api.get('/api/v1/projects/rules/authz')).body.version;
    const bad: [object, RegExp][] = [
      [{ path: '/trunk/../x', subject: '*', access: '' }, /rules\.0\.path/],
      [{ path: '/trunk/', subject: '*', access: '' }, /rules\.0\.path/],
      [{ path: '/a]b', subject: '*', access: '' }, /rules\.0\.path/],
      [{ path: '/a\n[/]', subject: '*', access: '' }, /rules\.0\.path/],
      [{ path: '/Trunk', subject: '*', access: '' }, /rules\.0\.path/],
      [{ path: '/~x', subject: '*', access: '' }, /rules\.0\.path/],
      [{ path: '/x', subject: '~dev', access: 'r' }, /rules\.0\.subject/],
      [{ path: '/x', subject: '@admins', access: 'r' }, /rules\.0\.subject/],
      [{ path: '/x', subject: 'nora', access: 'r' }, /not a member/],
      [{ path: '/x', subject: 'dev', access: 'w' }, /rules\.0\.access/],
    ];
    for (const [rule, why] of bad) {
      const r = await h.api.put('/api/v1/projects/rules/path-rules').send({ rules: [rule] });
      assert.equal(r.status, 400, JSON.stringify(rule));
      assert.match(r.body.error.message, why);
    }
    const dup = await h.api.put('/api/v1/projects/rules/path-rules').send({
      rules: [
        { path: '/x', subject: 'dev', access: 'r' },
        { path: '/x', subject: 'dev', access: 'rw' },
      ],
    });
    assert.equal(dup.status, 400);
    assert.equal((await h.api.get('/api/v1/projects/rules/authz')).body.version, v);
    assert.equal(fs.readFileSync(authzFile('rules'), 'utf8'), file);
    // A viewer reads the rules but cannot change them (an admin token acts as operator here, so
    // the role check itself is covered by the web tests); anonymous gets 401.
    const anon = await fetch(`${h.run.url}/api/v1/projects/rules/path-rules`);
    assert.equal(anon.status, 401);
  });

  it('history lists who changed what; a revert republishes the earlier state', async () => {
    const hist = (await h.api.get('/api/v1/projects/rules/permission-history')).body.versions as {
      version: number;
      action: string;
      summary: string;
      actor: string;
    }[];
    assert.deepEqual(hist.map((x) => x.action).reverse(), ['project.create', 'member.set', 'member.set', 'member.set', 'paths.set']);
    assert.match(hist[0]!.summary, /\/trunk\/secret: \*=none/);
    assert.equal(hist[0]!.actor, 'token:test');
    const beforeRules = hist.find((x) => x.action === 'member.set')!.version; // the newest membership change
    const r = await h.api.post(`/api/v1/projects/rules/permission-history/${beforeRules}/revert`);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    await f.published('rules');
    assert.equal(await can('rules', 'dev', '/trunk/secret/plan.txt'), 200, 'the rules are gone');
    assert.deepEqual((await h.api.get('/api/v1/projects/rules/path-rules')).body.rules, []);
    const now = (await h.api.get('/api/v1/projects/rules/permission-history')).body.versions[0];
    assert.equal(now.action, 'revert');
    assert.match(now.summary, new RegExp(`reverted to version ${beforeRules}`));
    assert.equal((await h.api.post('/api/v1/projects/rules/permission-history/999/revert')).status, 404);
  });

  it('a burst of 100 changes publishes a few times, in order, ending at the last state', async () => {
    const p = getProject(h.run.db, 'rules')!;
    const lastId = h.run.db.prepare(`SELECT ifnull(max(id), 0) FROM authz_publishes`).pluck().get() as number;
    const roles = ['viewer', 'developer'];
    const burst = await Promise.all(
      Array.from({ length: 100 }, (_, i) => h.api.put('/api/v1/projects/rules/members/burst').send({ role: roles[i % 2] })),
    );
    assert.deepEqual(
      burst.map((r) => r.status),
      Array(100).fill(200),
      'every change of the burst was taken',
    );
    // The requests raced; the database's last committed state is the one that must end up on disk.
    const st = await f.published('rules');
    const rows = h.run.db
      .prepare(`SELECT version, changed FROM authz_publishes WHERE project_id = ? AND id > ? ORDER BY id`)
      .all(p.id, lastId) as { version: number; changed: number }[];
    assert.ok(rows.length >= 1 && rows.length <= 25, `${rows.length} publishes for 100 changes`);
    for (let i = 1; i < rows.length; i++) assert.ok(rows[i]!.version > rows[i - 1]!.version, 'never an older version after a newer one');
    const snap = readAccess(h.run.db, p.id)!;
    assert.equal(st.published.version, snap.version);
    assert.equal(fs.readFileSync(authzFile('rules'), 'utf8'), renderAuthz(snap.access));
    assert.match(st.published.checksum, /^[0-9a-f]{64}$/);
  });

  it("Trac's permission table equals the roles after every change", async () => {
    await until('queue empty', async () => (await h.api.get('/api/v1/health')).body.jobsQueued === 0);
    const check = async () => {
      const p = getProject(h.run.db, 'rules')!;
      const want = renderTracPermissions(readAccess(h.run.db, p.id)!.access);
      const got = await h.run.reconciler.trac.call<[string, string][]>('list_perms', { path: h.run.reconciler.envDir('rules') });
      assert.deepEqual(got, want);
      return got;
    };
    const has = (perms: [string, string][], user: string, action: string) => perms.some(([u, a]) => u === user && a === action);
    const first = await check();
    assert.ok(has(first, 'vic', '@viewer') && first.some(([u]) => u === 'burst') && !has(first, 'anonymous', '@viewer'));
    await f.setRole('rules', 'vic', 'developer');
    const del = await h.api.delete('/api/v1/projects/rules/members/burst');
    assert.equal(del.status, 200, JSON.stringify(del.body));
    const pub = await h.api.patch('/api/v1/projects/rules').send({ visibility: 'public' });
    assert.equal(pub.status, 200, JSON.stringify(pub.body));
    await f.published('rules');
    await until('queue empty', async () => (await h.api.get('/api/v1/health')).body.jobsQueued === 0);
    // Each change is in Trac's table (not only "Trac equals the database").
    const open = await check();
    assert.ok(has(open, 'anonymous', '@viewer'), 'public: anonymous is a viewer');
    assert.ok(has(open, 'vic', '@developer') && !has(open, 'vic', '@viewer'), 'vic is a developer');
    assert.ok(!open.some(([u]) => u === 'burst'), 'burst was removed');
    const priv = await h.api.patch('/api/v1/projects/rules').send({ visibility: 'private' });
    assert.equal(priv.status, 200, JSON.stringify(priv.body));
    await f.published('rules');
    await until('queue empty', async () => (await h.api.get('/api/v1/health')).body.jobsQueued === 0);
    const closed = await check();
    assert.ok(!has(closed, 'anonymous', '@viewer'), 'private again: anonymous is not a viewer');
  });

  it('a suspended project grants nothing; resuming restores access', async () => {
    const p = getProject(h.run.db, 'rules')!;
    setProjectState(h.run.db, p.id, 'suspended', 'test');
    h.run.worker?.wake();
    await f.published('rules');
    await until('queue empty', async () => (await h.api.get('/api/v1/health')).body.jobsQueued === 0);
    assert.equal(await can('rules', 'olivia', '/'), 403);
    // Trac shows a suspended project to nobody: the same answer as for a project that does not exist.
    assert.equal(await browse('rules', 'olivia', '/'), 404);
    setProjectState(h.run.db, p.id, 'active', 'test');
    h.run.worker?.wake();
    await f.published('rules');
    assert.equal(await can('rules', 'olivia', '/'), 200);
    // Trac too, once its permissions are written back.
    await until('queue empty', async () => (await h.api.get('/api/v1/health')).body.jobsQueued === 0);
    assert.equal(await browse('rules', 'olivia', '/'), 200);
  });

  it('a rotated token, a disabled user: effective on the very next request', async () => {
    assert.equal(await can('rules', 'vic', '/'), 200);
    const old = f.pw.vic!;
    const r = await h.api.post('/api/v1/users/vic/access-token');
    assert.equal(r.status, 201);
    assert.equal((await http(`${h.svnUrl('rules')}/`, { user: 'vic', password: old })).status, 401);
    f.pw.vic = r.body.accessToken;
    assert.equal(await can('rules', 'vic', '/'), 200);
    assert.equal((await h.api.patch('/api/v1/users/vic').send({ disabled: true })).status, 200);
    assert.equal(await can('rules', 'vic', '/'), 401);
    assert.equal((await h.api.patch('/api/v1/users/vic').send({ disabled: false })).status, 200);
    await f.published('rules');
    assert.equal(await can('rules', 'vic', '/'), 200);
    // The only owner of a project cannot be disabled (nobody could manage it).
    assert.equal((await h.api.patch('/api/v1/users/olivia').send({ disabled: true })).status, 409);
  });
});

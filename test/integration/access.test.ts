import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { PROJECT_ROOT } from '../../src/paths.js';
import { http, layout, startHost, svn, tree, until, type TestHost } from '../helpers/host.js';
import { fixtures } from '../helpers/fixtures.js';
import { apachePaths } from '../../src/files/apache/config.js';

/**
 * The first complete path on the real stack: Apache + mod_dav_svn + mod_authz_svn + mod_wsgi +
 * Trac, driven with the real svn client and HTTP.
 */
describe('a project on the real stack', () => {
  let h: TestHost;
  let f: ReturnType<typeof fixtures>;
  const creds = (user: string) => f.creds(user);
  const user = (name: string) => f.user(name);
  const project = (slug: string, owner: string, visibility = 'private') => f.project(slug, owner, visibility);
  const setRole = (slug: string, u: string, role: string) => f.setRole(slug, u, role);
  async function settled() {
    await until('queue empty', async () => (await h.api.get('/api/v1/health')).body.jobsQueued === 0);
  }
  async function commitAs(slug: string, u: string, file: string): Promise<{ code: number; stderr: string; rev?: number }> {
    const ci = await f.commit(slug, u, { [file]: `written by ${u}\n` }, 'trunk', `add ${file} by ${u}`);
    const m = ci.stdout.match(/Committed revision (\d+)/);
    return { code: ci.code, stderr: ci.stderr, rev: m ? Number(m[1]) : undefined };
  }

  before(async () => {
    h = await startHost('access');
    f = fixtures(h);
    for (const u of ['olivia', 'dev', 'vera', 'nora']) await user(u);
    await project('alpha', 'olivia');
    await project('pubproj', 'olivia', 'public');
  });
  after(async () => {
    await h?.stop();
  });

  it('the owner checks out and commits over HTTP, and the commit shows in Trac', async () => {
    const c = await commitAs('alpha', 'olivia', 'hello.txt');
    assert.equal(c.code, 0, c.stderr);
    assert.equal(c.rev, 2);
    // The post-commit hook tells the worker, which tells Trac; Trac's changeset page then shows it.
    const page = await until('changeset in Trac', async () => {
      const r = await http(`${h.tracUrl('alpha')}/changeset/2`, creds('olivia'));
      return r.status === 200 && r.body.includes('add hello.txt by olivia') ? r : undefined;
    });
    assert.match(page!.body, /hello\.txt/);
    // Revision 1, the layout Keelson commits while provisioning, reached Trac the same way.
    const first = await http(`${h.tracUrl('alpha')}/changeset/1`, creds('olivia'));
    assert.equal(first.status, 200);
    assert.match(first.body, /Standard layout/);
    const timeline = await http(`${h.tracUrl('alpha')}/timeline`, creds('olivia'));
    assert.equal(timeline.status, 200);
    assert.match(timeline.body, /add hello\.txt by olivia/);
  });

  it('a viewer can check out but not commit', async () => {
    await setRole('alpha', 'vera', 'viewer');
    await settled();
    const info = await svn(['info', h.svnUrl('alpha')], creds('vera'));
    assert.equal(info.code, 0, info.stderr);
    const c = await commitAs('alpha', 'vera', 'nope.txt');
    assert.notEqual(c.code, 0);
    assert.match(c.stderr, /403|forbidden|Access denied/i);
    assert.equal((await http(`${h.tracUrl('alpha')}/wiki`, creds('vera'))).status, 200);
  });

  it('a developer commits; a non-member gets 403 from SVN and no Trac access', async () => {
    await setRole('alpha', 'dev', 'developer');
    await settled();
    const c = await commitAs('alpha', 'dev', 'dev.txt');
    assert.equal(c.code, 0, c.stderr);
    const r = await http(`${h.svnUrl('alpha')}/`, creds('nora'));
    assert.equal(r.status, 403);
    const svnInfo = await svn(['info', h.svnUrl('alpha')], creds('nora'));
    assert.notEqual(svnInfo.code, 0);
    // Trac answers a non-member as it answers an unknown project: nothing, not even the title.
    for (const page of ['wiki', 'browser']) {
      const t = await http(`${h.tracUrl('alpha')}/${page}`, creds('nora'));
      assert.equal(t.status, 404);
      assert.equal(t.body, 'No such project\n');
    }
  });

  it('anonymous gets 401 from a private project and nothing from its Trac', async () => {
    assert.equal((await http(`${h.svnUrl('alpha')}/`)).status, 401);
    // Trac asks for credentials before anything of the project is shown (no title, no session row).
    const t = await http(`${h.tracUrl('alpha')}/wiki`);
    assert.equal(t.status, 401);
    assert.equal(t.body, 'Sign in to see this project\n');
    assert.equal((await http(`${h.tracUrl('alpha')}/login`)).status, 401);
    // Wrong credentials are refused, not treated as anonymous.
    assert.equal((await http(`${h.tracUrl('alpha')}/wiki`, { user: 'olivia', password: 'wrong' })).status, 401);
  });

  it("Trac's project index is not served, and unknown projects are 404", async () => {
    assert.equal((await http(`${h.cfg.publicUrl}/trac/`)).status, 404);
    assert.equal((await http(`${h.cfg.publicUrl}/trac/nosuchproject/wiki`)).status, 404);
  });

  it('a public project is readable anonymously and not writable', async () => {
    assert.equal((await http(`${h.svnUrl('pubproj')}/trunk/`)).status, 200);
    const co = await svn(['info', h.svnUrl('pubproj')]);
    assert.equal(co.code, 0, co.stderr);
    assert.equal((await http(`${h.tracUrl('pubproj')}/wiki`)).status, 200);
    // A logged-in non-member may read but not write.
    const c = await commitAs('pubproj', 'nora', 'x.txt');
    assert.notEqual(c.code, 0);
    // The checkout worked (commitAs asserts it): the commit itself is what Apache refused.
    assert.match(c.stderr, /403|Forbidden/i);
    assert.equal((await http(`${h.tracUrl('pubproj')}/newticket`, creds('nora'))).status, 403);
  });

  it('adding and removing a member takes effect on the next request with no Apache reload', async () => {
    const pid = h.run.apache.mainPid();
    assert.ok(pid);
    const logBefore = fs.readFileSync(h.run.apache.errorLog, 'utf8');
    assert.equal((await http(`${h.svnUrl('alpha')}/`, creds('nora'))).status, 403);
    await setRole('alpha', 'nora', 'developer');
    await settled();
    assert.equal((await http(`${h.svnUrl('alpha')}/`, creds('nora'))).status, 200);
    assert.equal((await svn(['info', h.svnUrl('alpha')], creds('nora'))).code, 0);
    const r = await h.api.delete('/api/v1/projects/alpha/members/nora');
    assert.equal(r.status, 200);
    await settled();
    assert.equal((await http(`${h.svnUrl('alpha')}/`, creds('nora'))).status, 403);
    assert.notEqual((await svn(['info', h.svnUrl('alpha')], creds('nora'))).code, 0);
    assert.equal(h.run.apache.mainPid(), pid);
    const reload = /SIGUSR1|graceful restart|resuming normal operations/i;
    const added = fs.readFileSync(h.run.apache.errorLog, 'utf8').slice(logBefore.length);
    assert.doesNotMatch(added, reload);
    // Control: a real graceful restart (what Keelson's Apache.start does when Apache runs) keeps the
    // main PID but does show in this log under its LogLevel, so the check above can fail.
    const logBeforeReload = fs.readFileSync(h.run.apache.errorLog, 'utf8');
    execFileSync('apache2', ['-f', apachePaths(layout(h.cfg)).conf, '-k', 'graceful'], { stdio: 'ignore' });
    await until(
      'graceful restart logged',
      () => reload.test(fs.readFileSync(h.run.apache.errorLog, 'utf8').slice(logBeforeReload.length)),
      10_000,
    );
    assert.equal(h.run.apache.mainPid(), pid, 'a graceful restart keeps the main PID');
    await until('Apache answers after the restart', () => h.run.apache.healthy());
  });

  it('reconcile changes nothing on a converged project', async () => {
    const authz = path.join(h.run.reconciler.repoDir('alpha'), 'conf', 'authz');
    const before = fs.statSync(authz);
    const id = (h.run.db.prepare(`SELECT id FROM projects WHERE slug = 'alpha'`).get() as { id: number }).id;
    // Every file Keelson renders for the project and for all projects: the repository's conf/ and
    // hooks/, the environment's conf/, the credentials database, the shared trac.ini, the quota files.
    const l = layout(h.cfg);
    const repo = h.run.reconciler.repoDir('alpha');
    const dirs = [
      path.join(repo, 'conf'),
      path.join(repo, 'hooks'),
      path.join(h.run.reconciler.envDir('alpha'), 'conf'),
      l.authDir,
      l.tracShared,
      l.quotaDir,
    ];
    const stats = () =>
      Object.fromEntries(
        dirs.flatMap((d) =>
          tree(d)
            .map((f) => path.join(d, f))
            .filter((f) => fs.statSync(f).isFile())
            .map((f) => [f, `${fs.statSync(f).ino} ${fs.statSync(f).mtimeMs}`]),
        ),
      );
    const all = stats();
    for (const f of [
      authz,
      path.join(repo, 'hooks', 'post-commit'),
      path.join(h.run.reconciler.envDir('alpha'), 'conf', 'trac.ini'),
      l.authDb,
      l.tracInherit,
    ])
      assert.ok(f in all, `${f} is compared`);
    await h.run.reconciler.reconcile(id);
    await h.run.reconciler.reconcile(id);
    const after = fs.statSync(authz);
    assert.equal(after.ino, before.ino);
    assert.equal(after.mtimeMs, before.mtimeMs);
    assert.deepEqual(stats(), all);
  });

  it('`keelson reconcile --all` rebuilds deleted generated files from the database alone', async () => {
    const repo = h.run.reconciler.repoDir('alpha');
    const files = [
      path.join(repo, 'conf', 'authz'),
      path.join(repo, 'hooks', 'post-commit'),
      path.join(repo, 'hooks', 'pre-commit'),
      path.join(repo, 'hooks', 'pre-lock'),
      path.join(h.run.reconciler.envDir('alpha'), 'conf', 'trac.ini'),
    ];
    const before = files.map((f) => fs.readFileSync(f, 'utf8'));
    for (const f of files) fs.rmSync(f);
    fs.rmSync(path.join(h.cfg.dataDir, 'auth', 'credentials.db'));
    assert.notEqual((await http(`${h.svnUrl('alpha')}/`, creds('olivia'))).status, 200);
    execFileSync(process.execPath, [path.join(PROJECT_ROOT, 'dist', 'src', 'cli', 'main.js'), 'reconcile', '--all'], {
      env: { ...process.env, KEELSON_DATA_DIR: h.cfg.dataDir, KEELSON_APACHE_PORT: String(h.cfg.apachePort), KEELSON_LOG: 'silent' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    assert.deepEqual(
      files.map((f) => fs.readFileSync(f, 'utf8')),
      before,
    );
    assert.equal((await http(`${h.svnUrl('alpha')}/`, creds('olivia'))).status, 200);
    assert.equal((await http(`${h.svnUrl('alpha')}/`, creds('nora'))).status, 403);
    assert.equal((await http(`${h.tracUrl('alpha')}/wiki`, creds('olivia'))).status, 200);
  });

  it('the last owner cannot be removed', async () => {
    const r = await h.api.delete('/api/v1/projects/alpha/members/olivia');
    assert.equal(r.status, 409);
    assert.equal(r.body.error.code, 'conflict');
  });
});

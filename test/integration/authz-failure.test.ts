import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { PROJECT_ROOT } from '../../src/paths.js';
import { http, startHost, until, type TestHost } from '../helpers/host.js';
import { fixtures } from '../helpers/fixtures.js';

/**
 * The history lesson, reproduced on the real stack: a full disk under the generated files, and
 * one project's authz broken by hand. Neither may touch any other project, or the previous file.
 */
describe('authz under failure', () => {
  let h: TestHost;
  let f: ReturnType<typeof fixtures>;
  const mounts: string[] = [];
  const authzFile = (slug: string) => path.join(h.run.reconciler.repoDir(slug), 'conf', 'authz');
  const CLI = path.join(PROJECT_ROOT, 'dist', 'src', 'cli', 'main.js');
  const cliEnv = () => ({
    ...process.env,
    KEELSON_DATA_DIR: h.cfg.dataDir,
    KEELSON_APACHE_PORT: String(h.cfg.apachePort),
    KEELSON_LOG: 'silent',
  });
  const status = async (slug: string, u: string) => (await http(`${h.svnUrl(slug)}/`, f.creds(u))).status;

  before(async () => {
    h = await startHost('authz-failure');
    f = fixtures(h);
    for (const u of ['olivia', 'dev', 'nora']) await f.user(u);
    for (const slug of ['one', 'two', 'three']) await f.project(slug, 'olivia');
  });
  after(async () => {
    for (const m of mounts.reverse()) execFileSync('umount', ['-l', m]);
    await h?.stop();
  });

  it('blast radius: a hand-broken authz denies only its own project; the next reconcile repairs it', async () => {
    const good = fs.readFileSync(authzFile('two'), 'utf8');
    // An undefined group: the error that locked a whole host out when its authz was one file.
    fs.writeFileSync(authzFile('two'), '[groups]\n[/]\n@ghosts = rw\n');
    const broken = await status('two', 'olivia');
    assert.ok(broken >= 400, `project two answers ${broken}`);
    for (const slug of ['one', 'three']) assert.equal(await status(slug, 'olivia'), 200, slug);
    assert.equal((await http(`${h.tracUrl('one')}/wiki`, f.creds('olivia'))).status, 200);
    execFileSync(process.execPath, [CLI, 'reconcile', 'two'], {
      env: cliEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    assert.equal(fs.readFileSync(authzFile('two'), 'utf8'), good);
    for (const slug of ['one', 'two', 'three']) assert.equal(await status(slug, 'olivia'), 200, slug);
  });

  it('a live project whose repository vanished is an incident, not a new empty repository', async () => {
    const repo = h.run.reconciler.repoDir('one');
    const aside = `${repo}.aside`;
    fs.renameSync(repo, aside);
    try {
      const r = spawnSync(process.execPath, [CLI, 'reconcile', 'one'], {
        env: cliEnv(),
        encoding: 'utf8',
      });
      assert.equal(r.status, 1);
      assert.match(r.stderr, /is missing .* not creating an empty one/);
      assert.equal(fs.existsSync(repo), false);
      assert.match((await h.api.get('/api/v1/projects/one')).body.lastError, /not creating an empty one/);
    } finally {
      fs.renameSync(aside, repo);
    }
    execFileSync(process.execPath, [CLI, 'reconcile', 'one'], {
      env: cliEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    assert.equal(await status('one', 'olivia'), 200);
  });

  it('full disk: the publish fails cleanly, the old file keeps serving, the API shows why, space returns and it publishes', async () => {
    // The repository's conf/ on a tiny tmpfs of its own, filled to the last block.
    const conf = path.dirname(authzFile('three'));
    const saved = fs.mkdtempSync(path.join(h.cfg.dataDir, 'conf-copy-'));
    fs.cpSync(conf, saved, { recursive: true, preserveTimestamps: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0755', 'tmpfs', conf]);
    mounts.push(conf);
    fs.cpSync(saved, conf, { recursive: true, preserveTimestamps: true });
    execFileSync('chown', ['-R', `${h.cfg.apacheUser}:${h.cfg.apacheGroup}`, conf]);
    const filler = path.join(conf, 'filler');
    const fd = fs.openSync(filler, 'w');
    try {
      for (;;) fs.writeSync(fd, Buffer.alloc(4096, 1));
    } catch (e) {
      assert.equal((e as NodeJS.ErrnoException).code, 'ENOSPC');
    } finally {
      fs.closeSync(fd);
    }
    const before = fs.readFileSync(authzFile('three'), 'utf8');
    assert.equal(await status('three', 'dev'), 403);

    await f.setRole('three', 'dev', 'developer');
    const failed = await until('the failure is visible through the API', async () => {
      const r = await h.api.get('/api/v1/projects/three/authz');
      return r.body.lastError ? r.body : undefined;
    });
    assert.match(failed.lastError, /ENOSPC|no space/i);
    assert.equal(failed.inSync, false);
    assert.equal((await h.api.get('/api/v1/projects/three')).body.lastError, failed.lastError);
    assert.equal(fs.readFileSync(authzFile('three'), 'utf8'), before, 'the old file is intact');
    assert.deepEqual(
      fs.readdirSync(conf).filter((x) => x.endsWith('.tmp')),
      [],
      'no temporary file left behind',
    );
    assert.equal(await status('three', 'olivia'), 200, 'and keeps serving');
    assert.equal(await status('three', 'dev'), 403);
    for (const slug of ['one', 'two']) assert.equal(await status(slug, 'olivia'), 200, slug);
    // The API keeps taking writes: the database is on another volume.
    await f.setRole('one', 'nora', 'viewer');

    fs.rmSync(filler);
    // The job retries with backoff; once there is space the new state is published.
    await f.published('three', 60_000);
    // The error clears when the whole reconcile (Trac included) has succeeded.
    await until('lastError cleared', async () => (await h.api.get('/api/v1/projects/three/authz')).body.lastError === null);
    assert.equal(await status('three', 'dev'), 200);
    assert.equal(await status('one', 'nora'), 200);
  });
});

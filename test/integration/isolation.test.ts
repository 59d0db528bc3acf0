import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import Database from 'better-sqlite3';
import { http, startHost, svn, until, type TestHost } from '../helpers/host.js';
import { FORM_TOKEN, formCookie, req, type Reply } from '../helpers/trac-attacks.js';
import { layout } from '../../src/config.js';
import { renderAuthz } from '../../src/authz/render.js';
import { MIGRATIONS } from '../../src/store/migrations.js';
import { chownTree } from '../../src/provision/owner.js';

/**
 * Tenant isolation, attacked as it was reproduced: every owner is a stranger who signed up. Each
 * test replays one path from the issue on the real stack (Apache, mod_dav_svn, mod_wsgi, Trac,
 * the real svn client) and asserts that the attack fails and the victim is unaffected.
 */

/** A Trac form post: Trac wants __FORM_TOKEN equal to its trac_form_token cookie. */
function tracPost(url: string, creds: { user: string; password: string }, form: Record<string, string>): Promise<Reply> {
  return req('POST', url, { creds, cookie: formCookie, form: { __FORM_TOKEN: FORM_TOKEN, ...form } });
}

/**
 * One GET through stock Trac (no Keelson guard) in a process of its own: `python3 -c STOCK_GET env path`
 * prints the status line and the body. Run as the Trac user, it is the control for what Keelson's
 * daemon must not do with the same environment.
 */
const STOCK_GET = String.raw`
import io, sys
from trac.web.main import dispatch_request
environ = {
    'REQUEST_METHOD': 'GET', 'PATH_INFO': sys.argv[2], 'SCRIPT_NAME': '/trac/x', 'QUERY_STRING': '',
    'SERVER_NAME': '127.0.0.1', 'SERVER_PORT': '80', 'SERVER_PROTOCOL': 'HTTP/1.0', 'wsgi.url_scheme': 'http',
    'wsgi.input': io.BytesIO(), 'wsgi.errors': sys.stderr, 'wsgi.version': (1, 0), 'wsgi.multithread': False,
    'wsgi.multiprocess': False, 'wsgi.run_once': True, 'trac.env_path': sys.argv[1],
}
status, out = [], []
def start_response(s, headers, exc_info=None):
    status.append(s)
    return out.append
out.extend(dispatch_request(environ, start_response))
sys.stdout.write(status[0] + '\n' + b''.join(out).decode('utf-8', 'replace'))
`;

/**
 * The repositories stock Trac finds in an environment (`python3 -c STOCK_REPOS env enable|as-configured`):
 * prints the directory of repository "stolen", or an empty line. With `enable`, the database
 * repository provider Keelson's shared trac.ini disables is turned back on.
 */
const STOCK_REPOS = String.raw`
import sys, trac.env
from trac.versioncontrol.api import RepositoryManager
env = trac.env.Environment(sys.argv[1])
if sys.argv[2] == 'enable':
    env.config.set('components', 'trac.versioncontrol.api.DbRepositoryProvider', 'enabled')
print(RepositoryManager(env).get_all_repositories().get('stolen', {}).get('dir', ''))
`;

/** Exit status of `cmd` run as `user` (runuser), for "can this user write/read that" checks. */
function asUser(user: string, cmd: string[]): number {
  return spawnSync('runuser', ['-u', user, '--', ...cmd], { stdio: 'ignore' }).status ?? -1;
}

describe('tenant isolation: an owner reaches nothing outside their project', () => {
  let h: TestHost;
  const tokens: Record<string, string> = {};
  const creds = (user: string) => ({ user, password: tokens[user]! });
  let markerDir = '';
  let work = '';
  const ids: Record<string, number> = {};

  const addUser = async (name: string) => {
    const r = await h.api.post('/api/v1/users').send({ name, email: `${name}@example.com`, password: 'a long enough password' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    tokens[name] = r.body.accessToken;
  };
  const addProject = async (slug: string, title: string, visibility: 'private' | 'public', owner: string) => {
    const r = await h.api.post('/api/v1/projects').send({ slug, title, visibility, owner });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    await until(`${slug} active`, async () => (await h.api.get(`/api/v1/projects/${slug}`)).body.state === 'active');
    ids[slug] = h.run.db.prepare(`SELECT id FROM projects WHERE slug = ? AND state <> 'deleted'`).pluck().get(slug) as number;
  };
  const env = (slug: string) => path.join(layout(h.cfg).tracRoot, slug);
  const repo = (slug: string) => path.join(layout(h.cfg).svnRoot, slug);
  /** Commits one file as `user` with the real svn client; returns the new revision's commit output. */
  const commit = async (slug: string, user: string, file: string, content: string) => {
    const wc = fs.mkdtempSync(path.join(work, `${slug}-`));
    const co = await svn(['checkout', `${h.svnUrl(slug)}/trunk`, wc], creds(user));
    assert.equal(co.code, 0, co.stderr);
    fs.writeFileSync(path.join(wc, file), content);
    assert.equal((await svn(['add', path.join(wc, file)])).code, 0);
    const c = await svn(['commit', '-m', `add ${file}`, wc], creds(user));
    assert.equal(c.code, 0, c.stderr);
    return c;
  };
  /** Runs a stock-Trac script (above) as the Trac user; returns its output. */
  const stock = (script: string, ...args: string[]) =>
    execFileSync('runuser', ['-u', h.cfg.tracUser, '--', '/usr/bin/python3', '-c', script, ...args], {
      cwd: '/',
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  /**
   * Makes the Trac daemon re-open evil's environment, and shows that it did: trac.ini gets a
   * project name with `marker` (and a newer mtime, which is what the daemon looks at), and the
   * daemon's pages show that name. Converging writes Keelson's trac.ini back.
   */
  let iniBump = 0;
  const reopenEvil = async (marker: string) => {
    const ini = path.join(env('evil'), 'conf', 'trac.ini');
    const text = fs.readFileSync(ini, 'utf8');
    const named = text.replace(/^\[project\]\nname = .*$/m, `[project]\nname = Evil Public ${marker}`);
    assert.notEqual(named, text, 'the project name line is in trac.ini');
    fs.writeFileSync(ini, named);
    const t = new Date(Math.max(Date.now(), fs.statSync(ini).mtimeMs) + 2000 * ++iniBump);
    fs.utimesSync(ini, t, t);
    await until(`evil's Trac re-opened (${marker})`, async () => (await http(`${h.tracUrl('evil')}/wiki`)).body.includes(marker), 15_000);
  };
  const settled = () =>
    until('jobs settled', () => h.run.db.prepare(`SELECT count(*) FROM jobs WHERE state IN ('pending','running')`).pluck().get() === 0);

  before(async () => {
    // Reports may run 2 s here (10 by default), so the runaway-query test is quick.
    h = await startHost('isolation', {}, { KEELSON_TRAC_REPORT_SECONDS: '2' });
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'keelson-iso-'));
    // Where a planted plugin would leave its mark: writable by anyone, so any importer could.
    markerDir = fs.mkdtempSync('/var/tmp/keelson-iso-marker-');
    fs.chmodSync(markerDir, 0o777);
    for (const u of ['mallory', 'vic', 'tom']) await addUser(u);
    await addProject('evil', 'Evil Public', 'public', 'mallory');
    await addProject('vault', 'Vault Secret Title', 'private', 'vic');
    assert.equal((await h.api.put('/api/v1/projects/vault/members/tom').send({ role: 'developer' })).status, 200);
    await settled();
    await commit('vault', 'vic', 'secret.txt', 'VAULT-SECRET-CONTENT\n');
  });

  after(async () => {
    await h?.stop();
    fs.rmSync(work, { recursive: true, force: true });
    fs.rmSync(markerDir, { recursive: true, force: true });
  });

  it('owners hold no TRAC_ADMIN, and the Plugins, Logging, Repositories, Basics and Permissions panels do not exist', async () => {
    const perms = await h.run.reconciler.trac.call<[string, string][]>('list_perms', { path: env('evil') });
    assert.ok(!perms.some(([, a]) => a === 'TRAC_ADMIN'), JSON.stringify(perms));
    const base = h.tracUrl('evil');
    for (const panel of ['general/plugin', 'general/logging', 'general/basics', 'general/perm', 'versioncontrol/repository']) {
      const r = await req('GET', `${base}/admin/${panel}`, { creds: creds('mallory') });
      assert.ok(r.status === 404 || r.status === 403, `${panel}: ${r.status}`);
    }
    // The attacks themselves, as posted: an uploaded plugin, a log file anywhere, another tenant's repository.
    const target = path.join(markerDir, 'log-target');
    const posts: [string, Record<string, string>][] = [
      ['general/logging', { log_type: 'file', log_file: target, log_level: 'DEBUG', apply: 'Apply' }],
      ['versioncontrol/repository', { name: 'stolen', dir: repo('vault'), type: 'svn', add_repos: 'Add' }],
      ['general/plugin', { install: 'Install' }],
    ];
    for (const [panel, form] of posts) {
      const r = await tracPost(`${base}/admin/${panel}`, creds('mallory'), form);
      assert.ok(r.status === 404 || r.status === 403, `${panel}: ${r.status}`);
    }
    // And the plugin upload as the Plugins panel's form sends it (multipart, with the file), so the
    // empty plugins/ below is this post's outcome too.
    const upload = new FormData();
    upload.set('__FORM_TOKEN', FORM_TOKEN);
    upload.set('install', 'Install');
    upload.set('plugin_file', new Blob([`open(${JSON.stringify(path.join(markerDir, 'uploaded'))}, 'w').close()\n`]), 'uploaded_plugin.py');
    const m = creds('mallory');
    const up = await fetch(`${base}/admin/general/plugin`, {
      method: 'POST',
      body: upload,
      headers: { authorization: 'Basic ' + Buffer.from(`${m.user}:${m.password}`).toString('base64'), cookie: formCookie },
    });
    await up.arrayBuffer();
    assert.ok(up.status === 404 || up.status === 403, `plugin upload: ${up.status}`);
    await req('GET', `${base}/no-such-page-${'x'.repeat(10)}`);
    assert.ok(!fs.existsSync(target), 'a log file was written outside the project');
    assert.deepEqual(fs.readdirSync(path.join(env('evil'), 'plugins')), []);
    assert.deepEqual(fs.readdirSync(markerDir), []);
    const text = fs.readFileSync(path.join(env('evil'), 'conf', 'trac.ini'), 'utf8');
    assert.ok(!/log_file|stolen/.test(text), text);
  });

  it('a plugin planted in an environment is imported by neither the Trac daemon nor the helper, and converging removes it', async () => {
    const plugin = path.join(env('evil'), 'plugins', 'evil_plugin.py');
    fs.writeFileSync(
      plugin,
      `import os\nopen(os.path.join(${JSON.stringify(markerDir)}, 'imported-%d-%d' % (os.getuid(), os.getpid())), 'w').close()\n`,
    );
    // The daemon re-opens an environment whose trac.ini changed: make it open this one afresh
    // (and see that it did: the changed name shows on its pages).
    await reopenEvil('reopened-for-plugin');
    assert.equal((await http(`${h.tracUrl('evil')}/wiki`)).status, 200);
    // The helper opens it for the commit feed.
    await commit('evil', 'mallory', 'readme.txt', 'hello\n');
    await until('r2 in evil Trac', async () => (await http(`${h.tracUrl('evil')}/changeset/2`)).status === 200);
    assert.deepEqual(fs.readdirSync(markerDir), [], 'the planted plugin was imported');
    // Control: Trac itself, without Keelson's guard, does import it (so the check above can fail).
    execFileSync(
      'runuser',
      ['-u', h.cfg.tracUser, '--', '/usr/bin/python3', '-c', `import trac.env; trac.env.Environment(${JSON.stringify(env('evil'))})`],
      {
        stdio: 'ignore',
        cwd: '/',
      },
    );
    assert.equal(fs.readdirSync(markerDir).length, 1, 'control: stock Trac should have imported the plugin');
    for (const f of fs.readdirSync(markerDir)) fs.rmSync(path.join(markerDir, f));
    await h.run.reconciler.reconcile(ids.evil!);
    assert.ok(!fs.existsSync(plugin), 'converge left the planted plugin');
  });

  it('files planted in templates/ and htdocs/ are never used; those in hooks/ and conf/, which Subversion would run, are removed by converging', async () => {
    // A template is code Trac would render (Trac's templates evaluate ${...}); a hook runs on every
    // commit; a hooks-env sets its environment.
    fs.writeFileSync(path.join(env('evil'), 'templates', 'site_head.html'), '<script>alert("pwned")</script>{{ 7*191 }}${ 7*191 }');
    fs.writeFileSync(path.join(env('evil'), 'htdocs', 'x.html'), '<script>alert(1)</script>');
    fs.writeFileSync(path.join(repo('vault'), 'hooks', 'start-commit'), '#!/bin/sh\necho "planted hook, $PLANTED" >&2\nexit 1\n', {
      mode: 0o755,
    });
    fs.writeFileSync(path.join(repo('vault'), 'conf', 'hooks-env'), '[default]\nLD_PRELOAD=/tmp/x.so\nPLANTED=env from hooks-env\n');
    await reopenEvil('reopened-for-templates');
    const page = await http(`${h.tracUrl('evil')}/wiki`);
    assert.equal(page.status, 200);
    assert.ok(!page.body.includes('1337') && !page.body.includes('pwned'), 'a planted template was rendered');
    assert.equal((await http(`${h.tracUrl('evil')}/chrome/site/x.html`)).status, 404);
    // Control: stock Trac, as the Trac user, renders the planted template and serves the planted file
    // from the same environment (so the checks above can fail).
    const stockPage = stock(STOCK_GET, env('evil'), '/wiki');
    assert.match(stockPage, /^200 /);
    assert.ok(stockPage.includes('1337') && stockPage.includes('pwned'), 'control: stock Trac should render site_head.html');
    const stockFile = stock(STOCK_GET, env('evil'), '/chrome/site/x.html');
    assert.match(stockFile, /^200 /);
    assert.ok(stockFile.includes('<script>alert(1)</script>'), 'control: stock Trac should serve htdocs/x.html');
    // Control: Subversion does run the planted hook with the planted environment until converging
    // removes them (nothing keeps it from running them before), so they are where it looks.
    const wc = fs.mkdtempSync(path.join(work, 'planted-'));
    assert.equal((await svn(['checkout', `${h.svnUrl('vault')}/trunk`, wc], creds('vic'))).code, 0);
    fs.writeFileSync(path.join(wc, 'blocked.txt'), 'x\n');
    assert.equal((await svn(['add', path.join(wc, 'blocked.txt')])).code, 0);
    const blocked = await svn(['commit', '-m', 'blocked', wc], creds('vic'));
    assert.notEqual(blocked.code, 0);
    assert.match(blocked.stderr, /start-commit hook[\s\S]*LD_PRELOAD[\s\S]*planted hook, env from hooks-env/);
    await h.run.reconciler.reconcile(ids.evil!);
    await h.run.reconciler.reconcile(ids.vault!);
    assert.deepEqual(fs.readdirSync(path.join(env('evil'), 'templates')), []);
    assert.deepEqual(fs.readdirSync(path.join(env('evil'), 'htdocs')), []);
    assert.ok(!fs.existsSync(path.join(repo('vault'), 'hooks', 'start-commit')));
    assert.ok(!fs.existsSync(path.join(repo('vault'), 'conf', 'hooks-env')));
    // The victim commits as before.
    await commit('vault', 'vic', 'after.txt', 'still works\n');
  });

  it("repository rows naming another tenant's repository give nothing, and converging removes them", async () => {
    const tdb = new Database(path.join(env('evil'), 'db', 'trac.db'));
    tdb
      .prepare(`INSERT INTO repository (id, name, value) VALUES (77, 'name', 'stolen'), (77, 'dir', ?), (77, 'type', 'svn')`)
      .run(repo('vault'));
    tdb.close();
    // The daemon re-opens the environment with the rows in its database (and shows that it did).
    await reopenEvil('reopened-for-repository-rows');
    for (const u of ['/browser/stolen/trunk/secret.txt?format=txt', '/export/HEAD/stolen/trunk/secret.txt', '/browser/stolen']) {
      const anon = await http(`${h.tracUrl('evil')}${u}`);
      const owner = await http(`${h.tracUrl('evil')}${u}`, creds('mallory'));
      for (const r of [anon, owner]) {
        assert.ok(!r.body.includes('VAULT-SECRET-CONTENT'), `${u} leaked the victim's file`);
        assert.ok([403, 404].includes(r.status), `${u}: ${r.status}`);
      }
    }
    // Control: stock Trac finds the row and resolves "stolen" to the victim's repository once the
    // database repository provider (disabled in the shared trac.ini) is on; as configured, it does not.
    assert.equal(stock(STOCK_REPOS, env('evil'), 'enable').trim(), repo('vault'), 'control: the row names the vault');
    assert.equal(stock(STOCK_REPOS, env('evil'), 'as-configured').trim(), '');
    await h.run.reconciler.reconcile(ids.evil!);
    const after = new Database(path.join(env('evil'), 'db', 'trac.db'), { readonly: true });
    const left = after.prepare(`SELECT count(*) FROM repository WHERE id = 77`).pluck().get();
    after.close();
    assert.equal(left, 0);
  });

  it("an owner's report SQL cannot attach another tenant's database, write, change the schema or run forever", async () => {
    const base = h.tracUrl('evil');
    const m = creds('mallory');
    const report = async (query: string) => {
      const r = await tracPost(`${base}/report`, m, { action: 'new', title: 'r', query, description: '' });
      const id = String(r.headers.location ?? '').match(/\/report\/(\d+)/)?.[1];
      assert.ok(id, `report not created: ${r.status} ${r.headers.location}`);
      return (await req('GET', `${base}/report/${id}?format=csv`, { creds: m })).body;
    };
    const vaultPerms = await h.run.reconciler.trac.call('list_perms', { path: env('vault') });
    const evilPerms = await h.run.reconciler.trac.call('list_perms', { path: env('evil') });
    // Control: an ordinary report runs.
    assert.match(await report(`SELECT 'ok-' || (41 + 1) AS x`), /ok-42/);
    // The reproduced attack: ATTACH the victim's trac.db on a pooled connection, then read and write it.
    const victimDb = path.join(env('vault'), 'db', 'trac.db');
    for (let i = 0; i < 3; i++) await report(`ATTACH DATABASE '${victimDb}' AS v`);
    assert.doesNotMatch(await report(`SELECT username || '|' || action AS x FROM v.permission`), /vic\|@owner/);
    await report(`WITH q AS (SELECT 1) INSERT INTO v.permission VALUES ('mallory', '@owner')`);
    await report(`WITH q AS (SELECT 1) INSERT INTO permission VALUES ('mallory', 'TRAC_ADMIN')`);
    await report(`PRAGMA writable_schema = 1`);
    await report(`CREATE TRIGGER t AFTER INSERT ON revision BEGIN SELECT 1; END`);
    // fts3_tokenizer leaks a library address and, given one, corrupts memory in the shared daemon.
    assert.doesNotMatch(await report(`SELECT hex(fts3_tokenizer('simple')) AS x`), /^[0-9A-F]{16}\s*$/m);
    // Control: the same SQLite library, as the Trac user without the guard, does give the address.
    const leak = execFileSync(
      'runuser',
      [
        '-u',
        h.cfg.tracUser,
        '--',
        '/usr/bin/python3',
        '-c',
        `import sqlite3; print(sqlite3.connect(':memory:').execute("SELECT hex(fts3_tokenizer('simple'))").fetchone()[0])`,
      ],
      { cwd: '/', encoding: 'utf8' },
    );
    assert.match(leak, /^[0-9A-F]{16}\s*$/m, 'control: fts3_tokenizer gives an address without the guard');
    assert.deepEqual(await h.run.reconciler.trac.call('list_perms', { path: env('vault') }), vaultPerms);
    assert.deepEqual(await h.run.reconciler.trac.call('list_perms', { path: env('evil') }), evilPerms);
    const own = new Database(path.join(env('evil'), 'db', 'trac.db'), { readonly: true });
    const triggers = own.prepare(`SELECT count(*) FROM sqlite_master WHERE type = 'trigger'`).pluck().get();
    own.close();
    assert.equal(triggers, 0);
    // A query that would never end is interrupted after the configured time; the daemon serves on.
    const t0 = Date.now();
    const slow = await report(`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) AS x FROM c`);
    const took = Date.now() - t0;
    assert.ok(took < 15_000, `the runaway report took ${took} ms`);
    // The configured 2 s, not the 10 s default: it ran until its limit and was stopped soon after.
    assert.ok(took >= 2_000 && took < 8_000, `the runaway report took ${took} ms (KEELSON_TRAC_REPORT_SECONDS=2, default 10)`);
    assert.doesNotMatch(slow, /^\d{6,}\s*$/m);
    assert.equal((await http(`${h.tracUrl('vault')}/wiki`, creds('vic'))).status, 200);
  });

  it("Keelson's cookies never reach Trac's WSGI environment; Trac's own do", async () => {
    const wsgi = path.join(layout(h.cfg).apacheDir, 'trac.wsgi');
    const real = fs.readFileSync(wsgi);
    // The WSGI script swapped for one that shows what it was given (mod_wsgi reloads a changed script).
    fs.writeFileSync(
      wsgi,
      `def application(environ, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [('COOKIE=' + environ.get('HTTP_COOKIE', '')).encode()]\n`,
    );
    try {
      const cookie = 'keelson_session=SESSIONSECRET; trac_session=abc; keelson_bid=BIDSECRET; __Host-keelson_session=HOSTSECRET';
      const r = await until('echo app', async () => {
        const x = await req('GET', `${h.tracUrl('evil')}/wiki`, { cookie });
        return x.body.startsWith('COOKIE=') ? x : undefined;
      });
      assert.equal(r?.body, 'COOKIE=trac_session=abc');
    } finally {
      fs.writeFileSync(wsgi, real);
    }
    await until('Trac back', async () => (await http(`${h.tracUrl('evil')}/wiki`)).status === 200);
  });

  it("a broken environment of one project does not delay another project's commits in Trac", async () => {
    await addProject('abroken', 'Broken', 'private', 'mallory');
    await addProject('bfine', 'Fine', 'private', 'vic');
    // Baseline: bfine's commit-to-changeset time while no environment is broken.
    const b0 = Date.now();
    await commit('bfine', 'vic', 'b0.txt', 'b0\n');
    await until('bfine r2 in Trac', async () => (await http(`${h.tracUrl('bfine')}/changeset/2`, creds('vic'))).status === 200, 15_000);
    const baseline = Date.now() - b0;
    fs.writeFileSync(path.join(env('abroken'), 'db', 'trac.db'), 'this is not a database');
    await commit('abroken', 'mallory', 'a.txt', 'a\n');
    const t0 = Date.now();
    await commit('bfine', 'vic', 'b.txt', 'b\n');
    await until('bfine r3 in Trac', async () => (await http(`${h.tracUrl('bfine')}/changeset/3`, creds('vic'))).status === 200, 15_000);
    const latency = Date.now() - t0;
    assert.ok(latency < 15_000);
    // No head-of-line wait behind the broken project (a retry or backoff would show here).
    assert.ok(latency <= 3 * baseline + 2_000, `bfine's commit reached Trac in ${latency} ms with abroken broken, ${baseline} ms before`);
    const broken = (await h.api.get('/api/v1/projects/abroken')).body;
    assert.match(String(broken.lastError), /Trac did not take new commits/);
    assert.ok(fs.existsSync(path.join(layout(h.cfg).commitSpool, 'abroken.2')), 'the failed commit left the spool');
  });

  it('a Trac login ends right after the token is rotated and after the user is disabled', async () => {
    const base = h.tracUrl('vault');
    const login = await req('GET', `${base}/login`, { creds: creds('tom') });
    assert.ok(login.status === 302 || login.status === 303, String(login.status));
    const cookie = ([] as string[])
      .concat(login.headers['set-cookie'] ?? [])
      .map((c) => c.split(';')[0]!)
      .find((c) => c.startsWith('trac_auth='));
    assert.ok(cookie, 'Trac set a login cookie');
    assert.equal((await req('GET', `${base}/wiki`, { creds: creds('tom'), cookie })).status, 200);
    // The cookie alone is never a login: only what Apache authenticated on this request counts.
    assert.equal((await req('GET', `${base}/wiki`, { cookie })).status, 401);
    const old = tokens.tom!;
    const rot = await h.api.post('/api/v1/users/tom/access-token').send({});
    assert.equal(rot.status, 201, JSON.stringify(rot.body));
    tokens.tom = rot.body.accessToken;
    assert.equal((await req('GET', `${base}/wiki`, { creds: { user: 'tom', password: old }, cookie })).status, 401);
    assert.equal((await req('GET', `${base}/wiki`, { cookie })).status, 401);
    assert.equal((await req('GET', `${base}/wiki`, { creds: creds('tom') })).status, 200);
    assert.equal((await h.api.patch('/api/v1/users/tom').send({ disabled: true })).status, 200);
    assert.equal((await req('GET', `${base}/wiki`, { creds: creds('tom'), cookie })).status, 401);
    assert.equal((await req('GET', `${base}/wiki`, { cookie })).status, 401);
  });

  it('a path rule giving everyone write access is refused; anonymous never commits', async () => {
    const r = await h.api.put('/api/v1/projects/vault/path-rules').send({ rules: [{ path: '/trunk', subject: '*', access: 'rw' }] });
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, /rules\.0\.access/);
    assert.throws(
      () => renderAuthz({ slug: 'vault', visibility: 'public', members: [], rules: [{ path: '/trunk', subject: '*', access: 'rw' }] }),
      /everyone/,
    );
    const wc = fs.mkdtempSync(path.join(work, 'anon-'));
    assert.equal((await svn(['checkout', `${h.svnUrl('evil')}/trunk`, wc])).code, 0);
    fs.writeFileSync(path.join(wc, 'anon.txt'), 'x');
    const add = await svn(['add', path.join(wc, 'anon.txt')]);
    assert.equal(add.code, 0, add.stderr);
    const anon = await svn(['commit', '-m', 'anon', wc]);
    assert.notEqual(anon.code, 0);
    // Refused for want of credentials (Apache's 401), not for some other reason.
    assert.match(anon.stderr, /401|403|Authoriz|authenticat/i);
  });

  it('anonymous gets nothing from a private Trac: no session rows, no title', async () => {
    const dbFile = path.join(env('vault'), 'db', 'trac.db');
    const count = () => {
      const d = new Database(dbFile, { readonly: true });
      try {
        return [d.prepare(`SELECT count(*) FROM session`).pluck().get(), d.prepare(`SELECT count(*) FROM session_attribute`).pluck().get()];
      } finally {
        d.close();
      }
    };
    const before = count();
    const get = await req('GET', `${h.tracUrl('vault')}/prefs`, { cookie: 'trac_session=0123456789abcdef01234567' });
    const post = await req('POST', `${h.tracUrl('vault')}/prefs`, {
      cookie: 'trac_session=0123456789abcdef01234567; trac_form_token=t0k3n',
      form: { __FORM_TOKEN: 't0k3n', name: 'Anon', email: 'a@example.com', action: 'save' },
    });
    for (const r of [get, post, await http(`${h.tracUrl('vault')}/no-such-page`)]) {
      assert.equal(r.status, 401);
      assert.ok(!r.body.includes('Vault Secret Title'));
    }
    assert.deepEqual(count(), before);
  });

  it("files have the owners and modes of the README's table", async () => {
    const l = layout(h.cfg);
    const uidOf = (u: string) => Number(execFileSync('id', ['-u', u]).toString().trim());
    const apache = uidOf(h.cfg.apacheUser);
    const trac = uidOf(h.cfg.tracUser);
    const st = (p: string) => fs.statSync(p);
    const mode = (p: string) => st(p).mode & 0o777;
    assert.equal(mode(l.db), 0o600);
    assert.equal(st(l.db).uid, 0);
    assert.equal(st(l.authDb).uid, 0);
    assert.equal(mode(l.authDb), 0o640);
    assert.equal(mode(l.authDir), 0o750);
    for (const p of [
      repo('vault'),
      path.join(repo('vault'), 'conf'),
      path.join(repo('vault'), 'conf', 'authz'),
      path.join(repo('vault'), 'hooks'),
      path.join(repo('vault'), 'hooks', 'post-commit'),
      path.join(repo('vault'), 'hooks', 'pre-commit'),
      path.join(repo('vault'), 'hooks', 'pre-lock'),
      // The quota files the hook and Trac read: root's, readable, written by Keelson alone.
      l.quotaDir,
      path.join(l.quotaDir, 'vault'),
      path.join(l.quotaDir, '_default'),
    ])
      assert.equal(st(p).uid, 0, p);
    assert.equal(mode(path.join(l.quotaDir, 'vault')), 0o644);
    assert.equal(mode(l.quotaDir), 0o755);
    for (const p of [path.join(repo('vault'), 'db'), path.join(repo('vault'), 'db', 'current'), path.join(repo('vault'), 'locks')])
      assert.equal(st(p).uid, apache, p);
    for (const p of [
      env('vault'),
      path.join(env('vault'), 'conf', 'trac.ini'),
      path.join(env('vault'), 'plugins'),
      path.join(env('vault'), 'templates'),
      path.join(env('vault'), 'htdocs'),
      l.tracInherit,
      path.join(l.apacheDir, 'trac.wsgi'),
      path.join(l.libDir, 'trac_guard.py'),
    ])
      assert.equal(st(p).uid, 0, p);
    for (const p of [path.join(env('vault'), 'db'), path.join(env('vault'), 'db', 'trac.db'), path.join(env('vault'), 'files')])
      assert.equal(st(p).uid, trac, p);
    assert.equal(mode(path.join(env('vault'), 'db')), 0o700);
    // What each user can actually do, asked of the kernel.
    const T = h.cfg.tracUser;
    const A = h.cfg.apacheUser;
    assert.notEqual(asUser(T, ['test', '-w', path.join(env('vault'), 'conf', 'trac.ini')]), 0, 'Trac can write trac.ini');
    assert.notEqual(asUser(T, ['test', '-w', path.join(env('vault'), 'plugins')]), 0, 'Trac can write plugins/');
    assert.notEqual(asUser(T, ['test', '-w', path.join(repo('vault'), 'db')]), 0, 'Trac can write a repository');
    assert.notEqual(asUser(T, ['test', '-w', path.join(repo('vault'), 'hooks')]), 0, 'Trac can write hooks/');
    assert.notEqual(asUser(T, ['cat', l.authDb]), 0, 'Trac can read the credentials');
    assert.notEqual(asUser(T, ['cat', l.db]), 0, "Trac can read Keelson's database");
    assert.equal(asUser(T, ['test', '-r', path.join(repo('vault'), 'db', 'current')]), 0, 'Trac cannot read a repository');
    assert.equal(asUser(T, ['test', '-w', path.join(env('vault'), 'db', 'trac.db')]), 0, 'Trac cannot write its database');
    assert.notEqual(asUser(A, ['test', '-w', path.join(repo('vault'), 'conf', 'authz')]), 0, 'Apache can write authz');
    assert.notEqual(asUser(A, ['test', '-w', path.join(repo('vault'), 'hooks')]), 0, 'Apache can write hooks/');
    assert.notEqual(asUser(A, ['test', '-r', path.join(env('vault'), 'db', 'trac.db')]), 0, 'Apache can read a Trac database');
    assert.notEqual(asUser(A, ['cat', l.db]), 0, "Apache can read Keelson's database");
    assert.equal(asUser(A, ['cat', l.authDb]), 0, 'Apache cannot read the credentials');
  });

  it('the Trac daemon and the Trac helper run as the Trac user, never root', async () => {
    await h.run.reconciler.trac.call('ping');
    const trac = Number(execFileSync('id', ['-u', h.cfg.tracUser]).toString().trim());
    const ps = execFileSync('ps', ['-eo', 'uid=,args=']).toString().split('\n');
    const procs = (needle: string) => ps.filter((l) => l.includes(needle)).map((l) => Number(l.trim().split(/\s+/)[0]));
    const helper = procs(path.join(layout(h.cfg).libDir, 'trac_helper.py'));
    assert.ok(helper.length >= 1, 'no Trac helper process');
    assert.deepEqual([...new Set(helper)], [trac]);
    // mod_wsgi's daemons carry the display name in place of apache2 in their command line.
    const conf = path.join(layout(h.cfg).apacheDir, 'httpd.conf');
    const daemons = ps.filter((l) => l.includes(conf) && /^\s*\d+\s+keelson\b/.test(l)).map((l) => Number(l.trim().split(/\s+/)[0]));
    assert.ok(daemons.length >= 1, `no Trac daemon in ps:\n${ps.filter((l) => l.includes(conf)).join('\n')}`);
    assert.deepEqual([...new Set(daemons)], [trac]);
  });

  it('an install from before the isolation is converted by the migration: owners lose TRAC_ADMIN, files get their owners, "* = rw" becomes read', async () => {
    await addProject('legacy', 'Legacy', 'public', 'mallory');
    // The state an earlier release left: everything Apache's user's, owners with TRAC_ADMIN, a
    // rule letting everyone write, a plugin in the environment.
    const apache = Number(execFileSync('id', ['-u', h.cfg.apacheUser]).toString().trim());
    const perms = await h.run.reconciler.trac.call<[string, string][]>('list_perms', { path: env('legacy') });
    await h.run.reconciler.trac.call('prepare_env', { target: env('legacy'), perms: [...perms, ['@owner', 'TRAC_ADMIN']] });
    for (const d of [env('legacy'), repo('legacy')]) await chownTree(d, { uid: apache, gid: apache });
    fs.writeFileSync(path.join(env('legacy'), 'plugins', 'old.py'), 'x = 1\n');
    h.run.db.prepare(`INSERT INTO path_rules (project_id, path, subject, access) VALUES (?, '/trunk', '*', 'rw')`).run(ids.legacy!);
    // Migration 5 itself again (later ones add columns, which SQLite cannot add twice).
    h.run.db.exec(MIGRATIONS[4]!);
    h.run.worker?.wake();
    // (Not every job settles: the project whose environment an earlier test broke keeps failing.)
    await until(
      'legacy reconciled',
      () =>
        h.run.db.prepare(`SELECT count(*) FROM jobs WHERE project_id = ? AND state IN ('pending','running')`).pluck().get(ids.legacy!) ===
        0,
    );
    const now = await h.run.reconciler.trac.call<[string, string][]>('list_perms', { path: env('legacy') });
    assert.ok(!now.some(([, a]) => a === 'TRAC_ADMIN'), JSON.stringify(now));
    assert.equal(fs.statSync(path.join(env('legacy'), 'conf', 'trac.ini')).uid, 0);
    assert.equal(fs.statSync(path.join(repo('legacy'), 'hooks')).uid, 0);
    assert.equal(fs.statSync(path.join(repo('legacy'), 'conf', 'authz')).uid, 0);
    assert.equal(fs.statSync(path.join(env('legacy'), 'db')).uid, Number(execFileSync('id', ['-u', h.cfg.tracUser]).toString().trim()));
    assert.ok(!fs.existsSync(path.join(env('legacy'), 'plugins', 'old.py')));
    const rule = h.run.db.prepare(`SELECT access FROM path_rules WHERE project_id = ? AND subject = '*'`).pluck().get(ids.legacy!);
    assert.equal(rule, 'r');
    const authz = fs.readFileSync(path.join(repo('legacy'), 'conf', 'authz'), 'utf8');
    assert.match(authz, /\[\/trunk\]\n\* = r\n/);
    // And it still serves: anonymous reads the public project over SVN and in Trac.
    assert.equal((await svn(['info', `${h.svnUrl('legacy')}/trunk`])).code, 0);
    assert.equal((await http(`${h.tracUrl('legacy')}/wiki`)).status, 200);
  });

  it('owners still administer their own Trac: milestones, components, versions, wiki pages, reports', async () => {
    const base = h.tracUrl('evil');
    const m = creds('mallory');
    assert.ok([200, 303].includes((await tracPost(`${base}/admin/ticket/milestones`, m, { name: 'm-one', add: 'Add' })).status));
    assert.ok(
      [200, 303].includes((await tracPost(`${base}/admin/ticket/components`, m, { name: 'c-one', owner: 'mallory', add: 'Add' })).status),
    );
    assert.ok([200, 303].includes((await tracPost(`${base}/admin/ticket/versions`, m, { name: 'v-one', add: 'Add' })).status));
    assert.ok(
      [200, 303].includes(
        (await tracPost(`${base}/wiki/OwnersPage`, m, { action: 'edit', text: 'Owners edit wiki pages.', version: '0', save: 'Submit' }))
          .status,
      ),
    );
    const rep = await tracPost(`${base}/report`, m, {
      action: 'new',
      title: 'Open tickets',
      query: 'SELECT id FROM ticket',
      description: '',
    });
    assert.ok([200, 303].includes(rep.status), String(rep.status));
    assert.match((await http(`${base}/roadmap`, m)).body, /m-one/);
    assert.match((await http(`${base}/admin/ticket/components`, m)).body, /c-one/);
    assert.match((await http(`${base}/admin/ticket/versions`, m)).body, /v-one/);
    assert.match((await http(`${base}/wiki/OwnersPage`, m)).body, /Owners edit wiki pages/);
    assert.match((await http(`${base}/report`, m)).body, /Open tickets/);
    // Someone who is not an owner of the project cannot administer it.
    const other = await req('GET', `${base}/admin/ticket/components`, { creds: creds('vic') });
    assert.ok(other.status === 403 || other.status === 404, String(other.status));
    assert.ok(!other.body.includes('c-one'));
  });
});

/**
 * Issue 19, access logs: Keelson run as an operator runs it (`keelson serve`, logging on, its
 * stderr kept), used with every secret it handles: an admin bearer token, web passwords, an invite
 * code, a session cookie and CSRF token, an SVN/Trac access token through Apache. Afterwards both
 * logs say who did what (the API one line per request with its status and duration; Apache user,
 * status, bytes and time taken per request) and neither holds any of those secrets.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import request from 'supertest';
import { PROJECT_ROOT } from '../../src/paths.js';
import { freePort, svn, tempDataDir, until } from '../helpers/host.js';

const MAIN = path.join(PROJECT_ROOT, 'dist', 'src', 'cli', 'main.js');
const PW_ALICE = 'tangerine-orbit-7391-secret';
const PW_BOB = 'lantern-quartz-2864-secret';

describe('access logs, and no secret in them', () => {
  let dataDir: string;
  let env: NodeJS.ProcessEnv;
  let child: ChildProcess;
  let stderrFile: string;
  let api: string;
  let svnBase: string;
  const secrets: Record<string, string> = {};

  before(async () => {
    dataDir = tempDataDir('access-log');
    const httpPort = await freePort();
    const apachePort = await freePort();
    env = {
      PATH: process.env.PATH,
      KEELSON_DATA_DIR: dataDir,
      KEELSON_HTTP_PORT: String(httpPort),
      KEELSON_APACHE_PORT: String(apachePort),
    };
    api = `http://127.0.0.1:${httpPort}`;
    svnBase = `http://127.0.0.1:${apachePort}/svn`;
    const tok = spawnSync(process.execPath, [MAIN, 'token', 'create', '--name', 'ops'], { env, encoding: 'utf8' });
    assert.equal(tok.status, 0, tok.stderr);
    secrets.bearer = tok.stdout.trim();
    stderrFile = path.join(dataDir, 'keelson.stderr');
    const fd = fs.openSync(stderrFile, 'w');
    child = spawn(process.execPath, [MAIN, 'serve', '--no-scheduler'], { env, stdio: ['ignore', 'ignore', fd] });
    fs.closeSync(fd);
    await until('keelson answers', async () => (await fetch(`${api}/api/v1/health`).catch(() => undefined))?.ok, 60_000);
  });
  after(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('is used with every secret it handles', async () => {
    const admin = request(api);
    const bearer = { authorization: `Bearer ${secrets.bearer}` };
    const u = await admin.post('/api/v1/users').set(bearer).send({ name: 'alice', email: 'alice@example.com', password: PW_ALICE });
    assert.equal(u.status, 201, JSON.stringify(u.body));
    secrets.alicePassword = PW_ALICE;
    secrets.aliceToken = u.body.accessToken;
    const inv = await admin.post('/api/v1/invites').set(bearer).send({ email: 'bob@example.com' });
    assert.equal(inv.status, 201, JSON.stringify(inv.body));
    secrets.invite = inv.body.code;
    const p = await admin.post('/api/v1/projects').set(bearer).send({ slug: 'logged', owner: 'alice', visibility: 'private' });
    assert.equal(p.status, 201, JSON.stringify(p.body));
    await until('logged active', async () => (await admin.get('/api/v1/projects/logged').set(bearer)).body.state === 'active', 30_000);

    // Bob signs up in the web UI with the invite code (sent in the form, and in the query string too).
    const bob = request.agent(api);
    const page = await bob.get(`/signup?invite=${secrets.invite}`);
    const csrf = /<meta name="csrf-token" content="([^"]+)">/.exec(page.text)![1]!;
    secrets.csrf = csrf;
    const su = await bob
      .post('/signup')
      .type('form')
      .send({ _csrf: csrf, username: 'bob', email: 'bob@example.com', password: PW_BOB, invite: secrets.invite });
    assert.equal(su.status, 201, su.text.slice(0, 300));
    secrets.bobPassword = PW_BOB;
    const cookie = (su.headers['set-cookie'] as unknown as string[]).find(
      (c) => c.startsWith('keelson_session=') || c.startsWith('__Host-keelson_session='),
    )!;
    secrets.session = /=([^;]+)/.exec(cookie)![1]!;
    assert.equal((await bob.get('/dashboard')).status, 200);

    // Alice signs in with her password, and uses Subversion and Trac with her access token.
    const alice = request.agent(api);
    const login = await alice.get('/login');
    const c2 = /<meta name="csrf-token" content="([^"]+)">/.exec(login.text)![1]!;
    secrets.csrfAlice = c2;
    assert.equal((await alice.post('/login').type('form').send({ _csrf: c2, username: 'alice', password: PW_ALICE })).status, 303);
    const wc = fs.mkdtempSync(path.join(os.tmpdir(), 'wc-log-'));
    try {
      const co = await svn(['checkout', `${svnBase}/logged/trunk`, wc], { user: 'alice', password: secrets.aliceToken! });
      assert.equal(co.code, 0, co.stderr);
    } finally {
      fs.rmSync(wc, { recursive: true, force: true });
    }
    const trac = await fetch(`${svnBase.replace('/svn', '/trac')}/logged/login`, {
      headers: { authorization: 'Basic ' + Buffer.from(`alice:${secrets.aliceToken}`).toString('base64') },
      redirect: 'manual',
    });
    assert.ok([302, 303].includes(trac.status), String(trac.status));
  });

  it('the API logs one line per request with method, path, status, time and who; Apache user, status, bytes and time', async () => {
    // Let the last lines reach the files.
    await new Promise((r) => setTimeout(r, 500));
    const lines = fs
      .readFileSync(stderrFile, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const requests = lines.filter((l) => l.msg === 'request');
    const created = requests.find((l) => l.path === '/api/v1/users' && l.method === 'POST');
    assert.ok(created, JSON.stringify(requests.slice(0, 5)));
    assert.equal(created.status, 201);
    assert.equal(created.actor, 'token:ops');
    assert.equal(typeof created.ms, 'number');
    assert.ok(requests.some((l) => l.path === '/signup' && l.method === 'POST' && l.status === 201));
    assert.ok(requests.some((l) => l.path === '/dashboard' && l.actor === 'user:bob'));
    const apacheLog = fs.readFileSync(path.join(dataDir, 'apache', 'logs', 'access.log'), 'utf8');
    assert.match(apacheLog, /^\S+ 127\.0\.0\.1 - "OPTIONS \/svn\/logged\/trunk HTTP\/1\.1" 401 \d+ \d+$/m);
    assert.match(apacheLog, /^\S+ 127\.0\.0\.1 alice "REPORT \/svn\/logged\/!svn\/me HTTP\/1\.1" 200 \d+ \d+$/m);
    assert.match(apacheLog, /^\S+ 127\.0\.0\.1 alice "GET \/trac\/logged\/login HTTP\/1\.1" 30[23] \d+ \d+$/m);
  });

  it('neither log holds a password, token, invite code, session cookie or CSRF token', () => {
    const texts = {
      keelson: fs.readFileSync(stderrFile, 'utf8'),
      apache: fs.readFileSync(path.join(dataDir, 'apache', 'logs', 'access.log'), 'utf8'),
      apacheErrors: fs.readFileSync(path.join(dataDir, 'apache', 'logs', 'error.log'), 'utf8'),
    };
    assert.equal(Object.keys(secrets).length, 8, Object.keys(secrets).join(', '));
    for (const [log, text] of Object.entries(texts)) {
      assert.ok(text.length > 0 || log === 'apacheErrors', `${log} is empty`);
      for (const [what, secret] of Object.entries(secrets)) assert.ok(!text.includes(secret), `${log} holds the ${what}`);
    }
  });
});

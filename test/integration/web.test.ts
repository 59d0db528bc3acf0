import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import request from 'supertest';
import { loadConfig } from '../../src/config.js';
import { openDatabase, type DB } from '../../src/store/db.js';
import { createApp } from '../../src/main/app.js';
import { makeContext } from '../../src/main/context.js';
import { createApiToken, createProject, createUser, setCapacity, setMember } from '../helpers/seed.js';
import { getProject } from '../../src/store/projects.js';
import { getUser } from '../../src/store/users.js';
import { tempDataDir } from '../helpers/host.js';
import { hashPassword } from '../../src/sys/password.js';

/**
 * The web UI's security rules, over HTTP against the real app (its own database; no Apache is
 * needed for these): CSRF refusals, login and signup throttling, no user enumeration, cookie
 * flags, expired sessions that keep what was typed, and form validation next to the field.
 */
const dirs: string[] = [];
const dbs: DB[] = [];
after(() => {
  for (const d of dbs) d.close();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function makeApp(env: Record<string, string> = {}) {
  const dataDir = tempDataDir('web');
  dirs.push(dataDir);
  const cfg = loadConfig({ KEELSON_DATA_DIR: dataDir, ...env });
  const db = openDatabase(`${dataDir}/keelson.db`);
  dbs.push(db);
  process.env.KEELSON_LOG ??= 'silent';
  const app = createApp({ ctx: makeContext(db, cfg) });
  return { app, db, cfg };
}

type Agent = ReturnType<typeof request.agent>;
const csrfOf = (html: string) => {
  const m = /<meta name="csrf-token" content="([^"]+)">/.exec(html);
  assert.ok(m, 'page has a CSRF token');
  return m[1]!;
};
async function csrf(agent: Agent, path = '/login'): Promise<string> {
  const r = await agent.get(path);
  return csrfOf(r.text);
}
async function signIn(agent: Agent, username: string, password: string) {
  const token = await csrf(agent);
  return agent.post('/login').type('form').send({ _csrf: token, username, password });
}
const PW = 'correct horse battery';
// Hashed once: the store takes a computed hash (hashing is the use case's, off the event loop).
const PW_HASH = await hashPassword(PW);
/** The start tag of the element with this id, whitespace collapsed (attribute order does not matter to callers). */
const tagOf = (html: string, id: string) => new RegExp(`<[a-z]+\\s[^>]*\\bid="${id}"[^>]*>`).exec(html)?.[0].replace(/\s+/g, ' ') ?? '';
const count = (db: DB, table: string) => (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;

describe('web UI security', () => {
  it("serves web/static/ under /static/ and nothing else of web/ (the pages' sources live beside it)", async () => {
    const { app } = makeApp();
    const js = await request(app).get('/static/app.js');
    assert.equal(js.status, 200);
    assert.match(js.headers['content-type'] ?? '', /javascript/);
    assert.equal((await request(app).get('/static/style.css')).status, 200);
    for (const p of ['/kit.ts', '/html.ts', '/routes.js', '/static/../kit.ts', '/static/%2e%2e/kit.ts'])
      assert.equal((await request(app).get(p)).status, 404, p);
  });

  it('refuses state-changing requests without the CSRF token (403), forms and fetch alike', async () => {
    const { app, db } = makeApp();
    createUser(db, 'test', { name: 'alice', email: 'alice@example.com', passwordHash: PW_HASH });
    const a = request.agent(app);
    // Login itself needs the token (login CSRF).
    const bare = await a.post('/login').type('form').send({ username: 'alice', password: PW });
    assert.equal(bare.status, 403);
    assert.match(bare.text, /CSRF/);
    const ok = await signIn(a, 'alice', PW);
    assert.equal(ok.status, 303);
    assert.equal(ok.headers.location, '/dashboard');
    const token = await csrf(a, '/dashboard');

    // A forged form post: the browser sends the cookies, but the page's token is missing or wrong.
    const forged = await a.post('/projects').type('form').send({ slug: 'forged', visibility: 'private' });
    assert.equal(forged.status, 403);
    const wrong = await a
      .post('/projects')
      .type('form')
      .send({ _csrf: token.slice(0, -2) + 'xx', slug: 'forged', visibility: 'private' });
    assert.equal(wrong.status, 403);
    // A token from another browser does not fit this one.
    const other = request.agent(app);
    const otherToken = await csrf(other);
    assert.equal((await a.post('/projects').type('form').send({ _csrf: otherToken, slug: 'forged' })).status, 403);
    // The JSON API with a session cookie: same rule, the token in X-CSRF-Token.
    const api = await a.post('/api/v1/projects').send({ slug: 'forged', visibility: 'private' });
    assert.equal(api.status, 403);
    assert.equal(api.body.error.code, 'csrf');
    assert.equal((await a.delete('/api/v1/session')).status, 403);
    assert.equal(count(db, 'projects'), 0);

    // With the token, the same requests go through.
    const made = await a.post('/api/v1/projects').set('x-csrf-token', token).send({ slug: 'real-one', visibility: 'private' });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const form = await a.post('/projects').type('form').send({ _csrf: token, slug: 'real-two', visibility: 'public' });
    assert.equal(form.status, 303);
    assert.equal(form.headers.location, '/p/real-two');
    assert.equal(count(db, 'projects'), 2);
    // Admin bearer tokens need no CSRF token (no browser sends them on its own).
    const bearer = createApiToken(db, 'ops');
    const viaToken = await request(app)
      .post('/api/v1/projects')
      .set('authorization', `Bearer ${bearer}`)
      .send({ slug: 'by-token', owner: 'alice' });
    assert.equal(viaToken.status, 201);
  });

  it('session cookies are HttpOnly and SameSite=Lax, and Secure with the __Host- prefix behind https', async () => {
    const { app, db } = makeApp();
    createUser(db, 'test', { name: 'alice', email: 'alice@example.com', passwordHash: PW_HASH });
    const r = await signIn(request.agent(app), 'alice', PW);
    const c = ([] as string[]).concat(r.headers['set-cookie'] ?? []).find((x) => x.startsWith('keelson_session='));
    assert.ok(c, 'a session cookie is set');
    assert.match(c, /HttpOnly/);
    assert.match(c, /SameSite=Lax/);
    assert.doesNotMatch(c, /Secure/);
    const tls = makeApp({ KEELSON_PUBLIC_URL: 'https://hosting.example.org' });
    createUser(tls.db, 'test', { name: 'alice', email: 'alice@example.com', passwordHash: PW_HASH });
    // (supertest's cookie jar keeps Secure cookies away from http, so the browser id is sent by hand.)
    const first = await request(tls.app).get('/login');
    // __Host-: only this exact host over https may set it (no Domain, Path=/), so no other host name
    // (the one serving tenants' SVN and Trac included) can plant or overwrite Keelson's cookies.
    const bid = ([] as string[]).concat(first.headers['set-cookie'] ?? []).find((x) => x.startsWith('__Host-keelson_bid='))!;
    assert.match(bid, /Path=\/; HttpOnly; SameSite=Lax; Max-Age=\d+; Secure/);
    assert.doesNotMatch(bid, /Domain=/i);
    const r2 = await request(tls.app)
      .post('/login')
      .set('cookie', bid.split(';')[0]!)
      .type('form')
      .send({ _csrf: csrfOf(first.text), username: 'alice', password: PW });
    assert.equal(r2.status, 303);
    const c2 = ([] as string[]).concat(r2.headers['set-cookie'] ?? []).find((x) => x.startsWith('__Host-keelson_session='));
    assert.match(c2!, /Path=\/; HttpOnly; SameSite=Lax; Secure/);
    // Over TLS a cookie without the prefix (which any host could have set) is not Keelson's.
    const token = c2!.split(';')[0]!.split('=')[1];
    assert.equal((await request(tls.app).get('/dashboard').set('cookie', `__Host-keelson_session=${token}`)).status, 200);
    const plain = await request(tls.app).get('/dashboard').set('cookie', `keelson_session=${token}`);
    assert.equal(plain.status, 303, 'a plain-named session cookie must not sign anyone in over TLS');
  });

  it('throttles failed logins per (account, address) pair and per address', async () => {
    const { app, db } = makeApp({ KEELSON_LOGIN_LIMIT_ACCOUNT: '3/900', KEELSON_LOGIN_LIMIT_ADDRESS: '6/900' });
    createUser(db, 'test', { name: 'alice', email: 'alice@example.com', passwordHash: PW_HASH });
    createUser(db, 'test', { name: 'bob', email: 'bob@example.com', passwordHash: PW_HASH });
    const a = request.agent(app);
    for (let i = 0; i < 3; i++) assert.equal((await signIn(a, 'alice', 'wrong password ' + i)).status, 401);
    // Now even the right password is refused for alice, with Retry-After.
    const locked = await signIn(a, 'alice', PW);
    assert.equal(locked.status, 429);
    assert.ok(Number(locked.headers['retry-after']) > 0);
    assert.match(locked.text, /Too many failed sign-ins/);
    // The JSON API shares the counter.
    const t = await csrf(a);
    const viaApi = await a.post('/api/v1/session').set('x-csrf-token', t).send({ username: 'alice', password: PW });
    assert.equal(viaApi.status, 429);
    // Another account from the same address is not locked by alice's failures...
    assert.equal((await signIn(a, 'bob', PW)).status, 303);
    // ...but the address is, once it has failed often enough across names (3 so far, limit 6).
    const b = request.agent(app);
    for (let i = 0; i < 3; i++) assert.equal((await signIn(b, `nobody${i}`, 'whatever password')).status, 401);
    assert.equal((await signIn(b, 'bob', PW)).status, 429);
  });

  it('throttles signups per address', async () => {
    const { app, db } = makeApp({ KEELSON_SIGNUP_LIMIT_ADDRESS: '3/3600' });
    const a = request.agent(app);
    for (let i = 0; i < 3; i++) {
      const t = await csrf(a, '/signup');
      const r = await a
        .post('/signup')
        .type('form')
        .send({ _csrf: t, username: `user${i}`, email: `u${i}@example.com`, password: PW });
      assert.equal(r.status, 201, r.text.slice(0, 300));
      // Signing up gave the browser a new CSRF token: the page it landed on carries it.
      await a
        .post('/logout')
        .type('form')
        .send({ _csrf: csrfOf(r.text) });
    }
    const t = await csrf(a, '/signup');
    const r = await a.post('/signup').type('form').send({ _csrf: t, username: 'user9', email: 'u9@example.com', password: PW });
    assert.equal(r.status, 429);
    assert.match(r.text, /Too many signups from your address/);
    assert.equal(count(db, 'users'), 3);
    // The JSON signup counts against the same address.
    const api = await request.agent(app).get('/api/v1/session');
    const j = await request(app)
      .post('/api/v1/signup')
      .set(
        'cookie',
        ([] as string[])
          .concat(api.headers['set-cookie'] ?? [])
          .map((c) => c.split(';')[0])
          .join('; '),
      )
      .set('x-csrf-token', api.body.csrfToken)
      .send({ username: 'user8', email: 'u8@example.com', password: PW });
    assert.equal(j.status, 429);
    assert.equal(j.body.error.code, 'throttled');
  });

  it('behind a trusted proxy, throttles each client address apart; an untrusted X-Forwarded-For changes nothing', async () => {
    const attempt = async (app: ReturnType<typeof makeApp>['app'], xff: string, name: string) => {
      const a = request.agent(app);
      const page = await a.get('/signup').set('x-forwarded-for', xff);
      return a
        .post('/signup')
        .set('x-forwarded-for', xff)
        .type('form')
        .send({ _csrf: csrfOf(page.text), username: name, email: `${name}@example.com`, password: PW });
    };
    const proxied = makeApp({ KEELSON_SIGNUP_LIMIT_ADDRESS: '1/3600', KEELSON_TRUST_PROXY: 'loopback' });
    assert.equal((await attempt(proxied.app, '203.0.113.1', 'pa')).status, 201);
    assert.equal((await attempt(proxied.app, '203.0.113.1', 'pb')).status, 429);
    assert.equal((await attempt(proxied.app, '203.0.113.2', 'pc')).status, 201, 'another client is not locked out');
    const direct = makeApp({ KEELSON_SIGNUP_LIMIT_ADDRESS: '1/3600' });
    assert.equal((await attempt(direct.app, '203.0.113.1', 'da')).status, 201);
    assert.equal((await attempt(direct.app, '203.0.113.2', 'db')).status, 429, 'a forged header does not buy new attempts');
  });

  it('only owners change a project and only admins reach operator pages, checked on the server; titles are escaped', async () => {
    const { app, db } = makeApp();
    for (const n of ['alice', 'dev', 'vic', 'nora']) createUser(db, 'test', { name: n, email: `${n}@example.com`, passwordHash: PW_HASH });
    createProject(db, 'test', { slug: 'proj', title: '<script>alert(1)</script>', visibility: 'private', owner: 'alice' });
    setMember(db, 'test', 'proj', 'dev', 'developer');
    setMember(db, 'test', 'proj', 'vic', 'viewer');
    const snapshot = () => JSON.stringify([db.prepare(`SELECT * FROM memberships ORDER BY user_id`).all(), getProject(db, 'proj')]);
    const before = snapshot();
    for (const [who, status] of [
      ['dev', 403],
      ['vic', 403],
      ['nora', 404],
    ] as const) {
      const a = request.agent(app);
      assert.equal((await signIn(a, who, PW)).status, 303);
      const t = await csrf(a, '/dashboard');
      const posts: [string, object][] = [
        ['/p/proj/members', { username: 'nora', role: 'owner' }],
        ['/p/proj/members/alice/role', { role: 'viewer' }],
        ['/p/proj/members/alice/remove', {}],
        ['/p/proj/settings', { title: 'taken over', visibility: 'public' }],
        ['/p/proj/delete', { confirm: 'proj' }],
      ];
      for (const [url, body] of posts) {
        const r = await a
          .post(url)
          .type('form')
          .send({ _csrf: t, ...body });
        assert.equal(r.status, status, `${who} POST ${url}`);
        // Refused for the role, not for the token (a CSRF refusal is a 403 too).
        assert.doesNotMatch(r.text, /CSRF/, `${who} POST ${url}`);
      }
      assert.equal((await a.get('/admin')).status, 403, `${who} GET /admin`);
      const cap = await a.post('/admin/capacity').type('form').send({ _csrf: t, maxProjects: '0' });
      assert.equal(cap.status, 403);
      assert.doesNotMatch(cap.text, /CSRF/, `${who} POST /admin/capacity`);
    }
    assert.equal(snapshot(), before, 'nothing changed');
    const owner = request.agent(app);
    await signIn(owner, 'alice', PW);
    // Control: the owner's identical POST, with a token obtained the same way, goes through.
    const ownerToken = await csrf(owner, '/dashboard');
    const renamed = await owner
      .post('/p/proj/settings')
      .type('form')
      .send({ _csrf: ownerToken, title: '<script>alert(1)</script>', visibility: 'public' });
    assert.equal(renamed.status, 303);
    assert.equal(getProject(db, 'proj')!.visibility, 'public');
    assert.notEqual(snapshot(), before, 'the owner changed the project');
    for (const page of ['/dashboard', '/p/proj']) {
      const html = (await owner.get(page)).text;
      assert.match(html, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/, page);
      assert.doesNotMatch(html, /<script>alert/, page);
    }
  });

  it('signing in gives the browser a new CSRF token: one seen before no longer works', async () => {
    const { app, db } = makeApp();
    createUser(db, 'test', { name: 'alice', email: 'alice@example.com', passwordHash: PW_HASH });
    const a = request.agent(app);
    const before = await csrf(a);
    assert.equal((await a.post('/login').type('form').send({ _csrf: before, username: 'alice', password: PW })).status, 303);
    const stale = await a.post('/account/token').type('form').send({ _csrf: before });
    assert.equal(stale.status, 403);
    const fresh = await csrf(a, '/account');
    assert.notEqual(fresh, before);
    assert.equal((await a.post('/account/token').type('form').send({ _csrf: fresh })).status, 201);
  });

  it('an operator disables and enables a user from the users page; the sole owner of a project cannot be disabled', async () => {
    const { app, db } = makeApp();
    createUser(db, 'test', { name: 'opal', email: 'opal@example.com', passwordHash: PW_HASH, isAdmin: true });
    for (const n of ['alice', 'bob']) createUser(db, 'test', { name: n, email: `${n}@example.com`, passwordHash: PW_HASH });
    createProject(db, 'test', { slug: 'proj', title: 'Proj', visibility: 'private', owner: 'alice' });
    const op = request.agent(app);
    await signIn(op, 'opal', PW);
    const page = await op.get('/admin/users');
    assert.match(page.text, /action="\/admin\/users\/bob\/disable"/);
    const t = csrfOf(page.text);
    assert.equal((await op.post('/admin/users/bob/disable').type('form').send({ _csrf: t })).status, 303);
    assert.ok(db.prepare(`SELECT disabled_at FROM users WHERE name = 'bob'`).pluck().get());
    assert.equal((await signIn(request.agent(app), 'bob', PW)).status, 401, 'a disabled user cannot sign in');
    assert.equal((await op.post('/admin/users/bob/enable').type('form').send({ _csrf: t })).status, 303);
    assert.equal(db.prepare(`SELECT disabled_at FROM users WHERE name = 'bob'`).pluck().get(), null);
    const sole = await op.post('/admin/users/alice/disable').type('form').send({ _csrf: t });
    assert.equal(sole.status, 409);
    assert.match(sole.text, /only owner of proj/);
    const user = request.agent(app);
    await signIn(user, 'bob', PW);
    assert.equal(
      (
        await user
          .post('/admin/users/alice/disable')
          .type('form')
          .send({ _csrf: await csrf(user, '/dashboard') })
      ).status,
      403,
    );
  });

  it('does not tell through login which user names exist', async () => {
    const { app, db } = makeApp();
    createUser(db, 'test', { name: 'alice', email: 'alice@example.com', passwordHash: PW_HASH });
    const msg = (html: string) => /<p class="error banner" role="alert">([^<]*)<\/p>/.exec(html)?.[1];
    const known = await signIn(request.agent(app), 'alice', 'not her password');
    const unknown = await signIn(request.agent(app), 'zed', 'not her password');
    const malformed = await signIn(request.agent(app), '../Robert"); DROP', 'x');
    assert.equal(known.status, 401);
    assert.equal(unknown.status, known.status);
    assert.equal(malformed.status, known.status);
    assert.equal(msg(known.text), 'Wrong user name or password.');
    assert.equal(msg(unknown.text), msg(known.text));
    assert.equal(msg(malformed.text), msg(known.text));
    // Same for the JSON API: same status, same body.
    const s = request.agent(app);
    const t = (await s.get('/api/v1/session')).body.csrfToken;
    const k = await s.post('/api/v1/session').set('x-csrf-token', t).send({ username: 'alice', password: 'nope nope nope' });
    const u = await s.post('/api/v1/session').set('x-csrf-token', t).send({ username: 'zed', password: 'nope nope nope' });
    assert.equal(k.status, 401);
    assert.equal(u.status, 401);
    assert.deepEqual(k.body, u.body);
    // A disabled account answers like a wrong password too.
    db.prepare(`UPDATE users SET disabled_at = '2026-01-01' WHERE name = 'alice'`).run();
    const disabled = await signIn(request.agent(app), 'alice', PW);
    assert.equal(disabled.status, 401);
    assert.equal(msg(disabled.text), msg(known.text));
  });

  it('validates forms with the API schemas and shows each message next to its field', async () => {
    const { app, db } = makeApp();
    createUser(db, 'test', { name: 'taken', email: 'taken@example.com', passwordHash: PW_HASH });
    const a = request.agent(app);
    const t = await csrf(a, '/signup');
    const bad = await a.post('/signup').type('form').send({
      _csrf: t,
      username: 'taken',
      email: 'not-an-email',
      password: 'short',
      'project.slug': 'Bad_Slug',
      'project.visibility': 'private',
    });
    assert.equal(bad.status, 400);
    const errOf = (html: string, id: string) => new RegExp(`<p id="${id}-err" class="error" role="alert">([^<]*)</p>`).exec(html)?.[1];
    assert.match(errOf(bad.text, 'su-email')!, /email/);
    assert.match(errOf(bad.text, 'su-password')!, /at least 10 characters/);
    assert.match(errOf(bad.text, 'su-slug')!, /lowercase letters, digits and &quot;-&quot;/);
    // The input keeps what was typed (but never the password) and points at its message.
    const slugInput = tagOf(bad.text, 'su-slug');
    assert.match(slugInput, /name="project.slug"/);
    assert.match(slugInput, /value="Bad_Slug"/);
    assert.match(slugInput, /aria-describedby="su-slug-hint su-slug-err"/);
    assert.match(slugInput, /aria-invalid="true"/);
    assert.doesNotMatch(bad.text, /value="short"/);
    // Common and name-containing passwords are refused; a taken name says so next to the name.
    const weak = await a
      .post('/signup')
      .type('form')
      .send({ _csrf: t, username: 'newbie', email: 'n@example.com', password: 'password123' });
    assert.match(errOf(weak.text, 'su-password')!, /most common passwords/);
    const named = await a
      .post('/signup')
      .type('form')
      .send({ _csrf: t, username: 'newbie', email: 'n@example.com', password: 'newbie-is-great' });
    assert.match(errOf(named.text, 'su-password')!, /must not contain your user name/);
    const dup = await a.post('/signup').type('form').send({ _csrf: t, username: 'taken', email: 'n@example.com', password: PW });
    assert.equal(dup.status, 409);
    assert.match(errOf(dup.text, 'su-username')!, /taken is taken/);
    // The API gives the same rules as JSON.
    const api = await a
      .post('/api/v1/signup')
      .set('x-csrf-token', t)
      .send({ username: 'ok', email: 'x@example.com', password: 'aaaaaaaaaaaa' });
    assert.equal(api.status, 400);
    assert.match(api.body.error.message, /password: use at least 5 different characters/);
    assert.equal(count(db, 'users'), 1);
  });

  it('an expired session sends the form through sign-in and brings back what was typed', async () => {
    const { app, db } = makeApp();
    createUser(db, 'test', { name: 'alice', email: 'alice@example.com', passwordHash: PW_HASH });
    const a = request.agent(app);
    await signIn(a, 'alice', PW);
    const t = await csrf(a, '/dashboard');
    db.prepare(`UPDATE sessions SET expires_at = 0`).run();
    // A page view redirects to login and remembers where it was going.
    const view = await a.get('/account');
    assert.equal(view.status, 303);
    assert.equal(view.headers.location, '/login?next=%2Faccount&expired=1');
    // A form post shows the login form with the typed values carried along, and creates nothing.
    const post = await a
      .post('/projects')
      .type('form')
      .send({ _csrf: t, _page: '/dashboard', slug: 'kept-slug', title: 'Kept title', visibility: 'public' });
    assert.equal(post.status, 401);
    assert.match(post.text, /Your session has expired/);
    assert.equal(count(db, 'projects'), 0);
    const draft = /name="draft" value="([^"]+)"/.exec(post.text)![1]!.replace(/&quot;/g, '"');
    const login = await a
      .post('/login')
      .type('form')
      .send({ _csrf: csrfOf(post.text), username: 'alice', password: PW, next: '/dashboard', draft });
    assert.equal(login.status, 303);
    assert.equal(login.headers.location, '/dashboard');
    // Only local paths are followed after sign-in (no open redirect).
    for (const next of ['//evil.example/x', '/\\evil.example/x', 'https://evil.example/', '/ok\\..']) {
      const b = request.agent(app);
      const token = await csrf(b);
      const r = await b.post('/login').type('form').send({ _csrf: token, username: 'alice', password: PW, next });
      assert.equal(r.headers.location, '/dashboard', `${next}: ${r.status} ${r.text.slice(0, 200)}`);
    }
    const back = await a.get('/dashboard');
    assert.equal(back.status, 200);
    assert.match(back.text, /What you typed is filled in below/);
    assert.match(tagOf(back.text, 'np-slug'), /value="kept-slug"/);
    assert.match(tagOf(back.text, 'np-title'), /value="Kept title"/);
    assert.match(back.text, /<option value="public"\s+selected>/);
    // Shown once.
    assert.doesNotMatch((await a.get('/dashboard')).text, /kept-slug/);
  });

  it('the capacity gate turns signup into a waitlist without creating anything', async () => {
    const { app, db } = makeApp();
    createUser(db, 'test', { name: 'olga', email: 'olga@example.com', passwordHash: PW_HASH, isAdmin: true });
    setCapacity(db, 'test', {
      maxProjects: 0,
      minFreeBytes: 0,
      signupMode: 'open',
      projectStorageLimitBytes: null,
      maxProjectsPerUser: null,
    });
    const a = request.agent(app);
    const page = await a.get('/signup');
    assert.match(page.text, /not taking new projects right now/);
    assert.match(page.text, /Join the waitlist/);
    const t = csrfOf(page.text);
    const r = await a
      .post('/signup')
      .type('form')
      .send({ _csrf: t, username: 'late', email: 'late@example.com', password: PW, 'project.slug': 'late-one' });
    assert.equal(r.status, 503);
    assert.match(r.text, /Join the waitlist/);
    assert.equal(count(db, 'projects'), 0);
    assert.equal(count(db, 'users'), 1);
    const w = await a.post('/waitlist').type('form').send({ _csrf: t, email: 'late@example.com' });
    assert.equal(w.status, 202);
    assert.equal(count(db, 'waitlist'), 1);
  });

  it('an owner who removes themselves through the API gets the project as it now is (200), not a 404', async () => {
    const { app, db } = makeApp();
    createUser(db, 'test', { name: 'alice', email: 'alice@example.com', passwordHash: PW_HASH });
    createUser(db, 'test', { name: 'bob', email: 'bob@example.com', passwordHash: PW_HASH });
    createProject(db, 'test', { slug: 'proj', title: 'Proj', visibility: 'private', owner: 'alice' });
    setMember(db, 'test', 'proj', 'bob', 'owner');
    const a = request.agent(app);
    await signIn(a, 'alice', PW);
    const t = csrfOf((await a.get('/dashboard')).text);
    const r = await a.delete('/api/v1/projects/proj/members/alice').set('x-csrf-token', t);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.members, [{ user: 'bob', role: 'owner' }]);
    // From now on the private project is not hers to see.
    assert.equal((await a.get('/api/v1/projects/proj')).status, 404);
  });

  it('a rule lives in the domain, so the API keeps it too: an operator cannot disable their own account, page or JSON', async () => {
    const { app, db } = makeApp();
    createUser(db, 'test', { name: 'olga', email: 'olga@example.com', passwordHash: PW_HASH, isAdmin: true });
    createUser(db, 'test', { name: 'bob', email: 'bob@example.com', passwordHash: PW_HASH });
    const a = request.agent(app);
    await signIn(a, 'olga', PW);
    const t = csrfOf((await a.get('/admin/users')).text);
    const page = await a.post('/admin/users/olga/disable').type('form').send({ _csrf: t });
    assert.equal(page.status, 409);
    assert.match(page.text, /you cannot disable your own account/);
    const api = await a.patch('/api/v1/users/olga').set('x-csrf-token', t).send({ disabled: true });
    assert.equal(api.status, 409);
    assert.equal(api.body.error.message, 'you cannot disable your own account');
    assert.equal(getUser(db, 'olga')!.disabled_at, null);
    // Another account is disabled as before, through the same use case.
    const other = await a.patch('/api/v1/users/bob').set('x-csrf-token', t).send({ disabled: true });
    assert.equal(other.status, 200);
    assert.equal(other.body.disabled, true);
  });

  it('the operator API: capacity gate, waitlist and invites, suspension, disk samples (admin only)', async () => {
    const { app, db, cfg } = makeApp();
    const token = createApiToken(db, 'ops');
    const ops = (m: 'get' | 'put' | 'post', p: string) => request(app)[m](p).set('authorization', `Bearer ${token}`);
    createUser(db, 'test', { name: 'alice', email: 'alice@example.com', passwordHash: PW_HASH });
    assert.equal((await ops('post', '/api/v1/projects').send({ slug: 'one', owner: 'alice' })).status, 201);
    const bad = await ops('put', '/api/v1/capacity').send({ maxProjects: -1, minFreeBytes: 0, signupMode: 'sometimes' });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /maxProjects: at least 0; signupMode/);
    const shut = await ops('put', '/api/v1/capacity').send({ maxProjects: 1, minFreeBytes: 0, signupMode: 'open' });
    assert.equal(shut.status, 200);
    assert.equal(shut.body.full, 'this host has reached its limit of projects');
    // A signed-in user's project and a JSON signup both meet the gate (503 capacity); admins do not.
    const a = request.agent(app);
    let t = (await a.get('/api/v1/session')).body.csrfToken;
    const su = await a.post('/api/v1/signup').set('x-csrf-token', t).send({ username: 'bob', email: 'b@example.com', password: PW });
    assert.equal(su.status, 503);
    assert.equal(su.body.error.code, 'capacity');
    const signedIn = await a.post('/api/v1/session').set('x-csrf-token', t).send({ username: 'alice', password: PW });
    assert.equal(signedIn.status, 201);
    // Signing in replaces the browser's CSRF token; the answer carries the new one.
    assert.notEqual(signedIn.body.csrfToken, t);
    t = signedIn.body.csrfToken;
    const mine = await a.post('/api/v1/projects').set('x-csrf-token', t).send({ slug: 'two' });
    assert.equal(mine.status, 503);
    assert.equal(count(db, 'projects'), 1);
    // Invites: the code works once, past the project limit.
    const inv = await ops('post', '/api/v1/invites').send({ email: 'bob@example.com' });
    assert.equal(inv.status, 201);
    const b = request.agent(app);
    const bt = (await b.get('/api/v1/session')).body.csrfToken;
    const withCode = { username: 'bob', email: 'bob@example.com', password: PW, invite: inv.body.code, project: { slug: 'bobs' } };
    const ok = await b.post('/api/v1/signup').set('x-csrf-token', bt).send(withCode);
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    assert.equal(ok.body.project.slug, 'bobs');
    const again = await b
      .post('/api/v1/signup')
      .set('x-csrf-token', ok.body.csrfToken)
      .send({ ...withCode, username: 'bob2', project: { slug: 'bobs-two' } });
    assert.equal(again.status, 400);
    assert.match(again.body.error.message, /invite code is not valid or was already used/);
    const wl = await ops('get', '/api/v1/waitlist');
    assert.equal(wl.body.invites[0].usedBy, 'bob');
    // Suspension is an admin call; a user (even the owner) gets 403.
    assert.equal((await a.post('/api/v1/projects/one/suspend').set('x-csrf-token', t)).status, 403);
    db.prepare(`UPDATE projects SET state = 'active' WHERE slug = 'one'`).run();
    const sus = await ops('post', '/api/v1/projects/one/suspend');
    assert.deepEqual(sus.body, { slug: 'one', state: 'suspended' });
    // Suspending twice is harmless; resuming a project that is not suspended is a conflict.
    assert.deepEqual((await ops('post', '/api/v1/projects/one/suspend')).body, { slug: 'one', state: 'suspended' });
    assert.deepEqual((await ops('post', '/api/v1/projects/one/resume')).body, { slug: 'one', state: 'active' });
    assert.equal((await ops('post', '/api/v1/projects/one/resume')).status, 409);
    assert.equal((await ops('post', '/api/v1/projects/bobs/suspend')).status, 409);
    // Disk samples as JSON.
    const { sampleDisk } = await import('../../src/domain/capacity.js');
    sampleDisk(db, cfg);
    const ds = await ops('get', '/api/v1/disk-samples?hours=1');
    assert.deepEqual(ds.body.samples.map((x: { volume: string }) => x.volume).sort(), ['backup', 'data']);
    assert.ok(ds.body.samples[0].totalBytes > 0);
  });

  it('a project page stays within its 40 KB budget for any team size: members are paged', async () => {
    const { app, db } = makeApp();
    const { createProject, setMember } = await import('../helpers/seed.js');
    createUser(db, 'test', { name: 'alice', email: 'alice@example.com', passwordHash: PW_HASH });
    createProject(db, 'test', { slug: 'big', title: 'Big', visibility: 'private', owner: 'alice' });
    for (let i = 0; i < 99; i++) {
      createUser(db, 'test', { name: `member${String(i).padStart(2, '0')}`, email: `m${i}@example.com`, passwordHash: PW_HASH });
      setMember(db, 'test', 'big', `member${String(i).padStart(2, '0')}`, 'developer');
    }
    const a = request.agent(app);
    await signIn(a, 'alice', PW);
    const pages = await Promise.all([1, 2, 3].map((n) => a.get(`/p/big?members=${n}`)));
    for (const p of pages) {
      assert.equal(p.status, 200);
      assert.ok(Buffer.byteLength(p.text) <= 40 * 1024, `${Buffer.byteLength(p.text)} bytes`);
    }
    assert.match(pages[0]!.text, /members 1-40 of 100/);
    assert.match(pages[2]!.text, /members 81-100 of 100/);
    assert.match(pages[2]!.text, /member98/);
    // The row's Remove button posts the row's form to the remove action.
    const t = csrfOf(pages[0]!.text);
    const rm = await a.post('/p/big/members/member98/remove').type('form').send({ _csrf: t, _page: '/p/big', role: 'developer' });
    assert.equal(rm.status, 303);
    assert.doesNotMatch((await a.get('/p/big?members=3')).text, /member98/);
    // The dashboard and the waitlist are paged too.
    for (let i = 0; i < 24; i++) createProject(db, 'test', { slug: `proj-${i}`, title: `P${i}`, visibility: 'private', owner: 'alice' });
    const d1 = await a.get('/dashboard');
    assert.equal((d1.text.match(/<li class="project card">/g) ?? []).length, 20);
    assert.match(d1.text, /page 1 of 2 · 25 in all/);
    assert.equal(((await a.get('/dashboard?page=2')).text.match(/<li class="project card">/g) ?? []).length, 5);
    assert.ok(Buffer.byteLength(d1.text) <= 40 * 1024);
  });

  it('changing the password checks the current one, applies the policy, and signs out other sessions', async () => {
    const { app, db } = makeApp();
    createUser(db, 'test', { name: 'alice', email: 'alice@example.com', passwordHash: PW_HASH });
    const a = request.agent(app);
    const other = request.agent(app);
    await signIn(a, 'alice', PW);
    await signIn(other, 'alice', PW);
    const t = await csrf(a, '/account');
    const errOf = (html: string, id: string) => new RegExp(`<p id="${id}-err" class="error" role="alert">([^<]*)</p>`).exec(html)?.[1];
    const wrong = await a
      .post('/account/password')
      .type('form')
      .send({ _csrf: t, current: 'not it at all', password: 'a brand new phrase' });
    assert.equal(wrong.status, 400);
    assert.equal(errOf(wrong.text, 'pw-current'), 'this is not your current password');
    const weak = await a.post('/account/password').type('form').send({ _csrf: t, current: PW, password: 'alice alice alice' });
    assert.equal(weak.status, 400);
    assert.equal(errOf(weak.text, 'pw-new'), 'must not contain your user name');
    const ok = await a.post('/account/password').type('form').send({ _csrf: t, current: PW, password: 'a brand new phrase' });
    assert.equal(ok.status, 200);
    assert.match(ok.text, /Your password is changed/);
    assert.equal((await a.get('/account')).status, 200, 'this session stays');
    assert.equal((await other.get('/account')).status, 303, 'the other session is gone');
    assert.equal((await signIn(request.agent(app), 'alice', PW)).status, 401);
    assert.equal((await signIn(request.agent(app), 'alice', 'a brand new phrase')).status, 303);
  });
});

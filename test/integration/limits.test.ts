import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import request from 'supertest';
import type { Express } from 'express';
import { loadConfig, type Config } from '../../src/config.js';
import { openDatabase, type DB } from '../../src/store/db.js';
import { createApp } from '../../src/main/app.js';
import { makeContext } from '../../src/main/context.js';
import { createApiToken, setProjectState } from '../helpers/seed.js';
import { recordPublish } from '../../src/store/permissions.js';
import { sweepRetention } from '../../src/domain/retention.js';
import { tempDataDir } from '../helpers/host.js';

/**
 * Per-tenant limits (issue 17, items 4 and 5), over HTTP against the real app on its own database
 * (no Apache or worker is needed): the per-user project limit (also racing, from two processes),
 * the mutation rate limits, changes that change nothing, and the retention sweep.
 */
const dirs: string[] = [];
const dbs: DB[] = [];
after(() => {
  for (const d of dbs) d.close();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const PW = 'a long enough password';
// Sign-in limits out of the way: these tests sign many users in from one address.
const QUIET = {
  KEELSON_LOGIN_ATTEMPTS_ADDRESS: '10000/60',
  KEELSON_LOGIN_ATTEMPTS_ACCOUNT: '10000/60',
  KEELSON_LOGIN_LIMIT_ADDRESS: '10000/900',
  KEELSON_SIGNUP_LIMIT_ADDRESS: '10000/3600',
};

interface App {
  app: Express;
  db: DB;
  cfg: Config;
  dataDir: string;
  /** The operator's API (bearer token: exempt from the limits). */
  admin: {
    get(p: string): request.Test;
    post(p: string): request.Test;
    put(p: string): request.Test;
    patch(p: string): request.Test;
    delete(p: string): request.Test;
  };
}

function makeApp(env: Record<string, string> = {}): App {
  const dataDir = tempDataDir('limits');
  dirs.push(dataDir);
  const cfg = loadConfig({ KEELSON_DATA_DIR: dataDir, ...QUIET, ...env });
  const db = openDatabase(`${dataDir}/keelson.db`);
  dbs.push(db);
  process.env.KEELSON_LOG ??= 'silent';
  const app = createApp({ ctx: makeContext(db, cfg) });
  const bearer = `Bearer ${createApiToken(db, 'ops')}`;
  const admin = {
    get: (p: string) => request(app).get(p).set('authorization', bearer),
    post: (p: string) => request(app).post(p).set('authorization', bearer),
    put: (p: string) => request(app).put(p).set('authorization', bearer),
    patch: (p: string) => request(app).patch(p).set('authorization', bearer),
    delete: (p: string) => request(app).delete(p).set('authorization', bearer),
  };
  return { app, db, cfg, dataDir, admin };
}

async function user(a: App, name: string, admin = false): Promise<void> {
  const r = await a.admin.post('/api/v1/users').send({ name, email: `${name}@example.com`, password: PW, admin });
  assert.equal(r.status, 201, JSON.stringify(r.body));
}

/** A project owned by `owner`, made by the operator (who is exempt from every limit). */
async function project(a: App, slug: string, owner: string): Promise<void> {
  const r = await a.admin.post('/api/v1/projects').send({ slug, owner });
  assert.equal(r.status, 201, JSON.stringify(r.body));
}

/** A signed-in user's JSON API: session cookie plus CSRF token, as the web UI's script calls it. */
async function signedIn(a: App, name: string) {
  const agent = request.agent(a.app);
  const s = await agent.get('/api/v1/session');
  const r = await agent.post('/api/v1/session').set('x-csrf-token', s.body.csrfToken).send({ username: name, password: PW });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const token = r.body.csrfToken as string;
  return {
    agent,
    get: (p: string) => agent.get(p),
    post: (p: string) => agent.post(p).set('x-csrf-token', token),
    put: (p: string) => agent.put(p).set('x-csrf-token', token),
    patch: (p: string) => agent.patch(p).set('x-csrf-token', token),
    delete: (p: string) => agent.delete(p).set('x-csrf-token', token),
  };
}

/** The same user in the web UI: signed in through the form; `csrf()` reads the token off a page. */
async function browser(a: App, name: string) {
  const agent = request.agent(a.app);
  const login = await agent.get('/login');
  const r = await agent
    .post('/login')
    .type('form')
    .send({ _csrf: csrfOf(login.text), username: name, password: PW });
  assert.equal(r.status, 303, r.text.slice(0, 300));
  return { agent, csrf: async (page = '/dashboard') => csrfOf((await agent.get(page)).text) };
}
function csrfOf(html: string): string {
  const m = /<meta name="csrf-token" content="([^"]+)">/.exec(html);
  assert.ok(m, 'page has a CSRF token');
  return m[1]!;
}

const count = (db: DB, sql: string, ...args: unknown[]) =>
  db
    .prepare(`SELECT count(*) FROM ${sql}`)
    .pluck()
    .get(...args) as number;
const ownedBy = (db: DB, name: string) =>
  count(
    db,
    `memberships m JOIN users u ON u.id = m.user_id JOIN projects p ON p.id = m.project_id
     WHERE u.name = ? AND m.role = 'owner' AND p.state NOT IN ('deleted', 'deleting')`,
    name,
  );
const projectId = (db: DB, slug: string) =>
  db.prepare(`SELECT id FROM projects WHERE slug = ? AND state <> 'deleted'`).pluck().get(slug) as number;
const permVersion = (db: DB, slug: string) =>
  db.prepare(`SELECT perm_version FROM projects WHERE slug = ? AND state <> 'deleted'`).pluck().get(slug) as number;
/** The rows the calls of a tenant could add to: what the database grows with. */
const rows = (db: DB) => ({
  audit: count(db, 'audit_log'),
  history: count(db, 'permission_history'),
  pendingJobs: count(db, `jobs WHERE state = 'pending'`),
  jobs: count(db, 'jobs'),
  projects: count(db, 'projects'),
  memberships: count(db, 'memberships'),
  rules: count(db, 'path_rules'),
});
const setCapacity = (a: App, c: Record<string, unknown>) =>
  a.admin.put('/api/v1/capacity').send({ maxProjects: null, minFreeBytes: 0, signupMode: 'open', ...c });

describe('per-user project limit', () => {
  it("refuses the owner's project past their limit with a message about their own limit, not the host's", async () => {
    const a = makeApp();
    await user(a, 'alice');
    await user(a, 'bob');
    // The host has room for 50; alice may own 2.
    assert.equal((await setCapacity(a, { maxProjects: 50, maxProjectsPerUser: 2 })).status, 200);
    await project(a, 'bobs', 'bob');
    const alice = await signedIn(a, 'alice');
    for (const slug of ['a-one', 'a-two']) assert.equal((await alice.post('/api/v1/projects').send({ slug })).status, 201);
    const refused = await alice.post('/api/v1/projects').send({ slug: 'a-three' });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error.code, 'user_project_limit');
    assert.equal(
      refused.body.error.message,
      "you own 2 projects and your account's limit is 2; delete one or ask the operator to raise your limit",
    );
    assert.equal(ownedBy(a.db, 'alice'), 2);
    // bob is not held back by alice's projects.
    const bob = await signedIn(a, 'bob');
    assert.equal((await bob.post('/api/v1/projects').send({ slug: 'bobs-two' })).status, 201);

    // What the account looks like: to the operator and to alice herself; not to bob.
    const view = await a.admin.get('/api/v1/users/alice');
    assert.equal(view.status, 200);
    assert.deepEqual([view.body.maxProjects, view.body.projectLimit, view.body.projectsOwned], [null, 2, 2]);
    assert.equal((await alice.get('/api/v1/users/alice')).body.projectsOwned, 2);
    assert.equal((await bob.get('/api/v1/users/alice')).status, 403);

    // An operator creating a project for alice is past her limit, as past the capacity gate.
    const forAlice = await a.admin.post('/api/v1/projects').send({ slug: 'ops-for-alice', owner: 'alice' });
    assert.equal(forAlice.status, 201, JSON.stringify(forAlice.body));
    assert.equal((await a.admin.get('/api/v1/users/alice')).body.projectsOwned, 3);
    // ...and alice herself, now over it, still cannot make another.
    assert.equal((await alice.post('/api/v1/projects').send({ slug: 'alices-four' })).status, 403);
  });

  it('a per-user override (PATCH /api/v1/users/:name {maxProjects}), audited; null goes back to the default; deleting frees a place', async () => {
    const a = makeApp();
    await user(a, 'alice');
    assert.equal((await setCapacity(a, { maxProjectsPerUser: 1 })).status, 200);
    const alice = await signedIn(a, 'alice');
    assert.equal((await alice.post('/api/v1/projects').send({ slug: 'p-1' })).status, 201);
    assert.equal((await alice.post('/api/v1/projects').send({ slug: 'p-2' })).status, 403);

    // Only an operator may change it, and only to a whole number from 0, or null.
    assert.equal((await alice.patch('/api/v1/users/alice').send({ maxProjects: 5 })).status, 403);
    for (const bad of [{ maxProjects: -1 }, { maxProjects: 1.5 }, { maxProjects: '3' }, {}, { maxProjects: 3, extra: 1 }]) {
      const r = await a.admin.patch('/api/v1/users/alice').send(bad);
      assert.equal(r.status, 400, JSON.stringify(bad));
    }
    assert.match((await a.admin.patch('/api/v1/users/alice').send({ maxProjects: -1 })).body.error.message, /^maxProjects: /);

    const raised = await a.admin.patch('/api/v1/users/alice').send({ maxProjects: 3 });
    assert.equal(raised.status, 200, JSON.stringify(raised.body));
    assert.deepEqual([raised.body.name, raised.body.maxProjects, raised.body.projectLimit, raised.body.projectsOwned], ['alice', 3, 3, 1]);
    assert.equal(count(a.db, `audit_log WHERE action = 'user.max_projects' AND target = 'alice'`), 1);
    // Setting the same value again is no change: no second audit row.
    assert.equal((await a.admin.patch('/api/v1/users/alice').send({ maxProjects: 3 })).status, 200);
    assert.equal(count(a.db, `audit_log WHERE action = 'user.max_projects'`), 1);
    for (const slug of ['p-2', 'p-3']) assert.equal((await alice.post('/api/v1/projects').send({ slug })).status, 201);
    const fourth = await alice.post('/api/v1/projects').send({ slug: 'p-4' });
    assert.equal(fourth.status, 403);
    assert.match(fourth.body.error.message, /^you own 3 projects and your account's limit is 3;/);

    // Back to the operator's default (1): alice owns 3, so deleting one does not yet make room.
    const reset = await a.admin.patch('/api/v1/users/alice').send({ maxProjects: null });
    assert.deepEqual([reset.body.maxProjects, reset.body.projectLimit], [null, 1]);
    // The operator's PUT /capacity that leaves maxProjectsPerUser out keeps it.
    assert.equal((await setCapacity(a, {})).body.capacity.maxProjectsPerUser, 1);
    for (const slug of ['p-1', 'p-2']) assert.equal((await alice.delete(`/api/v1/projects/${slug}`)).status, 202);
    assert.equal((await alice.post('/api/v1/projects').send({ slug: 'p-5' })).status, 403, 'p-3 still owned: at the limit of 1');
    assert.equal((await alice.delete('/api/v1/projects/p-3')).status, 202);
    assert.equal((await alice.post('/api/v1/projects').send({ slug: 'p-5' })).status, 201);

    // A limit of 0: no projects at all. One PATCH is one transaction: a part refused, nothing changes.
    const both = await a.admin.patch('/api/v1/users/alice').send({ maxProjects: 0, disabled: true });
    assert.equal(both.status, 409, 'alice is the only owner of p-5');
    assert.equal((await a.admin.get('/api/v1/users/alice')).body.maxProjects, null);
    const zero = await a.admin.patch('/api/v1/users/alice').send({ maxProjects: 0 });
    assert.deepEqual([zero.status, zero.body.disabled, zero.body.maxProjects, zero.body.projectLimit], [200, false, 0, 0]);
    assert.equal((await alice.post('/api/v1/projects').send({ slug: 'p-6' })).status, 403);
  });

  it('handing a project over is no way around it: a new owner needs room for one more, and is not named by numbers', async () => {
    const a = makeApp();
    await user(a, 'alice');
    await user(a, 'bob');
    assert.equal((await setCapacity(a, { maxProjectsPerUser: 1 })).status, 200);
    const alice = await signedIn(a, 'alice');
    const bob = await signedIn(a, 'bob');
    assert.equal((await alice.post('/api/v1/projects').send({ slug: 'alices' })).status, 201);
    assert.equal((await bob.post('/api/v1/projects').send({ slug: 'bobs' })).status, 201);
    // alice makes bob an owner of hers, then steps down: bob would own two, and alice could make another.
    const hand = await alice.put('/api/v1/projects/alices/members/bob').send({ role: 'owner' });
    assert.equal(hand.status, 403, JSON.stringify(hand.body));
    assert.equal(hand.body.error.code, 'user_project_limit');
    assert.doesNotMatch(hand.body.error.message, /\d/, "the refusal gives away bob's numbers");
    // A role below owner is fine; an operator may make bob an owner.
    assert.equal((await alice.put('/api/v1/projects/alices/members/bob').send({ role: 'developer' })).status, 200);
    assert.equal((await a.admin.put('/api/v1/projects/alices/members/bob').send({ role: 'owner' })).status, 200);
  });

  it('admins own any number; no limit (null) means none', async () => {
    const a = makeApp();
    await user(a, 'boss', true);
    await user(a, 'carol');
    assert.equal((await setCapacity(a, { maxProjectsPerUser: 1 })).status, 200);
    for (const slug of ['b-1', 'b-2', 'b-3']) await project(a, slug, 'boss');
    const boss = await signedIn(a, 'boss');
    assert.equal((await boss.post('/api/v1/projects').send({ slug: 'b-4' })).status, 201);
    assert.equal(ownedBy(a.db, 'boss'), 4);
    const view = await a.admin.get('/api/v1/users/boss');
    assert.deepEqual([view.body.projectLimit, view.body.projectsOwned], [null, 4]);

    assert.equal((await setCapacity(a, { maxProjectsPerUser: null })).status, 200);
    const carol = await signedIn(a, 'carol');
    for (let i = 0; i < 4; i++) assert.equal((await carol.post('/api/v1/projects').send({ slug: `c-${i}` })).status, 201);
    assert.equal((await a.admin.get('/api/v1/users/carol')).body.projectLimit, null);
  });

  it('the web form shows the allowance and the refusal; signup with a first project meets the limit too', async () => {
    const a = makeApp();
    await user(a, 'alice');
    assert.equal((await setCapacity(a, { maxProjectsPerUser: 1 })).status, 200);
    const b = await browser(a, 'alice');
    const before = await b.agent.get('/dashboard');
    assert.match(before.text, /You own 0 of at most 1 project\./);
    const made = await b.agent
      .post('/projects')
      .type('form')
      .send({ _csrf: await b.csrf(), slug: 'web-one', visibility: 'private' });
    assert.equal(made.status, 303);
    const page = await b.agent
      .post('/projects')
      .type('form')
      .send({ _csrf: await b.csrf(), slug: 'web-two', visibility: 'private' });
    assert.equal(page.status, 403);
    assert.match(page.text, /you own 1 project and your account&#39;s limit is 1; delete one or ask the operator to raise your limit/);
    assert.match(page.text, /You own 1 of at most 1 project: delete one or ask the operator to raise your limit\./);
    assert.equal(ownedBy(a.db, 'alice'), 1);

    // An operator's limit of 0 refuses a signup's first project, and the account with it (one transaction).
    assert.equal((await setCapacity(a, { maxProjectsPerUser: 0 })).status, 200);
    const s = await request.agent(a.app).get('/api/v1/session');
    const su = await request(a.app)
      .post('/api/v1/signup')
      .set(
        'cookie',
        ([] as string[])
          .concat(s.headers['set-cookie'] ?? [])
          .map((c) => c.split(';')[0])
          .join('; '),
      )
      .set('x-csrf-token', s.body.csrfToken)
      .send({ username: 'newbie', email: 'newbie@example.com', password: PW, project: { slug: 'newbies' } });
    assert.equal(su.status, 403, JSON.stringify(su.body));
    assert.equal(su.body.error.code, 'user_project_limit');
    assert.equal(count(a.db, `users WHERE name = 'newbie'`), 0);
    assert.equal(count(a.db, `projects WHERE slug = 'newbies'`), 0);
  });

  it('concurrent creation: exactly the limit succeeds, from parallel requests and from two processes on one database', async () => {
    const a = makeApp({ KEELSON_MUTATION_LIMIT_USER: '10000/60' });
    await user(a, 'alice');
    await user(a, 'bob');
    assert.equal((await setCapacity(a, { maxProjectsPerUser: 5 })).status, 200);
    const alice = await signedIn(a, 'alice');
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => alice.post('/api/v1/projects').send({ slug: `race-${i}` })));
    const byStatus = (st: number) => answers.filter((r) => r.status === st).length;
    assert.deepEqual([byStatus(201), byStatus(403)], [5, 15], answers.map((r) => r.status).join(','));
    assert.ok(answers.filter((r) => r.status === 403).every((r) => r.body.error.code === 'user_project_limit'));
    assert.equal(ownedBy(a.db, 'alice'), 5);

    // Four more API processes, each creating bob's projects as fast as it can, from the same
    // instant: 80 attempts for 30 places, the limit crossed while all four contend for the lock.
    assert.equal((await a.admin.patch('/api/v1/users/bob').send({ maxProjects: 30 })).status, 200);
    const child = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'helpers', 'limits-child.js');
    const startAt = Date.now() + 2000;
    const run = (prefix: string) =>
      new Promise<{ created: string[]; refused: Record<string, number>; began: number; ended: number }>((resolve, reject) => {
        const p = spawn(process.execPath, [child, JSON.stringify({ dataDir: a.dataDir, owner: 'bob', prefix, attempts: 20, startAt })], {
          env: { ...process.env, KEELSON_LOG: 'silent', KEELSON_MUTATION_LIMIT_USER: '10000/60' },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        let err = '';
        p.stdout.on('data', (d) => (out += d));
        p.stderr.on('data', (d) => (err += d));
        p.on('error', reject);
        p.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`child exited ${code}: ${err}`))));
      });
    const results = await Promise.all(['one', 'two', 'three', 'four'].map(run));
    const created = results.reduce((n, r) => n + r.created.length, 0);
    const refused = results.reduce((n, r) => n + (r.refused.user_project_limit ?? 0), 0);
    assert.deepEqual([created, refused], [30, 50], JSON.stringify(results));
    assert.deepEqual(Object.keys(Object.assign({}, ...results.map((r) => r.refused))), ['user_project_limit']);
    // They really ran at once: every process was still at it when the last one began.
    assert.ok(Math.max(...results.map((r) => r.began)) < Math.min(...results.map((r) => r.ended)), JSON.stringify(results));
    assert.equal(ownedBy(a.db, 'bob'), 30);
  });
});

describe('mutation rate limits', () => {
  it('429 with Retry-After naming the limit, per project and per user; other projects, users and operators go on', async () => {
    const a = makeApp({ KEELSON_MUTATION_LIMIT_PROJECT: '5/60', KEELSON_MUTATION_LIMIT_USER: '8/60' });
    for (const u of ['alice', 'bob', 'carol']) await user(a, u);
    await project(a, 'acme', 'alice');
    await project(a, 'beta', 'alice');
    await project(a, 'gamma', 'carol');
    const alice = await signedIn(a, 'alice');
    const carol = await signedIn(a, 'carol');
    const roles = ['developer', 'viewer'];
    for (let i = 0; i < 5; i++) {
      const r = await alice.put('/api/v1/projects/acme/members/bob').send({ role: roles[i % 2] });
      assert.equal(r.status, 200, `change ${i}: ${JSON.stringify(r.body)}`);
    }
    const over = await alice.put('/api/v1/projects/acme/members/bob').send({ role: 'developer' });
    assert.equal(over.status, 429);
    assert.equal(over.body.error.code, 'throttled');
    const wait = Number(over.headers['retry-after']);
    assert.ok(wait >= 1 && wait <= 60, `Retry-After ${over.headers['retry-after']}`);
    assert.equal(over.body.error.message, `too many changes to project acme: 5 a minute; try again in ${wait} s`);
    // Every kind of owner change counts against the same budget.
    assert.equal((await alice.put('/api/v1/projects/acme/path-rules').send({ rules: [] })).status, 429);
    assert.equal((await alice.patch('/api/v1/projects/acme').send({ title: 'New' })).status, 429);
    assert.equal((await alice.delete('/api/v1/projects/acme/members/bob')).status, 429);
    assert.equal((await alice.post('/api/v1/projects/acme/permission-history/1/revert')).status, 429);
    assert.equal((await alice.delete('/api/v1/projects/acme')).status, 429);
    assert.equal(count(a.db, `projects WHERE slug = 'acme' AND state = 'provisioning'`), 1);

    // Another of alice's projects still takes changes, up to her own limit (8: 5 spent on acme).
    for (let i = 0; i < 3; i++)
      assert.equal((await alice.put('/api/v1/projects/beta/members/bob').send({ role: roles[i % 2] })).status, 200);
    const userOver = await alice.put('/api/v1/projects/beta/members/bob').send({ role: 'owner' });
    assert.equal(userOver.status, 429);
    assert.match(userOver.body.error.message, /^too many changes by alice: 8 a minute; try again in \d+ s$/);
    // Her own access token and a new project count against her limit too.
    assert.equal((await alice.post('/api/v1/users/alice/access-token')).status, 429);
    assert.equal((await alice.post('/api/v1/projects').send({ slug: 'delta' })).status, 429);

    // Another tenant is not affected, and cannot spend acme's budget (nor learn of it) from outside.
    assert.equal((await carol.put('/api/v1/projects/gamma/members/bob').send({ role: 'viewer' })).status, 200);
    const spentBefore = a.db.prepare(`SELECT count FROM throttles WHERE key = 'mut:project:acme'`).pluck().get();
    for (let i = 0; i < 5; i++) assert.equal((await carol.put('/api/v1/projects/acme/members/carol').send({ role: 'owner' })).status, 404);
    assert.equal(a.db.prepare(`SELECT count FROM throttles WHERE key = 'mut:project:acme'`).pluck().get(), spentBefore);
    // The operator is exempt.
    assert.equal((await a.admin.put('/api/v1/projects/acme/members/bob').send({ role: 'viewer' })).status, 200);

    // The web form answers the same 429, with Retry-After and the message next to the form.
    const b = await browser(a, 'alice');
    const form = await b.agent
      .post('/p/acme/members/bob/role')
      .type('form')
      .send({ _csrf: await b.csrf('/p/acme'), role: 'developer' });
    assert.equal(form.status, 429);
    assert.ok(Number(form.headers['retry-after']) >= 1);
    assert.match(form.text, /too many changes (to project acme|by alice)/);

    // Refused calls add nothing but their counters: the same rows as before, whatever their number.
    const before = rows(a.db);
    const throttleRows = count(a.db, 'throttles');
    for (let i = 0; i < 50; i++)
      assert.equal((await alice.put('/api/v1/projects/acme/members/bob').send({ role: roles[i % 2] })).status, 429);
    assert.deepEqual(rows(a.db), before);
    assert.equal(count(a.db, 'throttles'), throttleRows);
  });

  it('the window ends: after Retry-After the owner may change again', async () => {
    const a = makeApp({ KEELSON_MUTATION_LIMIT_PROJECT: '2/1', KEELSON_MUTATION_LIMIT_USER: '100/60' });
    await user(a, 'alice');
    await user(a, 'bob');
    await project(a, 'acme', 'alice');
    const alice = await signedIn(a, 'alice');
    assert.equal((await alice.put('/api/v1/projects/acme/members/bob').send({ role: 'viewer' })).status, 200);
    assert.equal((await alice.put('/api/v1/projects/acme/members/bob').send({ role: 'developer' })).status, 200);
    const over = await alice.put('/api/v1/projects/acme/members/bob').send({ role: 'viewer' });
    assert.equal(over.status, 429);
    assert.match(over.body.error.message, /^too many changes to project acme: 2 per 1 s; try again in 1 s$/);
    await new Promise((r) => setTimeout(r, Number(over.headers['retry-after']) * 1000 + 50));
    assert.equal((await alice.put('/api/v1/projects/acme/members/bob').send({ role: 'viewer' })).status, 200);
  });
});

describe('changes that change nothing', () => {
  it('make no new permission version, history row, audit row or job, however often they are sent', async () => {
    const a = makeApp({ KEELSON_MUTATION_LIMIT_PROJECT: '10000/60', KEELSON_MUTATION_LIMIT_USER: '10000/60' });
    await user(a, 'alice');
    await user(a, 'bob');
    await project(a, 'acme', 'alice');
    const alice = await signedIn(a, 'alice');
    const rules = [
      { path: '/trunk', subject: 'bob', access: 'r' },
      { path: '/secret', subject: '@developer', access: '' },
    ];
    // Real changes first: each is a version.
    assert.equal((await alice.put('/api/v1/projects/acme/members/bob').send({ role: 'developer' })).status, 200);
    const set = await alice.put('/api/v1/projects/acme/path-rules').send({ rules });
    assert.equal(set.status, 200);
    assert.equal((await alice.patch('/api/v1/projects/acme').send({ title: 'Acme', visibility: 'public' })).status, 200);
    const version = permVersion(a.db, 'acme');
    assert.equal(version, 4, 'created, bob added, rules set, made public');
    // The worker would have run the queued job; none is waiting now.
    a.db.prepare(`UPDATE jobs SET state = 'done', finished_at = ? WHERE state = 'pending'`).run(Date.now());
    setProjectState(a.db, projectId(a.db, 'acme'), 'active');
    const before = rows(a.db);
    const pagesBefore = a.db.pragma('page_count', { simple: true }) as number;

    for (let i = 0; i < 40; i++) {
      const m = await alice.put('/api/v1/projects/acme/members/bob').send({ role: 'developer' });
      assert.equal(m.status, 200);
      // The same rules in another order are the same rules.
      const r = await alice.put('/api/v1/projects/acme/path-rules').send({ rules: i % 2 ? rules : [...rules].reverse() });
      assert.deepEqual([r.status, r.body.version], [200, version]);
      const p = await alice.patch('/api/v1/projects/acme').send({ title: 'Acme', visibility: 'public' });
      assert.deepEqual([p.status, p.body.title, p.body.visibility], [200, 'Acme', 'public']);
      assert.equal((await alice.patch('/api/v1/projects/acme').send({})).status, 200);
      // Reverting to the version it is at.
      const rv = await alice.post(`/api/v1/projects/acme/permission-history/${version}/revert`);
      assert.deepEqual([rv.status, rv.body.version], [201, version]);
    }
    // The operator resuming an active project twice is refused; suspending twice changes nothing the second time.
    assert.equal((await a.admin.post('/api/v1/projects/acme/suspend')).status, 200);
    const suspended = rows(a.db);
    assert.equal((await a.admin.post('/api/v1/projects/acme/suspend')).status, 200);
    assert.deepEqual(rows(a.db), suspended);
    assert.equal(permVersion(a.db, 'acme'), version + 1);

    assert.deepEqual(
      { ...suspended, audit: before.audit, history: before.history, pendingJobs: before.pendingJobs, jobs: before.jobs },
      before,
    );
    assert.deepEqual([suspended.audit - before.audit, suspended.history - before.history, suspended.pendingJobs], [1, 1, 1]);
    // 200 calls, and the file did not grow (the throttle counters are updated in place).
    assert.ok((a.db.pragma('page_count', { simple: true }) as number) - pagesBefore <= 2);

    // A change back to an earlier state is a change: a new version.
    const back = await alice.post('/api/v1/projects/acme/permission-history/2/revert');
    assert.deepEqual([back.status, back.body.version], [201, version + 2]);
    assert.equal(count(a.db, `audit_log WHERE action = 'permissions.revert'`), 1);
  });
});

describe('retention', () => {
  it('sweeps old audit rows, permission versions past the newest N (keeping the published one), publishes, expired sessions, stale throttles and old jobs', async () => {
    const a = makeApp({ KEELSON_PERMISSION_HISTORY_KEEP: '5', KEELSON_AUDIT_RETENTION_DAYS: '30' });
    await user(a, 'alice');
    await user(a, 'bob');
    await project(a, 'acme', 'alice');
    await project(a, 'other', 'bob');
    const roles = ['developer', 'viewer'];
    // 12 changes: versions 1 (created) to 13.
    for (let i = 0; i < 12; i++)
      assert.equal((await a.admin.put('/api/v1/projects/acme/members/bob').send({ role: roles[i % 2] })).status, 200);
    const acme = projectId(a.db, 'acme');
    assert.equal(permVersion(a.db, 'acme'), 13);
    // Version 3 is what is on disk; 30 publishes recorded.
    for (let v = 1; v <= 30; v++) recordPublish(a.db, acme, v <= 3 ? v : 3, `sum${v}`, true, 'test');

    const day = 86_400_000;
    const now = Date.now();
    const iso = (ms: number) => new Date(ms).toISOString();
    const insAudit = a.db.prepare(`INSERT INTO audit_log (at, actor, action, target) VALUES (?, 'test', 'old', 'x')`);
    a.db.transaction(() => {
      for (let i = 0; i < 1234; i++) insAudit.run(iso(now - 40 * day - i * 1000));
      insAudit.run(iso(now - 29 * day));
    })();
    // (Signing in sweeps the user's own expired sessions: these come after.)
    const live = await signedIn(a, 'alice');
    const aliceId = a.db.prepare(`SELECT id FROM users WHERE name = 'alice'`).pluck().get() as number;
    const insSession = a.db.prepare(`INSERT INTO sessions (id_hash, user_id, created_at, seen_at, expires_at) VALUES (?, ?, ?, ?, ?)`);
    for (let i = 0; i < 7; i++) insSession.run(`expired${i}`, aliceId, now - 3 * day, now - 3 * day, now - (i + 1) * 60_000);
    const insThrottle = a.db.prepare(`INSERT INTO throttles (key, window_start, count) VALUES (?, ?, 3)`);
    insThrottle.run('mut:user:gone', now - 2 * day);
    insThrottle.run('mut:user:recent', now - 60_000);
    const insJob = a.db.prepare(
      `INSERT INTO jobs (kind, project_id, state, run_after, created_at, finished_at) VALUES ('reconcile_project', ?, ?, 0, ?, ?)`,
    );
    insJob.run(acme, 'done', now - 40 * day, now - 40 * day);
    insJob.run(acme, 'failed', now - 40 * day, now - 40 * day);
    insJob.run(acme, 'done', now - day, now - day);
    const jobsBefore = count(a.db, 'jobs');

    const n = await sweepRetention(a.db, a.cfg, { batch: 100 });
    assert.deepEqual(n, { audit: 1234, history: 7, publishes: 25, sessions: 7, throttles: 1, jobs: 2 });
    const versions = a.db.prepare(`SELECT version FROM permission_history WHERE project_id = ? ORDER BY version`).pluck().all(acme);
    assert.deepEqual(versions, [3, 9, 10, 11, 12, 13]);
    assert.equal(count(a.db, 'permission_history WHERE project_id = ?', projectId(a.db, 'other')), 1);
    assert.deepEqual(a.db.prepare(`SELECT checksum FROM authz_publishes WHERE project_id = ? ORDER BY id`).pluck().all(acme), [
      'sum26',
      'sum27',
      'sum28',
      'sum29',
      'sum30',
    ]);
    assert.equal(count(a.db, `audit_log WHERE action = 'old'`), 1);
    assert.ok(count(a.db, `audit_log WHERE action = 'member.set'`) >= 12, 'recent audit rows stay');
    assert.equal(count(a.db, `sessions WHERE id_hash LIKE 'expired%'`), 0);
    assert.equal((await live.get('/api/v1/session')).body.user?.name, 'alice', 'a live session is kept');
    assert.deepEqual(a.db.prepare(`SELECT key FROM throttles WHERE key LIKE 'mut:user:%'`).pluck().all(), ['mut:user:recent']);
    assert.equal(count(a.db, 'jobs'), jobsBefore - 2);

    // Kept versions can still be reverted to (3 is the state acme is in: no change; 12 is one);
    // swept ones are gone; the next change numbers on from the newest.
    const to3 = await a.admin.post('/api/v1/projects/acme/permission-history/3/revert');
    assert.deepEqual([to3.status, to3.body.version], [201, 13]);
    const to12 = await a.admin.post('/api/v1/projects/acme/permission-history/12/revert');
    assert.deepEqual([to12.status, to12.body.version], [201, 14]);
    assert.equal((await a.admin.post('/api/v1/projects/acme/permission-history/5/revert')).status, 404);
    // A second sweep right after has nothing more to take but the version the revert pushed out.
    assert.deepEqual(await sweepRetention(a.db, a.cfg), { audit: 0, history: 1, publishes: 0, sessions: 0, throttles: 0, jobs: 0 });
  });
});

/**
 * The rules that decide who may do what, as use cases over a real (in-memory) database, with no
 * Apache and no worker: who sees and changes a project, the owner rule, the path-rule rules, the
 * mutation limits, and the unit of work (a refused change leaves nothing behind; an accepted one
 * records its audit row, permission version and job, then wakes the worker once).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { migrate, type DB } from '../../src/store/db.js';
import { loadConfig } from '../../src/config.js';
import { operator, type Actor, type Ctx } from '../../src/domain/context.js';
import { backupPort } from '../../src/main/ports.js';
import { createProject, projectFor, removeMember, setMember, updateProject } from '../../src/domain/projects.js';
import { pathRulesProblem, revertPermissions, setPathRules } from '../../src/domain/permissions.js';
import { setUserDisabled } from '../../src/domain/users.js';
import { createUser } from '../helpers/seed.js';
import { AuthenticationError, ConflictError, InputError, NotAllowedError, NotFoundError, ThrottledError } from '../../src/errors.js';

const user = (name: string): Actor => ({ kind: 'user', label: `user:${name}`, user: name, admin: false });
const op = operator('test');

function setup(env: Record<string, string> = {}): Ctx & { wakes: () => number } {
  const db = new Database(':memory:');
  migrate(db);
  const cfg = loadConfig({ KEELSON_DATA_DIR: '/var/tmp/keelson-unused', KEELSON_LOG: 'silent', ...env });
  for (const name of ['olive', 'dev', 'vic', 'eve', 'otto'])
    createUser(db, 'test', { name, email: `${name}@example.com`, passwordHash: 'scrypt$unused' });
  let wakes = 0;
  const ctx: Ctx = { db, cfg, fx: { credentialChanged: () => {}, enqueued: () => void wakes++ }, backups: backupPort(db, cfg) };
  createProject(ctx, op, { slug: 'priv', visibility: 'private', owner: 'olive' });
  createProject(ctx, op, { slug: 'pub', visibility: 'public', owner: 'olive' });
  for (const slug of ['priv', 'pub']) {
    setMember(ctx, op, slug, 'dev', 'developer');
    setMember(ctx, op, slug, 'vic', 'viewer');
  }
  wakes = 0;
  return { ...ctx, wakes: () => wakes };
}

const count = (db: DB, sql: string): number => (db.prepare(sql).pluck().get() as number) ?? 0;

describe('who sees and changes a project', () => {
  it('a private project is "not found" to a stranger, so its name does not leak; members see it as their role allows', () => {
    const ctx = setup();
    assert.throws(() => projectFor(ctx, user('eve'), 'priv', 'viewer'), NotFoundError);
    assert.throws(() => projectFor(ctx, user('eve'), 'nope', 'viewer'), NotFoundError, 'the same answer as for no project');
    assert.equal(projectFor(ctx, user('vic'), 'priv', 'viewer').slug, 'priv');
    assert.throws(() => projectFor(ctx, user('vic'), 'priv', 'developer'), NotAllowedError);
    assert.equal(projectFor(ctx, user('dev'), 'priv', 'developer').slug, 'priv');
    assert.throws(() => projectFor(ctx, user('dev'), 'priv', 'owner'), NotAllowedError);
    assert.equal(projectFor(ctx, user('olive'), 'priv', 'owner').slug, 'priv');
    assert.equal(projectFor(ctx, op, 'priv', 'owner').slug, 'priv', 'an operator counts as an owner');
    assert.throws(() => projectFor(ctx, undefined, 'priv', 'viewer'), AuthenticationError);
  });

  it('a public project is visible to every signed-in stranger, and changeable by none of them', () => {
    const ctx = setup();
    assert.equal(projectFor(ctx, user('eve'), 'pub', 'viewer').slug, 'pub');
    assert.throws(() => projectFor(ctx, user('eve'), 'pub', 'developer'), NotAllowedError);
    assert.throws(() => updateProject(ctx, user('eve'), 'pub', { title: 'mine now' }), NotAllowedError);
    assert.throws(() => setMember(ctx, user('dev'), 'pub', 'eve', 'owner'), NotAllowedError, 'a developer cannot make owners');
  });

  it('a user creates projects they own, and no one else’s', () => {
    const ctx = setup();
    assert.throws(() => createProject(ctx, user('eve'), { slug: 'theirs', visibility: 'private', owner: 'olive' }), NotAllowedError);
    assert.equal(createProject(ctx, user('eve'), { slug: 'mine', visibility: 'private' }).slug, 'mine');
    assert.equal(projectFor(ctx, user('eve'), 'mine', 'owner').slug, 'mine');
  });
});

describe('the owner rule: a live project keeps an enabled owner', () => {
  it('the last owner can neither step down, be removed, nor be disabled; with a second owner each is allowed', () => {
    const ctx = setup();
    assert.throws(() => setMember(ctx, user('olive'), 'priv', 'olive', 'developer'), /last owner of priv/);
    assert.throws(() => removeMember(ctx, user('olive'), 'priv', 'olive'), /last owner of priv/);
    assert.throws(() => setUserDisabled(ctx, op, 'olive', true), /only owner of priv, pub/);
    assert.equal(count(ctx.db, `SELECT disabled_at IS NOT NULL FROM users WHERE name = 'olive'`), 0, 'the refusal rolled back');
    setMember(ctx, user('olive'), 'priv', 'otto', 'owner');
    setMember(ctx, user('olive'), 'priv', 'olive', 'developer');
    assert.equal(projectFor(ctx, user('otto'), 'priv', 'owner').slug, 'priv');
  });

  it('a disabled owner does not count: the enabled one cannot step down behind them', () => {
    const ctx = setup();
    setMember(ctx, op, 'priv', 'otto', 'owner');
    setUserDisabled(ctx, op, 'otto', true);
    assert.throws(() => setMember(ctx, user('olive'), 'priv', 'olive', 'viewer'), ConflictError);
  });

  it('the rule is about owners: on a project left with no enabled owner, an operator still removes a viewer', () => {
    const ctx = setup();
    // A state an older release allowed: the only owner is disabled.
    ctx.db.prepare(`UPDATE users SET disabled_at = '2026-01-01T00:00:00Z' WHERE name = 'olive'`).run();
    removeMember(ctx, op, 'priv', 'vic');
    assert.throws(() => projectFor(ctx, user('vic'), 'priv', 'viewer'), NotFoundError);
  });

  it('a revert to a version whose only owner is gone is refused', () => {
    const ctx = setup();
    setMember(ctx, op, 'priv', 'otto', 'owner');
    removeMember(ctx, op, 'priv', 'olive');
    // Version v: otto is the only owner. Then olive owns it again and otto's account is deleted.
    const v = count(ctx.db, `SELECT perm_version FROM projects WHERE slug = 'priv'`);
    setMember(ctx, op, 'priv', 'olive', 'owner');
    ctx.db.prepare(`DELETE FROM memberships WHERE user_id = (SELECT id FROM users WHERE name = 'otto')`).run();
    ctx.db.prepare(`DELETE FROM access_tokens WHERE user_id = (SELECT id FROM users WHERE name = 'otto')`).run();
    ctx.db.prepare(`DELETE FROM users WHERE name = 'otto'`).run();
    assert.throws(() => revertPermissions(ctx, op, 'priv', v), /no owner who still exists/);
    assert.equal(projectFor(ctx, user('olive'), 'priv', 'owner').slug, 'priv', 'the refused revert changed nothing');
  });
});

describe('path rules', () => {
  const members = new Set(['dev', 'vic']);
  it('anonymous visitors never write, a subject must be a member or a role, and one rule per subject and path', () => {
    assert.match(
      pathRulesProblem([{ path: '/trunk', subject: '*', access: 'rw' }], members, 'p')!,
      /^rules\.0\.access: "\*" includes anonymous/,
    );
    assert.match(
      pathRulesProblem([{ path: '/trunk', subject: 'eve', access: 'r' }], members, 'p')!,
      /^rules\.0\.subject: eve is not a member/,
    );
    assert.match(
      pathRulesProblem(
        [
          { path: '/trunk', subject: 'dev', access: 'r' },
          { path: '/trunk', subject: 'dev', access: '' },
        ],
        members,
        'p',
      )!,
      /^rules\.1: a second rule for dev on \/trunk/,
    );
    assert.match(pathRulesProblem([{ path: '../etc', subject: 'dev', access: 'r' }], members, 'p')!, /^rules\.0\.path:/);
    assert.match(pathRulesProblem([{ path: '/a', subject: '@dev]', access: 'r' }], members, 'p')!, /^rules\.0\.subject:/);
    assert.equal(
      pathRulesProblem(
        [
          { path: '/trunk', subject: '*', access: 'r' },
          { path: '/trunk/secret', subject: '@viewer', access: '' },
          { path: '/trunk/secret', subject: 'dev', access: 'rw' },
        ],
        members,
        'p',
      ),
      null,
    );
  });

  it('a refused set of rules changes nothing: no rule, no version, no audit row, no job, no wake-up', () => {
    const ctx = setup();
    const before = [count(ctx.db, 'SELECT count(*) FROM path_rules'), count(ctx.db, 'SELECT count(*) FROM permission_history')];
    const audits = count(ctx.db, 'SELECT count(*) FROM audit_log');
    const jobs = count(ctx.db, 'SELECT count(*) FROM jobs');
    assert.throws(
      () =>
        setPathRules(ctx, user('olive'), 'priv', [
          { path: '/trunk', subject: 'dev', access: 'r' },
          { path: '/trunk', subject: '*', access: 'rw' },
        ]),
      InputError,
    );
    assert.deepEqual([count(ctx.db, 'SELECT count(*) FROM path_rules'), count(ctx.db, 'SELECT count(*) FROM permission_history')], before);
    assert.equal(count(ctx.db, 'SELECT count(*) FROM audit_log'), audits);
    assert.equal(count(ctx.db, 'SELECT count(*) FROM jobs'), jobs);
    assert.equal(ctx.wakes(), 0);
  });

  it('an accepted change records its audit row, a new permission version and a coalesced publish job, then wakes the worker once', () => {
    const ctx = setup();
    ctx.db.prepare(`UPDATE jobs SET state = 'done'`).run();
    const version = count(ctx.db, `SELECT perm_version FROM projects WHERE slug = 'priv'`);
    const r = setPathRules(ctx, user('olive'), 'priv', [{ path: '/trunk/secret', subject: 'vic', access: '' }]);
    assert.equal(r.version, version + 1);
    assert.equal(count(ctx.db, `SELECT count(*) FROM audit_log WHERE action = 'paths.set' AND actor = 'user:olive'`), 1);
    assert.equal(count(ctx.db, `SELECT count(*) FROM permission_history WHERE action = 'paths.set' AND version = ${version + 1}`), 1);
    assert.equal(count(ctx.db, `SELECT count(*) FROM jobs WHERE state = 'pending' AND kind = 'reconcile_project'`), 1);
    assert.equal(ctx.wakes(), 1);
    // The same rules again: no change, nothing recorded, nothing queued.
    assert.equal(setPathRules(ctx, user('olive'), 'priv', [{ path: '/trunk/secret', subject: 'vic', access: '' }]).version, version + 1);
    assert.equal(count(ctx.db, `SELECT count(*) FROM audit_log WHERE action = 'paths.set'`), 1);
    assert.equal(ctx.wakes(), 1);
  });
});

describe('mutation limits', () => {
  it('a user over their changes a minute gets 429 naming the limit; an operator is exempt', () => {
    const ctx = setup({ KEELSON_MUTATION_LIMIT_USER: '3/60' });
    for (let i = 0; i < 3; i++) updateProject(ctx, user('olive'), 'priv', { title: `t${i}` });
    assert.throws(() => updateProject(ctx, user('olive'), 'priv', { title: 'one too many' }), ThrottledError);
    for (let i = 0; i < 10; i++) updateProject(ctx, op, 'priv', { title: `op${i}` });
  });
});

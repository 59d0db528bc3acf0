import crypto from 'node:crypto';
import type { DB } from './db.js';
import { nowIso } from './db.js';
import { enqueue } from './jobs.js';
import { ConflictError, InputError, NotFoundError } from '../errors.js';
import { assertSlug, assertUser, type Role, type Visibility } from '../names.js';
import { apacheHash, newAccessToken } from './tokens.js';
import { recordPermissionChange } from './permissions.js';

export interface UserRow {
  id: number;
  name: string;
  email: string;
  password_hash: string;
  is_admin: number;
  created_at: string;
  disabled_at: string | null;
  /** This user's own limit of projects owned (migration 8); null: the operator's default. */
  max_projects: number | null;
}
export interface ProjectRow {
  id: number;
  slug: string;
  title: string;
  visibility: Visibility;
  state: 'provisioning' | 'active' | 'suspended' | 'deleting' | 'deleted' | 'failed';
  repo_uuid: string;
  last_error: string | null;
  created_at: string;
  updated_at: string;
}
export interface MemberRow {
  user: string;
  role: Role;
}

/** The job kinds; handlers live in src/provision. */
export const JOB_RECONCILE = 'reconcile_project';
export const JOB_CREDENTIALS = 'sync_credentials';

export function audit(db: DB, actor: string, action: string, target: string, details: object = {}): void {
  db.prepare(`INSERT INTO audit_log (at, actor, action, target, details) VALUES (?, ?, ?, ?, ?)`).run(
    nowIso(),
    actor,
    action,
    target,
    JSON.stringify(details),
  );
}

// ---- users ----

export function getUser(db: DB, name: string): UserRow | undefined {
  return db.prepare(`SELECT * FROM users WHERE name = ?`).get(name) as UserRow | undefined;
}

export function requireUser(db: DB, name: string): UserRow {
  const u = getUser(db, name);
  if (!u) throw new NotFoundError(`no user ${name}`);
  return u;
}

/**
 * Creates a user and its SVN/Trac access token; returns the token, shown once. `passwordHash` is
 * the web password's stored form, computed by the caller off the event loop (src/sys/password.ts).
 */
export function createUser(
  db: DB,
  actor: string,
  u: { name: string; email: string; passwordHash: string; isAdmin?: boolean },
): { user: UserRow; accessToken: string } {
  assertUser(u.name);
  const token = newAccessToken();
  const user = db
    .transaction(() => {
      if (getUser(db, u.name)) throw new ConflictError(`user ${u.name} already exists`);
      const r = db
        .prepare(`INSERT INTO users (name, email, password_hash, is_admin, created_at) VALUES (?, ?, ?, ?, ?)`)
        .run(u.name, u.email, u.passwordHash, u.isAdmin ? 1 : 0, nowIso());
      db.prepare(`INSERT INTO access_tokens (user_id, apache_hash, created_at) VALUES (?, ?, ?)`).run(
        r.lastInsertRowid,
        apacheHash(token),
        nowIso(),
      );
      audit(db, actor, 'user.create', u.name);
      enqueue(db, JOB_CREDENTIALS, null);
      return getUser(db, u.name)!;
    })
    .immediate();
  return { user, accessToken: token };
}

export function rotateAccessToken(db: DB, actor: string, name: string): string {
  const token = newAccessToken();
  db.transaction(() => {
    const u = requireUser(db, name);
    db.prepare(
      `INSERT INTO access_tokens (user_id, apache_hash, created_at) VALUES (?, ?, ?)
       ON CONFLICT(user_id) DO UPDATE SET apache_hash = excluded.apache_hash, created_at = excluded.created_at`,
    ).run(u.id, apacheHash(token), nowIso());
    audit(db, actor, 'user.token.rotate', name);
    enqueue(db, JOB_CREDENTIALS, null);
  }).immediate();
  return token;
}

export function listUsers(db: DB): UserRow[] {
  return db.prepare(`SELECT * FROM users ORDER BY name`).all() as UserRow[];
}

// ---- projects ----

export function getProject(db: DB, slug: string): ProjectRow | undefined {
  return db.prepare(`SELECT * FROM projects WHERE slug = ? AND state <> 'deleted'`).get(slug) as ProjectRow | undefined;
}
export function getProjectById(db: DB, id: number): ProjectRow | undefined {
  return db.prepare(`SELECT * FROM projects WHERE id = ?`).get(id) as ProjectRow | undefined;
}
export function requireProject(db: DB, slug: string): ProjectRow {
  const p = getProject(db, slug);
  if (!p) throw new NotFoundError(`no project ${slug}`);
  return p;
}

export function members(db: DB, projectId: number): MemberRow[] {
  return db
    .prepare(
      `SELECT u.name AS user, m.role FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.project_id = ? AND u.disabled_at IS NULL ORDER BY u.name`,
    )
    .all(projectId) as MemberRow[];
}

export function listProjects(db: DB, forUser?: string): ProjectRow[] {
  if (forUser === undefined) return db.prepare(`SELECT * FROM projects WHERE state <> 'deleted' ORDER BY slug`).all() as ProjectRow[];
  return db
    .prepare(
      `SELECT p.* FROM projects p JOIN memberships m ON m.project_id = p.id JOIN users u ON u.id = m.user_id
       WHERE u.name = ? AND p.state <> 'deleted' ORDER BY p.slug`,
    )
    .all(forUser) as ProjectRow[];
}

/** Records the project and its owner and enqueues provisioning, in one transaction. */
export function createProject(
  db: DB,
  actor: string,
  p: { slug: string; title: string; visibility: Visibility; owner: string },
): ProjectRow {
  assertSlug(p.slug);
  return db
    .transaction(() => {
      if (getProject(db, p.slug)) throw new ConflictError(`project ${p.slug} already exists`);
      const owner = getUser(db, p.owner);
      if (!owner) throw new InputError(`owner: no user ${p.owner}`);
      const now = nowIso();
      const r = db
        .prepare(
          `INSERT INTO projects (slug, title, visibility, state, repo_uuid, created_at, updated_at)
         VALUES (?, ?, ?, 'provisioning', ?, ?, ?)`,
        )
        .run(p.slug, p.title, p.visibility, crypto.randomUUID(), now, now);
      const id = Number(r.lastInsertRowid);
      db.prepare(`INSERT INTO memberships (project_id, user_id, role) VALUES (?, ?, 'owner')`).run(id, owner.id);
      audit(db, actor, 'project.create', p.slug, { owner: p.owner, visibility: p.visibility });
      recordPermissionChange(db, id, actor, 'project.create', `created ${p.visibility}, owner ${p.owner}`);
      return getProjectById(db, id)!;
    })
    .immediate();
}

export function updateProject(db: DB, actor: string, slug: string, changes: { title?: string; visibility?: Visibility }): ProjectRow {
  return db
    .transaction(() => {
      const p = requireProject(db, slug);
      db.prepare(`UPDATE projects SET title = ?, visibility = ?, updated_at = ? WHERE id = ?`).run(
        changes.title ?? p.title,
        changes.visibility ?? p.visibility,
        nowIso(),
        p.id,
      );
      audit(db, actor, 'project.update', slug, changes);
      if (changes.visibility && changes.visibility !== p.visibility) {
        recordPermissionChange(db, p.id, actor, 'visibility.set', `visibility ${p.visibility} → ${changes.visibility}`);
      } else enqueue(db, JOB_RECONCILE, p.id);
      return getProjectById(db, p.id)!;
    })
    .immediate();
}

export function deleteProject(db: DB, actor: string, slug: string): void {
  db.transaction(() => {
    const p = requireProject(db, slug);
    db.prepare(`UPDATE projects SET state = 'deleting', updated_at = ? WHERE id = ?`).run(nowIso(), p.id);
    audit(db, actor, 'project.delete', slug);
    enqueue(db, JOB_RECONCILE, p.id);
  }).immediate();
}

/** Adds a member or changes their role; returns the role they had. Call inside the use case's transaction. */
export function setMember(db: DB, actor: string, slug: string, user: string, role: Role): Role | undefined {
  return db
    .transaction(() => {
      const p = requireProject(db, slug);
      const u = getUser(db, user);
      if (!u) throw new NotFoundError(`no user ${user}`);
      const was = db.prepare(`SELECT role FROM memberships WHERE project_id = ? AND user_id = ?`).pluck().get(p.id, u.id) as
        Role | undefined;
      if (was === role) return was;
      db.prepare(
        `INSERT INTO memberships (project_id, user_id, role) VALUES (?, ?, ?)
       ON CONFLICT(project_id, user_id) DO UPDATE SET role = excluded.role`,
      ).run(p.id, u.id, role);
      audit(db, actor, 'member.set', slug, { user, role });
      recordPermissionChange(db, p.id, actor, 'member.set', was ? `${user}: ${was} → ${role}` : `${user} added as ${role}`);
      return was;
    })
    .immediate();
}

export function ownerCount(db: DB, projectId: number): number {
  return db.prepare(`SELECT count(*) FROM memberships WHERE project_id = ? AND role = 'owner'`).pluck().get(projectId) as number;
}

export function removeMember(db: DB, actor: string, slug: string, user: string): void {
  db.transaction(() => {
    const p = requireProject(db, slug);
    const u = getUser(db, user);
    const r = u ? db.prepare(`DELETE FROM memberships WHERE project_id = ? AND user_id = ?`).run(p.id, u.id) : { changes: 0 };
    if (r.changes === 0) throw new NotFoundError(`${user} is not a member of ${slug}`);
    // Their path rules go with them: a rule must never grant a non-member anything.
    db.prepare(`DELETE FROM path_rules WHERE project_id = ? AND subject = ?`).run(p.id, user);
    audit(db, actor, 'member.remove', slug, { user });
    recordPermissionChange(db, p.id, actor, 'member.remove', `${user} removed`);
  }).immediate();
}

/** Trac's permission table now holds this permission version (never moves it back). */
export function setTracPermVersion(db: DB, id: number, version: number): void {
  db.prepare(`UPDATE projects SET trac_perm_version = ? WHERE id = ? AND (trac_perm_version IS NULL OR trac_perm_version < ?)`).run(
    version,
    id,
    version,
  );
}

/** A live project's last error (what went wrong converging it), shown as `lastError`; null clears it. */
export function setProjectError(db: DB, id: number, message: string | null): void {
  db.prepare(`UPDATE projects SET last_error = ? WHERE id = ?`).run(message === null ? null : message.slice(0, 2000), id);
}

/**
 * The same by slug, for one kind of error only: clearing (message null) removes the last error only
 * when it starts with `prefix`, so recovering from one failure does not hide another.
 */
export function setProjectErrorOfKind(db: DB, slug: string, prefix: string, message: string | null): void {
  if (message !== null)
    db.prepare(`UPDATE projects SET last_error = ? WHERE slug = ? AND state <> 'deleted'`).run(`${prefix}${message}`.slice(0, 2000), slug);
  else
    db.prepare(`UPDATE projects SET last_error = NULL WHERE slug = ? AND state <> 'deleted' AND last_error LIKE ?`).run(slug, `${prefix}%`);
}

export function setProjectState(db: DB, id: number, state: ProjectRow['state'], lastError: string | null = null, actor = 'system'): void {
  db.transaction(() => {
    const was = getProjectById(db, id)?.state;
    db.prepare(`UPDATE projects SET state = ?, last_error = ?, updated_at = ? WHERE id = ?`).run(state, lastError, nowIso(), id);
    // Suspension is part of the permission state: it changes what the files grant.
    if (was !== undefined && (was === 'suspended') !== (state === 'suspended')) {
      recordPermissionChange(db, id, actor, state === 'suspended' ? 'project.suspend' : 'project.resume', `${was} → ${state}`);
    }
  }).immediate();
}

// ---- admin API tokens ----

export function hashApiToken(token: string): string {
  return crypto.createHash('sha256').update(token).digest('hex');
}

export function createApiToken(db: DB, name: string, scopes: string[] = ['admin']): string {
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw new InputError('name: 1-64 letters, digits, "_", "." or "-"');
  const token = 'kt_' + crypto.randomBytes(32).toString('base64url');
  try {
    db.prepare(`INSERT INTO api_tokens (name, hash, scopes, created_at) VALUES (?, ?, ?, ?)`).run(
      name,
      hashApiToken(token),
      scopes.join(' '),
      nowIso(),
    );
  } catch (e) {
    if (String(e).includes('UNIQUE')) throw new ConflictError(`a token named ${name} exists`);
    throw e;
  }
  audit(db, 'cli', 'token.create', name, { scopes });
  return token;
}

export function findApiToken(db: DB, token: string): { name: string; scopes: string[] } | undefined {
  const row = db.prepare(`SELECT id, name, scopes FROM api_tokens WHERE hash = ?`).get(hashApiToken(token)) as
    { id: number; name: string; scopes: string } | undefined;
  if (!row) return undefined;
  db.prepare(`UPDATE api_tokens SET last_used_at = ? WHERE id = ?`).run(nowIso(), row.id);
  return { name: row.name, scopes: row.scopes.split(' ') };
}

// ---- web UI: accounts, search, suspension (issue 5) ----

export function getUserById(db: DB, id: number): UserRow | undefined {
  return db.prepare(`SELECT * FROM users WHERE id = ?`).get(id) as UserRow | undefined;
}

/** Stores a new web password (its hash, computed by the caller off the event loop). */
export function changePassword(db: DB, actor: string, name: string, passwordHash: string): void {
  db.transaction(() => {
    const u = requireUser(db, name);
    db.prepare(`UPDATE users SET password_hash = ? WHERE id = ?`).run(passwordHash, u.id);
    audit(db, actor, 'user.password', name);
  }).immediate();
}

/** Moves a project between active and suspended (the rule of which moves are allowed is in src/domain/projects.ts). */
export function setSuspended(db: DB, actor: string, p: ProjectRow, suspended: boolean): ProjectRow {
  return db
    .transaction(() => {
      setProjectState(db, p.id, suspended ? 'suspended' : 'active', null, actor);
      audit(db, actor, suspended ? 'project.suspend' : 'project.resume', p.slug);
      enqueue(db, JOB_RECONCILE, p.id);
      return getProjectById(db, p.id)!;
    })
    .immediate();
}

/** One page of projects whose slug or title contains `q`, with the total count. */
export function searchProjects(db: DB, q: string, limit: number, offset: number): { rows: ProjectRow[]; total: number } {
  const like = `%${q.replace(/[\\%_]/g, (c) => '\\' + c)}%`;
  const where = `state <> 'deleted' AND (slug LIKE ? ESCAPE '\\' OR title LIKE ? ESCAPE '\\')`;
  const total = (db.prepare(`SELECT count(*) AS n FROM projects WHERE ${where}`).get(like, like) as { n: number }).n;
  const rows = db
    .prepare(`SELECT * FROM projects WHERE ${where} ORDER BY slug LIMIT ? OFFSET ?`)
    .all(like, like, limit, offset) as ProjectRow[];
  return { rows, total };
}

/** One page of users whose name or email contains `q`, with the total count. */
export function searchUsers(db: DB, q: string, limit: number, offset: number): { rows: UserRow[]; total: number } {
  const like = `%${q.replace(/[\\%_]/g, (c) => '\\' + c)}%`;
  const where = `(name LIKE ? ESCAPE '\\' OR email LIKE ? ESCAPE '\\')`;
  const total = (db.prepare(`SELECT count(*) AS n FROM users WHERE ${where}`).get(like, like) as { n: number }).n;
  const rows = db.prepare(`SELECT * FROM users WHERE ${where} ORDER BY name LIMIT ? OFFSET ?`).all(like, like, limit, offset) as UserRow[];
  return { rows, total };
}

export function membershipCount(db: DB, userId: number): number {
  return db.prepare(`SELECT count(*) FROM memberships WHERE user_id = ?`).pluck().get(userId) as number;
}

/** Ids of every project that is not deleted (the nightly drift repair reconciles them all). */
export function liveProjectIds(db: DB): number[] {
  return db.prepare(`SELECT id FROM projects WHERE state <> 'deleted'`).pluck().all() as number[];
}

export function queueReconcile(db: DB, projectId: number): void {
  enqueue(db, JOB_RECONCILE, projectId);
}

/** Queues a reconcile of every live project and a credentials sync, in one transaction; returns how many projects. */
export function queueReconcileAll(db: DB): number {
  const ids = liveProjectIds(db);
  db.transaction(() => {
    for (const id of ids) enqueue(db, JOB_RECONCILE, id);
    enqueue(db, JOB_CREDENTIALS, null);
  })();
  return ids.length;
}

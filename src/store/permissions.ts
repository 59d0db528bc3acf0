import type { DB } from './db.js';
import { nowIso } from './db.js';
import { enqueue } from './jobs.js';
import { ConflictError, InputError, NotFoundError } from '../errors.js';
import { assertRulePath, assertSubject, type Access, type Visibility } from '../names.js';
import type { PathRule, ProjectAccess } from '../authz/render.js';
import { audit, getUser, JOB_RECONCILE, members, requireProject, type MemberRow, type ProjectRow } from './model.js';

/** A project's permission state: what its authz file and Trac permissions are rendered from. */
export interface PermissionSnapshot {
  visibility: Visibility;
  suspended: boolean;
  members: MemberRow[];
  rules: PathRule[];
}

export interface VersionedProject extends ProjectRow {
  perm_version: number;
  published_version: number | null;
  published_checksum: string | null;
  published_at: string | null;
  trac_perm_version: number | null;
}

export function pathRules(db: DB, projectId: number): PathRule[] {
  return db
    .prepare(`SELECT path, subject, access FROM path_rules WHERE project_id = ? ORDER BY path, subject`)
    .all(projectId) as PathRule[];
}

function snapshot(db: DB, p: ProjectRow): PermissionSnapshot {
  return { visibility: p.visibility, suspended: p.state === 'suspended', members: members(db, p.id), rules: pathRules(db, p.id) };
}

/**
 * Everything a publisher needs, read in one transaction: the project, its access rows and the
 * version they are. A rendering of this snapshot is published as exactly that version.
 */
export function readAccess(db: DB, projectId: number): { project: VersionedProject; access: ProjectAccess; version: number } | undefined {
  return db.transaction(() => {
    const p = db.prepare(`SELECT * FROM projects WHERE id = ?`).get(projectId) as VersionedProject | undefined;
    if (!p) return undefined;
    const s = snapshot(db, p);
    return {
      project: p,
      access: { slug: p.slug, visibility: s.visibility, members: s.members, rules: s.rules, suspended: s.suspended },
      version: p.perm_version,
    };
  })();
}

/**
 * Call inside the transaction that changed the permission state: bumps the project's version,
 * stores the new state with who changed what, and enqueues the publish. Returns the new version.
 * A state equal to the newest version's is no change: no version, no history row, no publish
 * (the current version is returned), so repeating a change costs no space.
 */
export function recordPermissionChange(db: DB, projectId: number, actor: string, action: string, summary: string): number {
  const p = db.prepare(`SELECT * FROM projects WHERE id = ?`).get(projectId) as VersionedProject;
  const known = db.prepare(`SELECT max(version) FROM permission_history WHERE project_id = ?`).pluck().get(projectId) as number | null;
  const state = JSON.stringify(snapshot(db, p));
  if (known !== null && lastSnapshot(db, projectId, known) === state) return p.perm_version;
  // A new project starts at version 1; every later change adds one.
  const version = known === null ? p.perm_version : p.perm_version + 1;
  db.prepare(`UPDATE projects SET perm_version = ? WHERE id = ?`).run(version, projectId);
  db.prepare(`INSERT INTO permission_history (project_id, version, at, actor, action, summary, snapshot) VALUES (?, ?, ?, ?, ?, ?, ?)`).run(
    projectId,
    version,
    nowIso(),
    actor,
    action,
    summary,
    state,
  );
  enqueue(db, JOB_RECONCILE, projectId);
  return version;
}

const lastSnapshot = (db: DB, projectId: number, version: number): string | undefined =>
  db.prepare(`SELECT snapshot FROM permission_history WHERE project_id = ? AND version = ?`).pluck().get(projectId, version) as
    string | undefined;

const membershipRows = (db: DB, projectId: number): unknown[] =>
  db.prepare(`SELECT user_id, role FROM memberships WHERE project_id = ? ORDER BY user_id`).raw().all(projectId);

const currentVersion = (db: DB, projectId: number): number =>
  db.prepare(`SELECT perm_version FROM projects WHERE id = ?`).pluck().get(projectId) as number;

export interface HistoryEntry {
  version: number;
  at: string;
  actor: string;
  action: string;
  summary: string;
  state: PermissionSnapshot;
}

export function permissionHistory(db: DB, slug: string, limit = 100): HistoryEntry[] {
  const p = requireProject(db, slug);
  const rows = db
    .prepare(
      `SELECT version, at, actor, action, summary, snapshot FROM permission_history WHERE project_id = ? ORDER BY version DESC LIMIT ?`,
    )
    .all(p.id, limit) as (Omit<HistoryEntry, 'state'> & { snapshot: string })[];
  return rows.map(({ snapshot: s, ...r }) => ({ ...r, state: JSON.parse(s) as PermissionSnapshot }));
}

/**
 * Replaces a project's path rules. Every subject must be a role, `*` or a current member; the
 * field of the first bad rule is named (`rules.2.subject: ...`).
 */
export function setPathRules(db: DB, actor: string, slug: string, rules: PathRule[]): number {
  return db
    .transaction(() => {
      const p = requireProject(db, slug);
      const names = new Set(members(db, p.id).map((m) => m.user));
      const seen = new Set<string>();
      rules.forEach((r, i) => {
        try {
          assertRulePath(r.path);
        } catch (e) {
          throw new InputError(`rules.${i}.path: ${(e as Error).message}`);
        }
        try {
          assertSubject(r.subject);
        } catch (e) {
          throw new InputError(`rules.${i}.subject: ${(e as Error).message}`);
        }
        if (r.subject === '*' && r.access === 'rw') {
          throw new InputError(`rules.${i}.access: "*" includes anonymous visitors, who may never write; give rw to a role or a member`);
        }
        if (r.subject !== '*' && !r.subject.startsWith('@') && !names.has(r.subject)) {
          throw new InputError(`rules.${i}.subject: ${r.subject} is not a member of ${slug}; add them first`);
        }
        const key = `${r.path} ${r.subject}`;
        if (seen.has(key)) throw new InputError(`rules.${i}: a second rule for ${r.subject} on ${r.path}`);
        seen.add(key);
      });
      const before = pathRules(db, p.id);
      db.prepare(`DELETE FROM path_rules WHERE project_id = ?`).run(p.id);
      const ins = db.prepare(`INSERT INTO path_rules (project_id, path, subject, access) VALUES (?, ?, ?, ?)`);
      for (const r of rules) ins.run(p.id, r.path, r.subject, r.access);
      if (JSON.stringify(before) === JSON.stringify(pathRules(db, p.id))) return currentVersion(db, p.id);
      audit(db, actor, 'paths.set', slug, { rules });
      const summary = rules.length ? rules.map((r) => `${r.path}: ${r.subject}=${r.access || 'none'}`).join(', ') : 'no path rules';
      return recordPermissionChange(db, p.id, actor, 'paths.set', summary);
    })
    .immediate();
}

/**
 * Puts a project's members, roles, visibility and path rules back as they were at `version`, as
 * a new version (history is never rewritten). Users deleted since are left out and named in the
 * summary; a state with no owner left is refused.
 */
export function revertPermissions(db: DB, actor: string, slug: string, version: number): number {
  return db
    .transaction(() => {
      const p = requireProject(db, slug);
      const row = db.prepare(`SELECT snapshot FROM permission_history WHERE project_id = ? AND version = ?`).get(p.id, version) as
        { snapshot: string } | undefined;
      if (!row) throw new NotFoundError(`${slug} has no permission version ${version}`);
      const s = JSON.parse(row.snapshot) as PermissionSnapshot;
      const before = JSON.stringify([snapshot(db, p), membershipRows(db, p.id)]);
      const gone: string[] = [];
      const restored: { id: number; user: string; role: string }[] = [];
      for (const m of s.members) {
        const u = getUser(db, m.user);
        if (u) restored.push({ id: u.id, user: m.user, role: m.role });
        else gone.push(m.user);
      }
      if (!restored.some((m) => m.role === 'owner')) {
        throw new ConflictError(`version ${version} of ${slug} has no owner who still exists; not reverting`);
      }
      const kept = new Set(restored.map((m) => m.user));
      db.prepare(`DELETE FROM memberships WHERE project_id = ?`).run(p.id);
      const insM = db.prepare(`INSERT INTO memberships (project_id, user_id, role) VALUES (?, ?, ?)`);
      for (const m of restored) insM.run(p.id, m.id, m.role);
      db.prepare(`DELETE FROM path_rules WHERE project_id = ?`).run(p.id);
      const insR = db.prepare(`INSERT INTO path_rules (project_id, path, subject, access) VALUES (?, ?, ?, ?)`);
      for (const r of s.rules)
        if (r.subject === '*' || r.subject.startsWith('@') || kept.has(r.subject))
          // An old state may give everyone write access, which is no longer allowed: read at most.
          insR.run(p.id, r.path, r.subject, r.subject === '*' && r.access === 'rw' ? 'r' : r.access);
      // Already that state (reverting twice, or to the state it has): nothing to record. The rows
      // were rewritten to the same values, which costs no space. (Memberships are compared as rows
      // too: a disabled user's, which the snapshot leaves out, is a change to record.)
      const after = JSON.stringify([snapshot(db, { ...p, visibility: s.visibility }), membershipRows(db, p.id)]);
      if (after === before) return currentVersion(db, p.id);
      db.prepare(`UPDATE projects SET visibility = ?, updated_at = ? WHERE id = ?`).run(s.visibility, nowIso(), p.id);
      audit(db, actor, 'permissions.revert', slug, { to: version, gone });
      return recordPermissionChange(
        db,
        p.id,
        actor,
        'revert',
        `reverted to version ${version}` + (gone.length ? ` (users no longer present: ${gone.join(', ')})` : ''),
      );
    })
    .immediate();
}

export interface PublishRow {
  version: number;
  checksum: string;
  changed: number;
  published_at: string;
  publisher: string;
}

export function publishes(db: DB, projectId: number, limit = 20): PublishRow[] {
  return db
    .prepare(
      `SELECT version, checksum, changed, published_at, publisher FROM authz_publishes WHERE project_id = ? ORDER BY id DESC LIMIT ?`,
    )
    .all(projectId, limit) as PublishRow[];
}

export type { Access };

/**
 * Disables or re-enables a user. A disabled user's credentials row is removed (the caller applies
 * it at once with syncUserCredential) and they drop out of every project's groups, each project
 * getting a new permission version. Their memberships are kept for re-enabling.
 */
export function setUserDisabled(db: DB, actor: string, name: string, disabled: boolean): void {
  db.transaction(() => {
    const u = getUser(db, name);
    if (!u) throw new NotFoundError(`no user ${name}`);
    if (!!u.disabled_at === disabled) return;
    if (disabled) {
      const sole = db
        .prepare(
          `SELECT p.slug FROM memberships m JOIN projects p ON p.id = m.project_id
           WHERE m.user_id = ? AND m.role = 'owner' AND p.state <> 'deleted' AND NOT EXISTS (
             SELECT 1 FROM memberships o JOIN users ou ON ou.id = o.user_id
             WHERE o.project_id = m.project_id AND o.role = 'owner' AND o.user_id <> m.user_id AND ou.disabled_at IS NULL)`,
        )
        .pluck()
        .all(u.id) as string[];
      if (sole.length) throw new ConflictError(`${name} is the only owner of ${sole.join(', ')}; add another owner first`);
    }
    db.prepare(`UPDATE users SET disabled_at = ? WHERE id = ?`).run(disabled ? nowIso() : null, u.id);
    audit(db, actor, disabled ? 'user.disable' : 'user.enable', name);
    enqueue(db, 'sync_credentials', null);
    const projects = db
      .prepare(`SELECT m.project_id FROM memberships m JOIN projects p ON p.id = m.project_id WHERE m.user_id = ? AND p.state <> 'deleted'`)
      .pluck()
      .all(u.id) as number[];
    for (const id of projects)
      recordPermissionChange(db, id, actor, disabled ? 'user.disable' : 'user.enable', `${name} ${disabled ? 'disabled' : 'enabled'}`);
  }).immediate();
}

/**
 * readAccess for every live project at once, in one read transaction and three queries: what a
 * rebuild of 10,000 projects renders from (one consistent snapshot).
 */
export function readAllAccess(db: DB): { project: VersionedProject; access: ProjectAccess; version: number }[] {
  return db.transaction(() => {
    const ps = db.prepare(`SELECT * FROM projects WHERE state <> 'deleted' ORDER BY id`).all() as VersionedProject[];
    const ms = new Map<number, MemberRow[]>();
    for (const [pid, user, role] of db
      .prepare(
        `SELECT m.project_id, u.name, m.role FROM memberships m JOIN users u ON u.id = m.user_id
         WHERE u.disabled_at IS NULL ORDER BY m.project_id, u.name`,
      )
      .raw()
      .all() as [number, string, MemberRow['role']][]) {
      const list = ms.get(pid) ?? [];
      list.push({ user, role });
      ms.set(pid, list);
    }
    const rs = new Map<number, PathRule[]>();
    for (const [pid, path, subject, access] of db
      .prepare(`SELECT project_id, path, subject, access FROM path_rules ORDER BY project_id, path, subject`)
      .raw()
      .all() as [number, string, string, PathRule['access']][]) {
      const list = rs.get(pid) ?? [];
      list.push({ path, subject, access });
      rs.set(pid, list);
    }
    return ps.map((p) => ({
      project: p,
      access: {
        slug: p.slug,
        visibility: p.visibility,
        members: ms.get(p.id) ?? [],
        rules: rs.get(p.id) ?? [],
        suspended: p.state === 'suspended',
      },
      version: p.perm_version,
    }));
  })();
}

/** A live project with its permission and publish versions (the authz status). */
export function versionedProject(db: DB, slug: string): VersionedProject | undefined {
  return db.prepare(`SELECT * FROM projects WHERE slug = ? AND state <> 'deleted'`).get(slug) as VersionedProject | undefined;
}

/**
 * The authz publisher's statements, prepared once per database: the version on disk, and the
 * record of a publish (called inside its BEGIN IMMEDIATE transaction, around the rename).
 */
const publishStatements = new WeakMap<DB, ReturnType<typeof preparePublish>>();
function preparePublish(db: DB) {
  return {
    published: db.prepare(`SELECT published_version FROM projects WHERE id = ?`).pluck(),
    update: db.prepare(`UPDATE projects SET published_version = ?, published_checksum = ?, published_at = ? WHERE id = ?`),
    record: db.prepare(
      `INSERT INTO authz_publishes (project_id, version, checksum, changed, published_at, publisher) VALUES (?, ?, ?, ?, ?, ?)`,
    ),
  };
}
const publishSt = (db: DB) => {
  let st = publishStatements.get(db);
  if (!st) publishStatements.set(db, (st = preparePublish(db)));
  return st;
};

export function publishedVersion(db: DB, projectId: number): number | null {
  return publishSt(db).published.get(projectId) as number | null;
}

export function recordPublish(db: DB, projectId: number, version: number, checksum: string, changed: boolean, publisher: string): void {
  const st = publishSt(db);
  const at = nowIso();
  st.update.run(version, checksum, at, projectId);
  st.record.run(projectId, version, checksum, changed ? 1 : 0, at, publisher);
}

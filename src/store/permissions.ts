/**
 * The permission state's rows: path rules, the versioned history of every project's permission
 * state, and the record of what the authz publisher wrote. What a change means (a new version, a
 * publish to queue) is the use case's: src/domain/unit.ts.
 */
import type { DB } from './db.js';
import { nowIso } from './db.js';
import type { PathRule, ProjectAccess, Visibility } from '../names.js';
import { members, type MemberRow } from './members.js';
import type { ProjectRow } from './projects.js';

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
 * Call inside the transaction that changed the permission state: bumps the project's version and
 * stores the new state with who changed what. A state equal to the newest version's is no change:
 * no version, no history row (`changed` false, the current version returned), so repeating a
 * change costs no space. Queueing the publish is the caller's (src/domain/unit.ts).
 */
export function recordVersion(
  db: DB,
  projectId: number,
  actor: string,
  action: string,
  summary: string,
): { version: number; changed: boolean } {
  const p = db.prepare(`SELECT * FROM projects WHERE id = ?`).get(projectId) as VersionedProject;
  const known = db.prepare(`SELECT max(version) FROM permission_history WHERE project_id = ?`).pluck().get(projectId) as number | null;
  const state = JSON.stringify(snapshot(db, p));
  if (known !== null && historySnapshotText(db, projectId, known) === state) return { version: p.perm_version, changed: false };
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
  return { version, changed: true };
}

const historySnapshotText = (db: DB, projectId: number, version: number): string | undefined =>
  db.prepare(`SELECT snapshot FROM permission_history WHERE project_id = ? AND version = ?`).pluck().get(projectId, version) as
    string | undefined;

/** The permission state a project had at `version`, if that version is kept. */
export function historySnapshot(db: DB, projectId: number, version: number): PermissionSnapshot | undefined {
  const s = historySnapshotText(db, projectId, version);
  return s === undefined ? undefined : (JSON.parse(s) as PermissionSnapshot);
}

/** The project's current permission state, as a history row would hold it. */
export const currentSnapshot = (db: DB, p: ProjectRow): PermissionSnapshot => snapshot(db, p);

export const currentVersion = (db: DB, projectId: number): number =>
  db.prepare(`SELECT perm_version FROM projects WHERE id = ?`).pluck().get(projectId) as number;

/** Replaces a project's path rules (checked by the caller: src/domain/permissions.ts). */
export function replacePathRules(db: DB, projectId: number, rules: readonly PathRule[]): void {
  db.prepare(`DELETE FROM path_rules WHERE project_id = ?`).run(projectId);
  const ins = db.prepare(`INSERT INTO path_rules (project_id, path, subject, access) VALUES (?, ?, ?, ?)`);
  for (const r of rules) ins.run(projectId, r.path, r.subject, r.access);
}

/** Removes a subject's rules from a project (a member who leaves takes theirs along). */
export function deleteRulesOf(db: DB, projectId: number, subject: string): void {
  db.prepare(`DELETE FROM path_rules WHERE project_id = ? AND subject = ?`).run(projectId, subject);
}

export interface HistoryEntry {
  version: number;
  at: string;
  actor: string;
  action: string;
  summary: string;
  state: PermissionSnapshot;
}

export function permissionHistory(db: DB, projectId: number, limit = 100): HistoryEntry[] {
  const rows = db
    .prepare(
      `SELECT version, at, actor, action, summary, snapshot FROM permission_history WHERE project_id = ? ORDER BY version DESC LIMIT ?`,
    )
    .all(projectId, limit) as (Omit<HistoryEntry, 'state'> & { snapshot: string })[];
  return rows.map(({ snapshot: s, ...r }) => ({ ...r, state: JSON.parse(s) as PermissionSnapshot }));
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

// ---- retention (each sweep deletes at most `batch` rows in one statement) ----

/** Projects with more than `keep` rows in `table` (a read: it takes no write lock). */
export function projectsOver(db: DB, table: 'permission_history' | 'authz_publishes', keep: number): number[] {
  return db.prepare(`SELECT project_id FROM ${table} GROUP BY project_id HAVING count(*) > ?`).pluck().all(keep) as number[];
}

/**
 * One project's permission versions older than its newest `keep`, never the version on disk
 * (`published_version`: what a publisher or an operator may need to compare with) and never the
 * newest (a new change numbers itself from it).
 */
export function trimPermissionHistory(db: DB, projectId: number, keep: number, batch: number): number {
  return db
    .prepare(
      `DELETE FROM permission_history WHERE id IN (
         SELECT h.id FROM permission_history h
         WHERE h.project_id = @pid
           AND h.version < (SELECT version FROM permission_history WHERE project_id = @pid ORDER BY version DESC LIMIT 1 OFFSET @keep - 1)
           AND h.version IS NOT (SELECT published_version FROM projects WHERE id = @pid)
         ORDER BY h.version LIMIT @batch)`,
    )
    .run({ pid: projectId, keep: Math.max(1, keep), batch }).changes;
}

/** One project's publish records older than its newest `keep` (the authz status shows the last 20). */
export function trimPublishes(db: DB, projectId: number, keep: number, batch: number): number {
  return db
    .prepare(
      `DELETE FROM authz_publishes WHERE id IN (
         SELECT id FROM authz_publishes
         WHERE project_id = @pid
           AND id < (SELECT id FROM authz_publishes WHERE project_id = @pid ORDER BY id DESC LIMIT 1 OFFSET @keep - 1)
         ORDER BY id LIMIT @batch)`,
    )
    .run({ pid: projectId, keep: Math.max(1, keep), batch }).changes;
}

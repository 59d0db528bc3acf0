/** Memberships: who belongs to which project with which role (the owner rule is src/domain/owners.ts's). */
import type { DB } from './db.js';
import type { Role } from '../names.js';

export interface MemberRow {
  user: string;
  role: Role;
}

/** A project's enabled members, by name. */
export function members(db: DB, projectId: number): MemberRow[] {
  return db
    .prepare(
      `SELECT u.name AS user, m.role FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.project_id = ? AND u.disabled_at IS NULL ORDER BY u.name`,
    )
    .all(projectId) as MemberRow[];
}

/** The role a user holds in a project (enabled or not), or undefined. */
export function roleOf(db: DB, projectId: number, userId: number): Role | undefined {
  return db.prepare(`SELECT role FROM memberships WHERE project_id = ? AND user_id = ?`).pluck().get(projectId, userId) as Role | undefined;
}

export function upsertMember(db: DB, projectId: number, userId: number, role: Role): void {
  db.prepare(
    `INSERT INTO memberships (project_id, user_id, role) VALUES (?, ?, ?)
     ON CONFLICT(project_id, user_id) DO UPDATE SET role = excluded.role`,
  ).run(projectId, userId, role);
}

/** Removes a membership; returns whether there was one. */
export function deleteMember(db: DB, projectId: number, userId: number): boolean {
  return db.prepare(`DELETE FROM memberships WHERE project_id = ? AND user_id = ?`).run(projectId, userId).changes > 0;
}

/** Replaces every membership of a project. */
export function replaceMembers(db: DB, projectId: number, rows: { userId: number; role: Role }[]): void {
  db.prepare(`DELETE FROM memberships WHERE project_id = ?`).run(projectId);
  const ins = db.prepare(`INSERT INTO memberships (project_id, user_id, role) VALUES (?, ?, ?)`);
  for (const m of rows) ins.run(projectId, m.userId, m.role);
}

/** A project's membership rows as [user_id, role], enabled or not (to compare states). */
export function membershipRows(db: DB, projectId: number): unknown[] {
  return db.prepare(`SELECT user_id, role FROM memberships WHERE project_id = ? ORDER BY user_id`).raw().all(projectId);
}

/** How many projects a user belongs to. */
export function membershipCount(db: DB, userId: number): number {
  return db.prepare(`SELECT count(*) FROM memberships WHERE user_id = ?`).pluck().get(userId) as number;
}

/** Live (not deleted) projects a user belongs to, by id; `role` narrows to one role. */
export function memberProjectIds(db: DB, userId: number, role?: Role): number[] {
  return db
    .prepare(
      `SELECT m.project_id FROM memberships m JOIN projects p ON p.id = m.project_id
       WHERE m.user_id = ? AND p.state <> 'deleted' AND (? IS NULL OR m.role = ?) ORDER BY m.project_id`,
    )
    .pluck()
    .all(userId, role ?? null, role ?? null) as number[];
}

/** Of these projects, the live ones with no enabled owner, by slug. */
export function ownerlessProjects(db: DB, projectIds: number[]): string[] {
  const st = db.prepare(
    `SELECT p.slug FROM projects p WHERE p.id = ? AND p.state <> 'deleted' AND NOT EXISTS (
       SELECT 1 FROM memberships m JOIN users u ON u.id = m.user_id
       WHERE m.project_id = p.id AND m.role = 'owner' AND u.disabled_at IS NULL)`,
  );
  return projectIds.flatMap((id) => (st.pluck().get(id) as string | undefined) ?? []);
}

/** Projects `userId` owns that take a place on the host (not deleted, nor being deleted). */
export function ownedProjectCount(db: DB, userId: number): number {
  return db
    .prepare(
      `SELECT count(*) FROM memberships m JOIN projects p ON p.id = m.project_id
       WHERE m.user_id = ? AND m.role = 'owner' AND p.state NOT IN ('deleted', 'deleting')`,
    )
    .pluck()
    .get(userId) as number;
}

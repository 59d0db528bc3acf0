/** Projects: the projects table (states and their moves are decided in src/domain/). */
import crypto from 'node:crypto';
import type { DB } from './db.js';
import { nowIso } from './db.js';
import { NotFoundError } from '../errors.js';
import type { Visibility } from '../names.js';

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

/** Every live project, or those `forUser` belongs to, by slug. */
export function listProjects(db: DB, forUser?: string): ProjectRow[] {
  if (forUser === undefined) return db.prepare(`SELECT * FROM projects WHERE state <> 'deleted' ORDER BY slug`).all() as ProjectRow[];
  return db
    .prepare(
      `SELECT p.* FROM projects p JOIN memberships m ON m.project_id = p.id JOIN users u ON u.id = m.user_id
       WHERE u.name = ? AND p.state <> 'deleted' ORDER BY p.slug`,
    )
    .all(forUser) as ProjectRow[];
}

/** Inserts a project in state 'provisioning' with a new repository UUID; returns its row. */
export function insertProject(db: DB, p: { slug: string; title: string; visibility: Visibility }): ProjectRow {
  const now = nowIso();
  const r = db
    .prepare(
      `INSERT INTO projects (slug, title, visibility, state, repo_uuid, created_at, updated_at)
       VALUES (?, ?, ?, 'provisioning', ?, ?, ?)`,
    )
    .run(p.slug, p.title, p.visibility, crypto.randomUUID(), now, now);
  return getProjectById(db, Number(r.lastInsertRowid))!;
}

export function setTitleAndVisibility(db: DB, id: number, title: string, visibility: Visibility): void {
  db.prepare(`UPDATE projects SET title = ?, visibility = ?, updated_at = ? WHERE id = ?`).run(title, visibility, nowIso(), id);
}

/** Writes a project's state and last error (which moves are allowed, and what they imply, is src/domain/lifecycle.ts's). */
export function writeState(db: DB, id: number, state: ProjectRow['state'], lastError: string | null): void {
  db.prepare(`UPDATE projects SET state = ?, last_error = ?, updated_at = ? WHERE id = ?`).run(state, lastError, nowIso(), id);
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

/** Ids of every project that is not deleted (the nightly drift repair reconciles them all). */
export function liveProjectIds(db: DB): number[] {
  return db.prepare(`SELECT id FROM projects WHERE state <> 'deleted'`).pluck().all() as number[];
}

/** Projects that take a place on the host (the capacity gate's count). */
export function liveProjectCount(db: DB): number {
  return (db.prepare(`SELECT count(*) AS n FROM projects WHERE state NOT IN ('deleted','deleting')`).get() as { n: number }).n;
}

/** Accounts: the users table (the rules about them are in src/domain/users.ts). */
import type { DB } from './db.js';
import { nowIso } from './db.js';
import { NotFoundError } from '../errors.js';

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

export function getUser(db: DB, name: string): UserRow | undefined {
  return db.prepare(`SELECT * FROM users WHERE name = ?`).get(name) as UserRow | undefined;
}

export function requireUser(db: DB, name: string): UserRow {
  const u = getUser(db, name);
  if (!u) throw new NotFoundError(`no user ${name}`);
  return u;
}

export function getUserById(db: DB, id: number): UserRow | undefined {
  return db.prepare(`SELECT * FROM users WHERE id = ?`).get(id) as UserRow | undefined;
}

export function listUsers(db: DB): UserRow[] {
  return db.prepare(`SELECT * FROM users ORDER BY name`).all() as UserRow[];
}

/** Inserts a user row; returns its id. */
export function insertUser(db: DB, u: { name: string; email: string; passwordHash: string; isAdmin?: boolean }): number {
  return Number(
    db
      .prepare(`INSERT INTO users (name, email, password_hash, is_admin, created_at) VALUES (?, ?, ?, ?, ?)`)
      .run(u.name, u.email, u.passwordHash, u.isAdmin ? 1 : 0, nowIso()).lastInsertRowid,
  );
}

/** Stores a web password's hash. */
export function setPasswordHash(db: DB, userId: number, passwordHash: string): void {
  db.prepare(`UPDATE users SET password_hash = ? WHERE id = ?`).run(passwordHash, userId);
}

/** Marks a user disabled (now) or enabled. */
export function setDisabled(db: DB, userId: number, disabled: boolean): void {
  db.prepare(`UPDATE users SET disabled_at = ? WHERE id = ?`).run(disabled ? nowIso() : null, userId);
}

/** Sets a user's own project limit (null: the operator's default). */
export function setUserMaxProjects(db: DB, userId: number, max: number | null): void {
  db.prepare(`UPDATE users SET max_projects = ? WHERE id = ?`).run(max, userId);
}

/** One page of users whose name or email contains `q`, with the total count. */
export function searchUsers(db: DB, q: string, limit: number, offset: number): { rows: UserRow[]; total: number } {
  const like = `%${q.replace(/[\\%_]/g, (c) => '\\' + c)}%`;
  const where = `(name LIKE ? ESCAPE '\\' OR email LIKE ? ESCAPE '\\')`;
  const total = (db.prepare(`SELECT count(*) AS n FROM users WHERE ${where}`).get(like, like) as { n: number }).n;
  const rows = db.prepare(`SELECT * FROM users WHERE ${where} ORDER BY name LIMIT ? OFFSET ?`).all(like, like, limit, offset) as UserRow[];
  return { rows, total };
}

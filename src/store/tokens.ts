/**
 * Tokens' rows: each user's access token (what Subversion and Trac take as the password, kept as
 * the {SHA} hash mod_authn_dbd compares with) and the admin API's bearer tokens (kept as sha256).
 * Their formats and hashing are src/domain/tokens.ts's.
 */
import type { DB } from './db.js';
import { nowIso } from './db.js';

/** Sets a user's access token hash (a user has one; a new one replaces the old). */
export function putAccessToken(db: DB, userId: number, apacheHash: string): void {
  db.prepare(
    `INSERT INTO access_tokens (user_id, apache_hash, created_at) VALUES (?, ?, ?)
     ON CONFLICT(user_id) DO UPDATE SET apache_hash = excluded.apache_hash, created_at = excluded.created_at`,
  ).run(userId, apacheHash, nowIso());
}

/**
 * What Apache's credentials table should hold: [name, {SHA} hash of the access token] of every
 * enabled user with a token. Rows as arrays in one call: about twice as fast as iterating objects
 * at 100,000 users.
 */
export function enabledUserCredentials(db: DB): [string, string][] {
  return db
    .prepare(`SELECT u.name, t.apache_hash FROM users u JOIN access_tokens t ON t.user_id = u.id WHERE u.disabled_at IS NULL`)
    .raw()
    .all() as [string, string][];
}

/** The {SHA} hash of an enabled user's access token; undefined for no such user, a disabled one, or no token. */
export function userCredentialHash(db: DB, name: string): string | undefined {
  const row = db
    .prepare(`SELECT t.apache_hash FROM users u JOIN access_tokens t ON t.user_id = u.id WHERE u.name = ? AND u.disabled_at IS NULL`)
    .get(name) as { apache_hash: string } | undefined;
  return row?.apache_hash;
}

/** Records an admin API token by its hash; false when the name is taken. */
export function insertApiToken(db: DB, name: string, hash: string, scopes: string[]): boolean {
  try {
    db.prepare(`INSERT INTO api_tokens (name, hash, scopes, created_at) VALUES (?, ?, ?, ?)`).run(name, hash, scopes.join(' '), nowIso());
    return true;
  } catch (e) {
    if (String(e).includes('UNIQUE')) return false;
    throw e;
  }
}

/** The admin API token with this hash, marking it used; undefined when unknown. */
export function useApiToken(db: DB, hash: string): { name: string; scopes: string[] } | undefined {
  const row = db.prepare(`SELECT id, name, scopes FROM api_tokens WHERE hash = ?`).get(hash) as
    { id: number; name: string; scopes: string } | undefined;
  if (!row) return undefined;
  db.prepare(`UPDATE api_tokens SET last_used_at = ? WHERE id = ?`).run(nowIso(), row.id);
  return { name: row.name, scopes: row.scopes.split(' ') };
}

import type { DB } from './db.js';

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

import Database from 'better-sqlite3';
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { DB } from '../../store/db.js';

/**
 * Apache authenticates every SVN and Trac request against a small SQLite database of its own
 * (mod_authn_dbd), not Keelson's database and not a flat htpasswd: a lookup is an indexed read,
 * and a changed row takes effect on the next request with no file to regenerate.
 *
 * What Apache checks is the user's generated access token (192 random bits), stored as
 * {SHA}base64(sha1(token)): with that much entropy a fast hash resists offline guessing as well
 * as a slow one, and costs Apache microseconds per request instead of bcrypt's hundreds of
 * milliseconds. The human password is hashed slowly (scrypt) and never leaves Keelson's database.
 */
export function newAccessToken(): string {
  return 'svn_' + crypto.randomBytes(24).toString('base64url');
}

export function apacheHash(token: string): string {
  return '{SHA}' + crypto.createHash('sha1').update(token).digest('base64');
}

export function openCredentialsDb(file: string): Database.Database {
  const db = new Database(file);
  // Rollback journal, not WAL: Apache's readers then need only read access to the file.
  db.pragma('journal_mode = DELETE');
  db.pragma('busy_timeout = 5000');
  db.exec(`CREATE TABLE IF NOT EXISTS credentials (username TEXT PRIMARY KEY, hash TEXT NOT NULL) WITHOUT ROWID`);
  return db;
}

/**
 * Makes Apache's credentials table equal to the enabled users' tokens in Keelson's database.
 * One transaction: Apache sees the old or the new table, never a mixture.
 */
export function syncCredentials(db: DB, authDbFile: string, perms?: { uid: number; gid: number }): { upserted: number; removed: number } {
  // Rows as arrays in one call: about twice as fast as iterating objects at 100,000 users.
  const want = new Map<string, string>(
    db
      .prepare(`SELECT u.name, t.apache_hash FROM users u JOIN access_tokens t ON t.user_id = u.id WHERE u.disabled_at IS NULL`)
      .raw()
      .all() as [string, string][],
  );
  const fresh = !fs.existsSync(authDbFile);
  const adb = openCredentialsDb(authDbFile);
  try {
    if (fresh && perms) {
      fs.chownSync(authDbFile, 0, perms.gid);
      fs.chmodSync(authDbFile, 0o640);
    }
    let upserted = 0;
    let removed = 0;
    const have = new Map<string, string>(adb.prepare(`SELECT username, hash FROM credentials`).raw().all() as [string, string][]);
    const put = adb.prepare(
      `INSERT INTO credentials (username, hash) VALUES (?, ?) ON CONFLICT(username) DO UPDATE SET hash = excluded.hash`,
    );
    const del = adb.prepare(`DELETE FROM credentials WHERE username = ?`);
    adb.transaction(() => {
      for (const [u, h] of want) {
        if (have.get(u) !== h) upserted += put.run(u, h).changes;
      }
      for (const u of have.keys()) {
        if (!want.has(u)) removed += del.run(u).changes;
      }
    })();
    return { upserted, removed };
  } finally {
    adb.close();
  }
}

/**
 * Applies one user's row now (token created or rotated, user disabled or enabled), so the change
 * holds from the very next request instead of when the worker's full sync runs. If Apache's
 * credentials database does not exist yet, the worker's sync creates it; nothing is done here.
 */
export function syncUserCredential(db: DB, authDbFile: string, name: string): 'set' | 'removed' | 'none' {
  if (!fs.existsSync(authDbFile)) return 'none';
  const row = db
    .prepare(`SELECT t.apache_hash FROM users u JOIN access_tokens t ON t.user_id = u.id WHERE u.name = ? AND u.disabled_at IS NULL`)
    .get(name) as { apache_hash: string } | undefined;
  const adb = openCredentialsDb(authDbFile);
  try {
    if (row) {
      adb
        .prepare(`INSERT INTO credentials (username, hash) VALUES (?, ?) ON CONFLICT(username) DO UPDATE SET hash = excluded.hash`)
        .run(name, row.apache_hash);
      return 'set';
    }
    adb.prepare(`DELETE FROM credentials WHERE username = ?`).run(name);
    return 'removed';
  } finally {
    adb.close();
  }
}

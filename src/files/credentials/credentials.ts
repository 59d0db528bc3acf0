import Database from 'better-sqlite3';
import fs from 'node:fs';
import type { DB } from '../../store/db.js';
import { enabledUserCredentials, userCredentialHash } from '../../store/tokens.js';
import { userProblem } from '../../names.js';
import { log } from '../../sys/log.js';

/**
 * Apache authenticates every SVN and Trac request against a small SQLite database of its own
 * (mod_authn_dbd), not Keelson's database and not a flat htpasswd: a lookup is an indexed read,
 * and a changed row takes effect on the next request with no file to regenerate.
 *
 * What Apache checks is the user's generated access token (192 random bits), stored as
 * {SHA}base64(sha1(token)): with that much entropy a fast hash resists offline guessing as well
 * as a slow one, and costs Apache microseconds per request instead of bcrypt's hundreds of
 * milliseconds. The human password is hashed slowly (scrypt) and never leaves Keelson's database.
 *
 * This module is credentials.db's one writer. The SQL on credentials.db below is that file's own
 * format (a separate SQLite file Apache reads), not Keelson's database, so it stays here.
 */
/** What mod_authn_dbd's {SHA} scheme compares with: base64 of a 20-byte SHA-1. */
const SHA_HASH_RE = /^\{SHA\}[A-Za-z0-9+/]{27}=$/;

/** Why Apache must not get this row (a name outside the user-name rule, a hash not in {SHA} form), or null. */
export function credentialProblem(name: string, hash: unknown): string | null {
  const p = userProblem(name);
  if (p) return `refusing credentials row for user ${JSON.stringify(name)}: ${p}`;
  if (typeof hash !== 'string' || !SHA_HASH_RE.test(hash)) return `refusing credentials row for ${name}: the hash is not in {SHA} form`;
  return null;
}

function checkRow(name: string, hash: unknown): void {
  const p = credentialProblem(name, hash);
  if (p) throw new Error(p);
}

/**
 * The table Apache should hold (name → hash), every row checked. A row that fails is refused on
 * its own and fails closed: it is not written and that name's live row is removed (an old token
 * must not outlive a rotation nobody could publish), so one bad row (say a name a later release
 * reserves) costs only that user their access and never holds back everyone else's.
 */
export function renderCredentials(rows: Iterable<readonly [string, string]>): {
  want: Map<string, string>;
  refused: { name: string; problem: string }[];
} {
  const want = new Map<string, string>();
  const refused: { name: string; problem: string }[] = [];
  for (const [name, hash] of rows) {
    const problem = credentialProblem(name, hash);
    if (problem) refused.push({ name, problem });
    else want.set(name, hash);
  }
  return { want, refused };
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
 * SQLite's own check of the database as written, inside the writing transaction (before COMMIT):
 * a failure throws, the transaction rolls back, and Apache keeps reading the previous rows.
 */
function verifyWritten(adb: Database.Database, file: string): void {
  const r = adb.pragma('integrity_check', { simple: true });
  if (r !== 'ok') throw new Error(`credentials database ${file} fails integrity_check: ${String(r)}`);
}

/**
 * Makes Apache's credentials table equal `rows` (see renderCredentials: a refused row is reported,
 * logged, and its live row removed). One transaction, checked by SQLite before it commits:
 * Apache sees the old or the new table, never a mixture.
 */
export function publishCredentials(
  file: string,
  rows: Iterable<readonly [string, string]>,
  perms?: { uid: number; gid: number },
): { upserted: number; removed: number; refused?: { name: string; problem: string }[] } {
  const { want, refused } = renderCredentials(rows);
  for (const r of refused)
    log.error('credentials row refused; that user has no SVN/Trac access until it is fixed', { user: r.name, problem: r.problem });
  const fresh = !fs.existsSync(file);
  const adb = openCredentialsDb(file);
  try {
    if (fresh && perms) {
      fs.chownSync(file, 0, perms.gid);
      fs.chmodSync(file, 0o640);
    }
    let upserted = 0;
    let removed = 0;
    const have = new Map<string, string>(adb.prepare(`SELECT username, hash FROM credentials`).raw().all() as [string, string][]);
    const put = adb.prepare(
      `INSERT INTO credentials (username, hash) VALUES (?, ?) ON CONFLICT(username) DO UPDATE SET hash = excluded.hash`,
    );
    const del = adb.prepare(`DELETE FROM credentials WHERE username = ?`);
    const count = adb.prepare(`SELECT count(*) FROM credentials`).pluck();
    adb.transaction(() => {
      for (const [u, h] of want) {
        if (have.get(u) !== h) upserted += put.run(u, h).changes;
      }
      for (const u of have.keys()) {
        if (!want.has(u)) removed += del.run(u).changes;
      }
      if (upserted || removed) {
        verifyWritten(adb, file);
        if (count.get() !== want.size) throw new Error(`credentials database ${file}: the table written does not hold ${want.size} rows`);
      }
    })();
    return refused.length ? { upserted, removed, refused } : { upserted, removed };
  } finally {
    adb.close();
  }
}

/**
 * One user's row: set to `hash`, or removed (undefined). The row is checked before it is written,
 * read back and checked again with the database (integrity_check) before the transaction commits;
 * a refused row removes the live one and throws.
 * If the credentials database does not exist yet, nothing is done (the full sync creates it).
 */
export function publishCredential(file: string, name: string, hash: string | undefined): 'set' | 'removed' | 'none' {
  if (!fs.existsSync(file)) return 'none';
  const problem = hash === undefined ? null : credentialProblem(name, hash);
  const adb = openCredentialsDb(file);
  try {
    const out = adb.transaction(() => {
      if (hash === undefined || problem) {
        // Removed, or refused: a refused row fails closed (the old token stops working too).
        adb.prepare(`DELETE FROM credentials WHERE username = ?`).run(name);
        verifyWritten(adb, file);
        return 'removed' as const;
      }
      adb
        .prepare(`INSERT INTO credentials (username, hash) VALUES (?, ?) ON CONFLICT(username) DO UPDATE SET hash = excluded.hash`)
        .run(name, hash);
      verifyWritten(adb, file);
      checkRow(name, adb.prepare(`SELECT hash FROM credentials WHERE username = ?`).pluck().get(name));
      return 'set' as const;
    })();
    if (problem) {
      log.error('credentials row refused; that user has no SVN/Trac access until it is fixed', { user: name, problem });
      throw new Error(problem);
    }
    return out;
  } finally {
    adb.close();
  }
}

/** Makes Apache's credentials table equal to the enabled users' tokens in Keelson's database. */
export function syncCredentials(db: DB, authDbFile: string, perms?: { uid: number; gid: number }): { upserted: number; removed: number } {
  return publishCredentials(authDbFile, enabledUserCredentials(db), perms);
}

/**
 * Applies one user's row now (token created or rotated, user disabled or enabled), so the change
 * holds from the very next request instead of when the worker's full sync runs. If Apache's
 * credentials database does not exist yet, the worker's sync creates it; nothing is done here.
 */
export function syncUserCredential(db: DB, authDbFile: string, name: string): 'set' | 'removed' | 'none' {
  if (!fs.existsSync(authDbFile)) return 'none';
  return publishCredential(authDbFile, name, userCredentialHash(db, name));
}

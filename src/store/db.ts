import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { MIGRATIONS } from './migrations.js';

export type DB = Database.Database;

/**
 * `shared`: an API running apart as its own user (KEELSON_API_USER) opens it too, through the
 * file's group (0660; the worker, root, gives the group and owns the directory, so that user can
 * create, rename or replace nothing in it). Otherwise 0600.
 */
export function openDatabase(file: string, o: { shared?: boolean } = {}): DB {
  const mode = o.shared ? 0o660 : 0o600;
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  // Password hashes, session hashes, the CSRF secret: readable by Keelson alone. SQLite gives the
  // -wal and -shm files the main file's mode (and, as root, its owner), so the file's mode covers all three.
  const fd = fs.openSync(file, 'a', mode);
  const own = (f: string) => fs.statSync(f).uid === process.getuid?.();
  if (own(file)) fs.fchmodSync(fd, mode);
  fs.closeSync(fd);
  const db = new Database(file);
  for (const extra of ['-wal', '-shm']) if (fs.existsSync(file + extra) && own(file + extra)) fs.chmodSync(file + extra, mode);
  if (o.shared) {
    // Another user can write this file's bytes (the API apart, through the group): root's side
    // runs none of the schema's code as trusted and checks cells as it reads them.
    db.pragma('trusted_schema = OFF');
    db.pragma('cell_size_check = ON');
  }
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  // API, worker and CLI may be separate processes on the same file.
  db.pragma('busy_timeout = 5000');
  migrate(db);
  return db;
}

export function migrate(db: DB): number {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new Error(
      `database schema version ${current} is newer than this Keelson knows (${MIGRATIONS.length}); refusing to run an older release on it`,
    );
  }
  for (let v = current; v < MIGRATIONS.length; v++) {
    const sql = MIGRATIONS[v]!;
    db.transaction(() => {
      db.exec(sql);
      db.pragma(`user_version = ${v + 1}`);
    }).immediate();
  }
  return MIGRATIONS.length;
}

export const nowIso = (): string => new Date().toISOString();

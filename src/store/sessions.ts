/** Browser sessions: kept by the hash of their cookie token, with idle expiry and a per-user cap. */
import crypto from 'node:crypto';
import type { DB } from './db.js';
import { sha256 } from '../sys/hash.js';
import { getUserById, type UserRow } from './users.js';

export interface SessionRow {
  id_hash: string;
  user_id: number;
  created_at: number;
  seen_at: number;
  expires_at: number;
  draft: string | null;
}

/**
 * A new session for `userId`; in the same transaction the user's sessions beyond `maxPerUser`
 * (the oldest first) are deleted, so signing in over and over leaves at most that many rows.
 */
export function createSession(db: DB, userId: number, idleSeconds: number, maxPerUser: number): string {
  const token = crypto.randomBytes(32).toString('base64url');
  const now = Date.now();
  db.transaction(() => {
    db.prepare(`INSERT INTO sessions (id_hash, user_id, created_at, seen_at, expires_at) VALUES (?, ?, ?, ?, ?)`).run(
      sha256(token),
      userId,
      now,
      now,
      now + idleSeconds * 1000,
    );
    // Only live sessions count: this user's expired ones go first.
    db.prepare(`DELETE FROM sessions WHERE user_id = ? AND expires_at < ?`).run(userId, now);
    // Newest first by creation (rowid breaks a tie within one millisecond); everything past the cap goes.
    db.prepare(
      `DELETE FROM sessions WHERE rowid IN (
         SELECT rowid FROM sessions WHERE user_id = ? ORDER BY created_at DESC, rowid DESC LIMIT -1 OFFSET ?)`,
    ).run(userId, Math.max(1, maxPerUser));
    // Everyone else's expired sessions and old throttle windows: the retention sweep's (batched, indexed).
  }).immediate();
  return token;
}

/** The live session for a cookie token, sliding its expiry; undefined if unknown or expired. */
export function touchSession(db: DB, token: string, idleSeconds: number): (SessionRow & { user: UserRow }) | undefined {
  const s = db.prepare(`SELECT * FROM sessions WHERE id_hash = ?`).get(sha256(token)) as SessionRow | undefined;
  const now = Date.now();
  if (!s || s.expires_at < now) return undefined;
  const user = getUserById(db, s.user_id);
  if (!user || user.disabled_at) return undefined;
  if (now - s.seen_at > 60_000)
    db.prepare(`UPDATE sessions SET seen_at = ?, expires_at = ? WHERE id_hash = ?`).run(now, now + idleSeconds * 1000, s.id_hash);
  return { ...s, user };
}

export function deleteSession(db: DB, token: string): void {
  db.prepare(`DELETE FROM sessions WHERE id_hash = ?`).run(sha256(token));
}
export function deleteUserSessions(db: DB, userId: number, except?: string): void {
  db.prepare(`DELETE FROM sessions WHERE user_id = ? AND id_hash <> ?`).run(userId, except ? sha256(except) : '');
}
export function setDraft(db: DB, token: string, draft: { path: string; fields: Record<string, string> } | null): void {
  db.prepare(`UPDATE sessions SET draft = ? WHERE id_hash = ?`).run(draft ? JSON.stringify(draft) : null, sha256(token));
}

/** Sessions that expired before `beforeMs`. */
export function deleteSessionsExpiredBefore(db: DB, beforeMs: number, batch: number): number {
  return db.prepare(`DELETE FROM sessions WHERE rowid IN (SELECT rowid FROM sessions WHERE expires_at < ? LIMIT ?)`).run(beforeMs, batch)
    .changes;
}

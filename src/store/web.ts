/**
 * The rows of sign-in and the capacity gate: sessions, throttles, settings, waitlist, invites and
 * disk samples (schema in src/store/schema/web.ts). Every write is one statement or one
 * transaction; the rules that use them live in src/domain/.
 */
import crypto from 'node:crypto';
import type { DB } from './db.js';
import { nowIso } from './db.js';
import * as model from './model.js';
import { InputError } from '../errors.js';

export const sha256 = (s: string): string => crypto.createHash('sha256').update(s).digest('hex');

// ---- settings ----

function getSetting<T>(db: DB, key: string): T | undefined {
  const row = db.prepare(`SELECT value FROM settings WHERE key = ?`).get(key) as { value: string } | undefined;
  return row ? (JSON.parse(row.value) as T) : undefined;
}
function putSetting(db: DB, key: string, value: unknown): void {
  db.prepare(`INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`).run(
    key,
    JSON.stringify(value),
  );
}

/** The server's HMAC key for CSRF tokens, made once per database. */
export function csrfSecret(db: DB): Buffer {
  let s = getSetting<string>(db, 'csrf_secret');
  if (!s) {
    db.prepare(`INSERT OR IGNORE INTO settings (key, value) VALUES ('csrf_secret', ?)`).run(
      JSON.stringify(crypto.randomBytes(32).toString('base64')),
    );
    s = getSetting<string>(db, 'csrf_secret')!;
  }
  return Buffer.from(s, 'base64');
}

export const SIGNUP_MODES = ['open', 'invite', 'closed'] as const;
export type SignupMode = (typeof SIGNUP_MODES)[number];
export interface Capacity {
  /** Live projects allowed; null = no limit. */
  maxProjects: number | null;
  /** Free bytes the data volume must keep; new projects stop below it. */
  minFreeBytes: number;
  signupMode: SignupMode;
  /** Storage limit (repository + Trac) of a project without its own; null = no limit. */
  projectStorageLimitBytes: number | null;
  /** Projects one (non-admin) user may own, unless their account has its own limit; null = no limit. */
  maxProjectsPerUser: number | null;
}
export const DEFAULT_CAPACITY: Capacity = {
  maxProjects: null,
  minFreeBytes: 0,
  signupMode: 'open',
  projectStorageLimitBytes: 2 * 1024 ** 3,
  maxProjectsPerUser: 10,
};

export function getCapacity(db: DB): Capacity {
  return { ...DEFAULT_CAPACITY, ...(getSetting<Partial<Capacity>>(db, 'capacity') ?? {}) };
}
export function setCapacity(db: DB, actor: string, c: Capacity): void {
  db.transaction(() => {
    putSetting(db, 'capacity', c);
    model.audit(db, actor, 'capacity.set', 'host', c);
  }).immediate();
}

export function liveProjectCount(db: DB): number {
  return (db.prepare(`SELECT count(*) AS n FROM projects WHERE state NOT IN ('deleted','deleting')`).get() as { n: number }).n;
}

// ---- sessions ----

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
export function touchSession(db: DB, token: string, idleSeconds: number): (SessionRow & { user: model.UserRow }) | undefined {
  const s = db.prepare(`SELECT * FROM sessions WHERE id_hash = ?`).get(sha256(token)) as SessionRow | undefined;
  const now = Date.now();
  if (!s || s.expires_at < now) return undefined;
  const user = model.getUserById(db, s.user_id);
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

// ---- throttles (fixed windows) ----

export interface Limit {
  max: number;
  windowSeconds: number;
}

/** Seconds until `key` may be tried again, or 0 if it is under its limit. Does not count. */
export function throttled(db: DB, key: string, limit: Limit): number {
  const row = db.prepare(`SELECT window_start, count FROM throttles WHERE key = ?`).get(key) as
    { window_start: number; count: number } | undefined;
  const now = Date.now();
  if (!row || now - row.window_start >= limit.windowSeconds * 1000) return 0;
  if (row.count < limit.max) return 0;
  return Math.ceil((row.window_start + limit.windowSeconds * 1000 - now) / 1000);
}

/** How many times `key` was counted in its current window (0 when it has none or it ran out). */
export function counted(db: DB, key: string, windowSeconds: number): number {
  const row = db.prepare(`SELECT window_start, count FROM throttles WHERE key = ?`).get(key) as
    { window_start: number; count: number } | undefined;
  return row && Date.now() - row.window_start < windowSeconds * 1000 ? row.count : 0;
}

/** Counts one attempt against `key`, starting a new window when the last one ran out; returns the count. */
export function hit(db: DB, key: string, limit: Limit): number {
  const now = Date.now();
  return db
    .prepare(
      `INSERT INTO throttles (key, window_start, count) VALUES (?, ?, 1)
     ON CONFLICT(key) DO UPDATE SET
       count = CASE WHEN ? - window_start >= ? THEN 1 ELSE count + 1 END,
       window_start = CASE WHEN ? - window_start >= ? THEN ? ELSE window_start END
     RETURNING count`,
    )
    .pluck()
    .get(key, now, now, limit.windowSeconds * 1000, now, limit.windowSeconds * 1000, now) as number;
}
/** Takes back one count of `key` (an attempt counted in advance that turned out not to count). */
export function uncount(db: DB, key: string): void {
  db.prepare(`UPDATE throttles SET count = count - 1 WHERE key = ? AND count > 0`).run(key);
}
export function clearThrottle(db: DB, key: string): void {
  db.prepare(`DELETE FROM throttles WHERE key = ?`).run(key);
}

// ---- waitlist and invites ----

export interface WaitRow {
  id: number;
  email: string;
  created_at: string;
  invited_at: string | null;
}

/** Adds an address to the waitlist; adding it twice is not an error (and tells nobody anything). */
export function joinWaitlist(db: DB, email: string): void {
  db.prepare(`INSERT INTO waitlist (email, created_at) VALUES (?, ?) ON CONFLICT(email) DO NOTHING`).run(email, nowIso());
}
export function listWaitlist(db: DB): WaitRow[] {
  return db.prepare(`SELECT * FROM waitlist ORDER BY invited_at IS NOT NULL, created_at`).all() as WaitRow[];
}

export interface InviteRow {
  id: number;
  email: string | null;
  created_at: string;
  created_by: string;
  used_at: string | null;
  used_by: string | null;
}

/** Records an invite (its code's hash only) and marks the waitlist entry invited, in one transaction. */
export function insertInvite(db: DB, actor: string, code: string, email: string | null): void {
  db.transaction(() => {
    db.prepare(`INSERT INTO invites (code_hash, email, created_at, created_by) VALUES (?, ?, ?, ?)`).run(
      sha256(code),
      email,
      nowIso(),
      actor,
    );
    if (email) db.prepare(`UPDATE waitlist SET invited_at = ? WHERE email = ?`).run(nowIso(), email);
    model.audit(db, actor, 'invite.create', email ?? '(no address)');
  }).immediate();
}
export function listInvites(db: DB): InviteRow[] {
  return db.prepare(`SELECT id, email, created_at, created_by, used_at, used_by FROM invites ORDER BY id DESC`).all() as InviteRow[];
}
export function inviteValid(db: DB, code: string): boolean {
  return !!db.prepare(`SELECT 1 FROM invites WHERE code_hash = ? AND used_at IS NULL`).get(sha256(code));
}
/** Inside the signup transaction: spends the code or throws. */
export function useInvite(db: DB, code: string, user: string): void {
  const r = db
    .prepare(`UPDATE invites SET used_at = ?, used_by = ? WHERE code_hash = ? AND used_at IS NULL`)
    .run(nowIso(), user, sha256(code));
  if (r.changes !== 1) throw new InputError('invite: this invite code is not valid or was already used');
}

// ---- disk samples and project storage ----

/** One sample per volume at `at`; 30 days of history is what the chart shows, older rows go. */
export function insertDiskSamples(
  db: DB,
  at: number,
  samples: { volume: 'data' | 'backup'; path: string; totalBytes: number; freeBytes: number }[],
): void {
  const ins = db.prepare(`INSERT OR REPLACE INTO disk_samples (at, volume, path, total_bytes, free_bytes) VALUES (?, ?, ?, ?, ?)`);
  db.transaction(() => {
    for (const x of samples) ins.run(at, x.volume, x.path, x.totalBytes, x.freeBytes);
    db.prepare(`DELETE FROM disk_samples WHERE at < ?`).run(at - 30 * 86_400_000);
  })();
}

export interface DiskSample {
  at: number;
  volume: 'data' | 'backup';
  path: string;
  total_bytes: number;
  free_bytes: number;
}
export function diskSamples(db: DB, sinceMs: number): DiskSample[] {
  return db.prepare(`SELECT * FROM disk_samples WHERE at >= ? ORDER BY at`).all(sinceMs) as DiskSample[];
}

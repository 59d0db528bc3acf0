/** The waitlist and invite codes (kept by their hash). */
import type { DB } from './db.js';
import { nowIso } from './db.js';
import { sha256 } from '../sys/hash.js';
import { InputError } from '../errors.js';

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

/** Records an invite (its code's hash only) and marks the waitlist entry invited. */
export function insertInvite(db: DB, actor: string, code: string, email: string | null): void {
  db.prepare(`INSERT INTO invites (code_hash, email, created_at, created_by) VALUES (?, ?, ?, ?)`).run(
    sha256(code),
    email,
    nowIso(),
    actor,
  );
  if (email) db.prepare(`UPDATE waitlist SET invited_at = ? WHERE email = ?`).run(nowIso(), email);
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

/** Host settings: one JSON value per key (the CSRF key, the capacity gate's numbers). */
import crypto from 'node:crypto';
import type { DB } from './db.js';

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
export function putCapacity(db: DB, c: Capacity): void {
  putSetting(db, 'capacity', c);
}

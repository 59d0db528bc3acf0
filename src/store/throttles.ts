/** Throttles: one fixed window and count per key (an address, an account, a pair of both). */
import type { DB } from './db.js';

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

/** Throttle windows that started before `beforeMs` (no window is longer than a day). */
export function deleteThrottlesBefore(db: DB, beforeMs: number, batch: number): number {
  return db.prepare(`DELETE FROM throttles WHERE key IN (SELECT key FROM throttles WHERE window_start < ? LIMIT ?)`).run(beforeMs, batch)
    .changes;
}

/**
 * A project's storage: its limit (`projects.quota_bytes`, NULL for the operator's default) and its
 * measured usage (repository through `repo_rev`, Trac environment), migration 8.
 */
import type { DB } from './db.js';
import { nowIso } from './db.js';

export interface UsageRow {
  id: number;
  slug: string;
  state: string;
  quota_bytes: number | null;
  repo_bytes: number;
  repo_rev: number;
  trac_bytes: number;
  usage_at: number | null;
}

const COLUMNS = `id, slug, state, quota_bytes, repo_bytes, repo_rev, trac_bytes, usage_at`;

export function usageOf(db: DB, slug: string): UsageRow | undefined {
  return db.prepare(`SELECT ${COLUMNS} FROM projects WHERE slug = ? AND state <> 'deleted'`).get(slug) as UsageRow | undefined;
}

export function usageById(db: DB, id: number): UsageRow | undefined {
  return db.prepare(`SELECT ${COLUMNS} FROM projects WHERE id = ?`).get(id) as UsageRow | undefined;
}

/** Projects whose files are on disk (not deleted, not being deleted). */
export function liveUsage(db: DB): UsageRow[] {
  return db.prepare(`SELECT ${COLUMNS} FROM projects WHERE state NOT IN ('deleted', 'deleting') ORDER BY id`).all() as UsageRow[];
}

export function recordUsage(db: DB, id: number, u: { repoBytes: number; repoRev: number; tracBytes: number }): void {
  db.prepare(`UPDATE projects SET repo_bytes = ?, repo_rev = ?, trac_bytes = ?, usage_at = ? WHERE id = ?`).run(
    u.repoBytes,
    u.repoRev,
    u.tracBytes,
    Date.now(),
    id,
  );
}

/** A project's own storage limit (null: the operator's default). */
export function setQuotaBytes(db: DB, id: number, bytes: number | null): void {
  db.prepare(`UPDATE projects SET quota_bytes = ?, updated_at = ? WHERE id = ?`).run(bytes, nowIso(), id);
}

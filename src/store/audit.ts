/** The audit log: who did what to which target, and when (rows only; the use cases decide what is audited). */
import type { DB } from './db.js';
import { nowIso } from './db.js';

export function audit(db: DB, actor: string, action: string, target: string, details: object = {}): void {
  db.prepare(`INSERT INTO audit_log (at, actor, action, target, details) VALUES (?, ?, ?, ?, ?)`).run(
    nowIso(),
    actor,
    action,
    target,
    JSON.stringify(details),
  );
}

/** Audit rows written before `beforeIso` (ISO times compare as text), at most `batch` in one statement. */
export function deleteAuditBefore(db: DB, beforeIso: string, batch: number): number {
  return db.prepare(`DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < ? ORDER BY at LIMIT ?)`).run(beforeIso, batch)
    .changes;
}

/**
 * Project storage limits: what a project may store (repository + Trac environment), what it stores,
 * and who may change the limit. Enforcement is where the bytes arrive (the pre-commit hook, Trac's
 * attachment upload), from the quota files the worker writes (src/provision/usage.ts).
 */
import type { Ctx, Actor } from './context.js';
import type { DB } from '../store/db.js';
import * as usage from '../store/usage.js';
import { getCapacity } from '../store/settings.js';
import { JOB_STORAGE } from '../store/jobs.js';
import { NotAllowedError, NotFoundError } from '../errors.js';
import { inUnit } from './unit.js';

export interface Storage {
  usedBytes: number;
  /** null: no limit. */
  limitBytes: number | null;
  /** The project's own limit (null: it follows the operator's default). */
  ownLimitBytes: number | null;
  /** When usage was last measured (ISO), null before the first measure. */
  measuredAt: string | null;
  /** 'over' at or past the limit, '95%' and '80%' past those shares, else null. */
  warning: 'over' | '95%' | '80%' | null;
}

function limitOf(row: Pick<usage.UsageRow, 'quota_bytes'>, defaultLimit: number | null): number | null {
  return row.quota_bytes ?? defaultLimit;
}

export function warningOf(used: number, limit: number | null): Storage['warning'] {
  if (limit === null) return null;
  if (used >= limit) return 'over';
  if (used >= limit * 0.95) return '95%';
  if (used >= limit * 0.8) return '80%';
  return null;
}

export function storageOfRow(db: DB, row: usage.UsageRow): Storage {
  const limitBytes = limitOf(row, getCapacity(db).projectStorageLimitBytes);
  const usedBytes = row.repo_bytes + row.trac_bytes;
  return {
    usedBytes,
    limitBytes,
    ownLimitBytes: row.quota_bytes,
    measuredAt: row.usage_at === null ? null : new Date(row.usage_at).toISOString(),
    warning: warningOf(usedBytes, limitBytes),
  };
}

/** A project's storage as its members see it (the caller has checked they may see the project). */
export function storageOf(ctx: Ctx, slug: string): Storage {
  const row = usage.usageOf(ctx.db, slug);
  if (!row) throw new NotFoundError(`no project named ${slug}`);
  return storageOfRow(ctx.db, row);
}

/** The same by the project's id (any state but gone for good); null for a row that is gone. */
export function storageOfProject(ctx: Ctx, id: number): Storage | null {
  const row = usage.usageById(ctx.db, id);
  return row ? storageOfRow(ctx.db, row) : null;
}

/** An operator sets a project's own storage limit (null: back to the default); audited, no-op when unchanged. */
export function setStorageLimit(ctx: Ctx, actor: Actor, slug: string, bytes: number | null): Storage {
  if (!actor.admin) throw new NotAllowedError('storageLimitBytes: only an operator (admin) can change a storage limit');
  inUnit(ctx, actor.label, (u) => {
    const row = usage.usageOf(u.db, slug);
    if (!row) throw new NotFoundError(`no project named ${slug}`);
    if (row.quota_bytes === bytes) return;
    usage.setQuotaBytes(u.db, row.id, bytes);
    u.audit('project.storage_limit', slug, { from: row.quota_bytes, to: bytes });
    u.enqueue(JOB_STORAGE, null);
  });
  return storageOf(ctx, slug);
}

/** The quota files follow the database: queued after the operator's default changed, and at start. */
export function refreshQuotaFiles(ctx: Pick<Ctx, 'db' | 'fx'>): void {
  inUnit(ctx, 'system', (u) => u.enqueue(JOB_STORAGE, null));
}

/**
 * A use case's unit of work: one IMMEDIATE transaction in which it writes its rows and records
 * their effects in the open (an audit row, a queued job, a new permission version), then, after
 * the commit, wakes the worker if anything was queued. A unit opened inside another joins it: one
 * transaction, one wake-up at the outer commit.
 */
import type { DB } from '../store/db.js';
import { audit } from '../store/audit.js';
import { enqueue, JOB_RECONCILE } from '../store/jobs.js';
import { recordVersion } from '../store/permissions.js';
import type { Effects } from './context.js';

export interface Unit {
  readonly db: DB;
  /** Who acts, as the audit log and permission history name them. */
  readonly actor: string;
  audit(action: string, target: string, details?: object): void;
  /** Queues a job (coalesced with one of that kind and project already waiting). */
  enqueue(kind: string, projectId: number | null): void;
  /**
   * The project's permission state changed: a new permission version with who changed what, and a
   * reconcile queued to publish it. An unchanged state records nothing; the version is returned.
   */
  permissionChanged(projectId: number, action: string, summary: string): number;
}

const open = new WeakMap<DB, { queued: boolean }>();

export function inUnit<T>(ctx: { db: DB; fx: Pick<Effects, 'enqueued'> }, actor: string, fn: (u: Unit) => T): T {
  const { db } = ctx;
  const outer = open.get(db);
  const state = outer ?? { queued: false };
  const u: Unit = {
    db,
    actor,
    audit: (action, target, details = {}) => audit(db, actor, action, target, details),
    enqueue: (kind, projectId) => {
      enqueue(db, kind, projectId);
      state.queued = true;
    },
    permissionChanged: (projectId, action, summary) => {
      const r = recordVersion(db, projectId, actor, action, summary);
      if (r.changed) u.enqueue(JOB_RECONCILE, projectId);
      return r.version;
    },
  };
  if (outer) return db.transaction(() => fn(u))();
  open.set(db, state);
  let result: T;
  try {
    result = db.transaction(() => fn(u)).immediate();
  } finally {
    open.delete(db);
  }
  if (state.queued) ctx.fx.enqueued();
  return result;
}

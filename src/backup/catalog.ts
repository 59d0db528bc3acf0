import type { DB } from '../store/db.js';
import { nowIso } from '../store/db.js';
import * as store from '../store/backups.js';
import { holderAlive, holderId } from '../store/leases.js';
import type { BackupKind, BackupRow, BackupState } from '../store/backups.js';
import type { SpaceNumbers } from './space.js';

// The rows and their queries are the store's (src/store/backups.ts), as are the leases (src/store/leases.ts).

export function insertBackup(
  db: DB,
  b: {
    projectId: number | null;
    slug: string | null;
    repoUuid: string | null;
    kind: BackupKind;
    baseId: number | null;
    trigger: string;
    actor: string;
  },
): number {
  return store.insertBackup(db, { ...b, holder: holderId(), startedAt: nowIso() });
}

/** Ends a row: state, reason, space numbers, duration. */
export function finishBackup(db: DB, id: number, state: BackupState, reason: string | null, numbers?: SpaceNumbers): void {
  const row = store.getBackup(db, id);
  const now = new Date();
  store.updateBackup(db, id, {
    state,
    reason,
    finished_at: now.toISOString(),
    duration_ms: row ? now.getTime() - Date.parse(row.started_at) : null,
    holder: null,
    ...(numbers
      ? {
          needed_bytes: numbers.neededBytes,
          free_bytes: numbers.freeBytes,
          reserve_bytes: numbers.reserveBytes,
          needed_inodes: numbers.neededInodes,
          free_inodes: numbers.freeInodes,
          reserve_inodes: numbers.reserveInodes,
        }
      : {}),
  });
}

/** Rows left 'running'/'verifying' by a process that no longer exists: they were interrupted. */
export function markInterrupted(db: DB): BackupRow[] {
  const rows = store.unfinishedBackups(db);
  const dead = rows.filter((r) => !r.holder || !holderAlive(r.holder));
  for (const r of dead) finishBackup(db, r.id, 'aborted', `interrupted: ${r.holder ?? 'its process'} stopped before finishing`);
  return dead;
}

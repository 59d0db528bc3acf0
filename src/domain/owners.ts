/**
 * The owner rule: every live project keeps at least one enabled owner, so someone can always
 * manage it. Checked after a change, inside its unit of work: a change that leaves a project
 * without one throws, and its transaction rolls back.
 */
import type { DB } from '../store/db.js';
import { ownerlessProjects } from '../store/members.js';
import { ConflictError } from '../errors.js';

/** Throws ConflictError with `refusal(slugs)` when any of these projects has no enabled owner left. */
export function keepOwners(db: DB, projectIds: number[], refusal: (slugs: string[]) => string): void {
  const left = ownerlessProjects(db, projectIds);
  if (left.length) throw new ConflictError(refusal(left));
}

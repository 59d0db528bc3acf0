/**
 * A project's state moves. Suspension is part of the permission state (a suspended project's
 * files grant nothing), so a move into or out of 'suspended' records a permission version.
 */
import type { Unit } from './unit.js';
import { getProjectById, writeState, type ProjectRow } from '../store/projects.js';

export function setProjectState(u: Unit, id: number, state: ProjectRow['state'], lastError: string | null = null): void {
  const was = getProjectById(u.db, id)?.state;
  writeState(u.db, id, state, lastError);
  if (was !== undefined && (was === 'suspended') !== (state === 'suspended')) {
    u.permissionChanged(id, state === 'suspended' ? 'project.suspend' : 'project.resume', `${was} → ${state}`);
  }
}

import { layout } from '../config.js';
import { getProject, getProjectById } from '../store/projects.js';
import { getUser } from '../store/users.js';
import { members } from '../store/members.js';
import { ConflictError, DomainError, InputError, NotAllowedError, NotFoundError } from '../errors.js';
import { assertSlug } from '../names.js';
import { sameDevice, volumeOf } from '../sys/volume.js';
import type { Progress } from './control.js';
import { listTree, needOf, type Entry } from './files.js';
import { checkFits, reserveFor } from './space.js';
import { restoreScopeOf, scopeOf } from '../store/leases.js';
import { getBackup, type BackupRow } from '../store/backups.js';
import type { Manifest } from './manifest.js';
import type { BackupService } from './engine.js';

export class InsufficientStorageError extends DomainError {
  constructor(message: string) {
    super(507, 'insufficient_storage', message);
  }
}

export interface RestoreOptions {
  /** In place: over the project the backup was taken of (suspended while it runs). */
  inPlace?: boolean;
  /** A new project's slug (or, with inPlace, the target, which must be the backup's own project). */
  to?: string;
  /** Owner of a new project; default: the original project's owners. */
  owner?: string;
  admin: boolean;
  actor: string;
  onProgress?: (p: Progress) => void;
  /**
   * In place: called once the project is suspended and its live repository denies everybody,
   * before anything is copied (for tests, to act while the restore runs).
   */
  onSuspended?: () => Promise<void> | void;
  /** How often the lease is renewed (it expires after 60 s); default 10 s. */
  leaseRenewMs?: number;
  /** Aborts the restore (its programs killed; nothing swapped in after it, what was moved aside put back). */
  signal?: AbortSignal;
  /**
   * Called inside the transaction that records the restored project (its state, reconcile,
   * audit): what is recorded there is recorded only if the restore is.
   */
  onRecorded?: (r: RestoreResult) => void;
}

export interface RestoreResult {
  backupId: number;
  project: string;
  mode: 'in-place' | 'new';
  youngestRev: number;
  repoUuid: string;
}

/** A restore that passed every check that can be made before anything is copied. */
export interface RestorePlan {
  backupId: number;
  row: BackupRow;
  manifest: Manifest;
  /** The project the backup was taken of. */
  src: { id: number; slug: string; repoUuid: string };
  mode: 'in-place' | 'new';
  targetSlug: string;
  /** The project restored over (in place), or null (a new project). */
  targetId: number | null;
  /** The lease scope: the project's own, or the new slug's. */
  scope: string;
}

/** The backup row, restorable: it exists, is a project's (not Keelson's database), and verified. */
function restorableRow(svc: BackupService, backupId: number): BackupRow {
  const row = getBackup(svc.db, backupId);
  if (!row) throw new NotFoundError(`no backup #${backupId}`);
  if (row.project_id === null) {
    throw new InputError(
      `backup #${backupId} is Keelson's own database: stop Keelson and copy ${row.path ?? '<backup>'}/keelson.db over ${layout(svc.cfg).db} (removing keelson.db-wal and -shm)`,
    );
  }
  if (row.state !== 'verified') throw new ConflictError(`backup #${backupId} is ${row.state}; only verified backups are restored`);
  return row;
}

/** In place: the target must be the backup's own project (slug, id and repository UUID). */
function inPlaceTarget(svc: BackupService, backupId: number, src: RestorePlan['src'], to: string | undefined): string {
  const targetSlug = to ?? src.slug;
  const t = getProject(svc.db, targetSlug);
  if (!t) throw new NotFoundError(`no project ${targetSlug} to restore over; restore to a new slug instead`);
  // Cross-tenant check: never put one project's data under another's name and members.
  if (t.id !== src.id || t.slug !== src.slug || t.repo_uuid !== src.repoUuid) {
    throw new ConflictError(
      `backup #${backupId} is of project ${src.slug} (id ${src.id}, repository ${src.repoUuid}); refusing to restore it over ${t.slug} (id ${t.id}, repository ${t.repo_uuid}). An admin may restore it to a new slug.`,
    );
  }
  return targetSlug;
}

/** To a new slug: free, an admin's call, and an owner who exists. */
function newTarget(svc: BackupService, backupId: number, src: RestorePlan['src'], o: RestoreOptions): string {
  if (!o.to) throw new InputError('to: the slug of the new project is required (or restore in place)');
  assertSlug(o.to);
  const t = getProject(svc.db, o.to);
  if (t) {
    if (t.id === src.id && t.repo_uuid === src.repoUuid)
      throw new ConflictError(`${t.slug} is the backup's own project: restore it in place`);
    throw new ConflictError(
      `backup #${backupId} is of project ${src.slug}; refusing to restore it over ${t.slug}, another project. Choose a new slug.`,
    );
  }
  if (!o.admin) throw new NotAllowedError('restoring a backup into a new project needs an operator (admin)');
  const owner = newOwner(svc, src.id, o.owner);
  if (!getUser(svc.db, owner)) throw new InputError(`owner: no user ${owner}`);
  return o.to;
}

/** The new project's owner: the one named, else the original project's first owner. */
export function newOwner(svc: BackupService, srcId: number, owner: string | undefined): string {
  const orig = getProjectById(svc.db, srcId);
  const name = owner ?? (orig ? members(svc.db, orig.id).find((x) => x.role === 'owner')?.user : undefined);
  if (!name) throw new InputError("owner: the original project is gone; name the new project's owner");
  return name;
}

/**
 * Every check that can be made before a byte is copied: the backup (exists, a project's,
 * verified, its manifest matching the catalog), the target (the cross-tenant identity in place;
 * a free slug, an admin and an existing owner for a new project). Throws the DomainError the API
 * answers with.
 */
export function planRestore(svc: BackupService, backupId: number, o: RestoreOptions): RestorePlan {
  const row = restorableRow(svc, backupId);
  const manifest = svc.readManifest(row);
  const src = manifest.project!;
  if (src.id !== row.project_id || src.repoUuid !== row.repo_uuid)
    throw new ConflictError(`backup #${backupId}'s manifest does not match its catalog row; refusing it`);
  const mode = o.inPlace ? 'in-place' : 'new';
  const targetSlug = o.inPlace ? inPlaceTarget(svc, backupId, src, o.to) : newTarget(svc, backupId, src, o);
  const targetId = mode === 'in-place' ? src.id : null;
  const scope = targetId !== null ? scopeOf(targetId) : restoreScopeOf(targetSlug);
  return { backupId, row, manifest, src, mode, targetSlug, targetId, scope };
}

/**
 * The same checks from the catalog alone, for a process that may not read the backups (the API
 * running apart as its own user, docs/production.md): the target's identity, slug, admin and
 * owner are checked now; the manifest and the space, which need the files, by the restore job,
 * which plans again before it copies a byte.
 */
export function planRestoreFromCatalog(svc: BackupService, backupId: number, o: RestoreOptions): Omit<RestorePlan, 'manifest'> {
  const row = restorableRow(svc, backupId);
  const src = { id: row.project_id!, slug: row.slug!, repoUuid: row.repo_uuid! };
  const mode = o.inPlace ? 'in-place' : 'new';
  const targetSlug = o.inPlace ? inPlaceTarget(svc, backupId, src, o.to) : newTarget(svc, backupId, src, o);
  const targetId = mode === 'in-place' ? src.id : null;
  const scope = targetId !== null ? scopeOf(targetId) : restoreScopeOf(targetSlug);
  return { backupId, row, src, mode, targetSlug, targetId, scope };
}

/** Space on the data volume: the restored copy must fit with the (stricter, live) reserve left. Returns the backup's files. */
export function restoreSpace(svc: BackupService, row: BackupRow): Entry[] {
  const entries = listTree(row.path!);
  const v = volumeOf(svc.cfg.dataDir);
  const why = checkFits(v, needOf(entries), reserveFor(v, svc.settings, true));
  if (why) throw new InsufficientStorageError(`restore refused: ${why}`);
  return entries;
}

/** The test restore's space check: on the backup volume, the stricter reserve when it is the live data volume. */
export function testRestoreSpace(svc: BackupService, row: BackupRow): Entry[] {
  const entries = listTree(row.path!);
  const v = volumeOf(svc.root);
  // The backup volume may be the live data volume: then the stricter reserve protects the live service.
  const why = checkFits(v, needOf(entries), reserveFor(v, svc.settings, sameDevice(svc.root, svc.cfg.dataDir)));
  if (why) throw new InsufficientStorageError(`test restore refused: ${why}`);
  return entries;
}

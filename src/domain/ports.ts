/**
 * What the use cases ask of the parts below them that touch files and run programs, declared here
 * in the domain's own terms; src/main/ wires the real ones (src/main/ports.ts) into the context.
 */
import type { BackupKind, BackupRow } from '../store/backups.js';
import type { JobRow } from '../store/jobs.js';

/** How far a backup or restore run has come (the CLI prints it). */
export interface Progress {
  phase: string;
  bytesDone: number;
  bytesTotal: number;
}

/** A limit over the backups (a quota over their directory, or the budget) as a listing shows it. */
export interface BackupLimitView {
  name: string;
  limitBytes: number;
  usedBytes: number;
  reserveBytes: number;
}

/** The backup volume with its reserve, quota and budget. */
export interface BackupVolume {
  path: string;
  totalBytes: number;
  freeBytes: number;
  reserveBytes: number;
  sameDeviceAsData: boolean;
  quota: BackupLimitView | null;
  /** The budget, and whether retention within it is on (null: no budget). */
  budget: (Partial<BackupLimitView> & { retention: boolean }) | null;
}

/** A run that went ahead (its catalog row), or was skipped (and why: a back-off, an unchanged project). */
export type BackupOutcome = { backup: BackupRow; skipped?: undefined } | { backup?: BackupRow; skipped: string };

export type RestoreMode = 'in-place' | 'new';

/** A restore as asked for: over its own project (in place), or into a new one. */
export interface RestoreRequest {
  inPlace: boolean;
  /** A new project's slug (or, in place, the backup's own project). */
  to?: string;
  /** A new project's owner; default: the original project's owners. */
  owner?: string;
  admin: boolean;
  actor: string;
}

/** A restore that was recorded. */
export interface RestoreResult {
  backupId: number;
  project: string;
  mode: RestoreMode;
  youngestRev: number;
  repoUuid: string;
}

/** A job as GET /api/v1/jobs/:id shows it. */
export interface JobBaseView {
  id: number;
  kind: string;
  project: string | null;
  state: JobRow['state'];
  attempts: number;
  maxAttempts: number;
  lastError: string | null;
  createdAt: string | null;
  heartbeatAt: string | null;
  finishedAt: string | null;
}

/** A job; for a restore also what it restores, and its result or error. */
export type JobView =
  | JobBaseView
  | (JobBaseView & {
      restore: { backupId: number; target: string; mode: RestoreMode; startedAt: string | null } | null;
      result: RestoreResult | null;
      error: { status: number; code: string; message: string } | null;
    });

/**
 * Backups and restores, for the context's database: the use cases check who may and what is
 * asked, then reach the backup engine, its queue and its restores only through this.
 */
export interface BackupPort {
  /** The backup volume with its reserve, quota and budget (never runs a program synchronously). */
  volume(): Promise<BackupVolume>;
  /** Queues one backup for the worker: a project's, or Keelson's database's (`projectId` null). One already waiting is joined. */
  enqueueBackup(projectId: number | null, o: { kind: BackupKind; trigger: 'schedule' | 'api'; actor: string }): void;
  /** Queues a backup of every project that is backed up; returns how many. */
  enqueueBackups(kind: BackupKind, trigger: 'schedule' | 'api', actor: string): number;
  /**
   * Checks a restore now (every check the restore itself makes before copying) and queues it as a
   * job; throws the DomainError the restore would.
   */
  enqueueRestore(backupId: number, o: RestoreRequest): { job: JobRow; target: string; mode: RestoreMode };
  /** A job as the API shows it; a restore's with what it restores and its result or error. */
  jobView(job: JobRow): JobView;
  /** Backs up Keelson's own database now, in this process. */
  runControl(o: { trigger: 'cli' | 'api'; actor: string; onProgress?: (p: Progress) => void }): Promise<BackupOutcome>;
  /** Backs up one project now, in this process; throws ConflictError if a backup or restore of it runs. */
  runProject(
    slug: string,
    o: { kind: BackupKind; trigger: 'cli' | 'api'; actor: string; onProgress?: (p: Progress) => void },
  ): Promise<BackupOutcome>;
  /** Restores a verified backup now, in this process. */
  restoreNow(backupId: number, o: RestoreRequest & { onProgress?: (p: Progress) => void }): Promise<RestoreResult>;
}

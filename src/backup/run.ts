/**
 * What a backup run's parts use of the service that runs it: the space guard (guard.ts), the
 * frame (frame.ts) and the bodies (bodies.ts) are given these, which engine.ts's BackupService is,
 * and never import the engine that calls them.
 */
import type { Config } from '../config.js';
import type { DB } from '../store/db.js';
import type { BackupSettings } from '../settings/backup.js';

/** Where backups are written and under which limits: what the space guard reads. */
export interface BackupVolumeRun {
  readonly db: DB;
  readonly cfg: Config;
  readonly settings: BackupSettings;
  /** The backup directory. */
  readonly root: string;
}

/** A backup in progress: its volume and limits, the live trees it copies, and its staging folder. */
export interface BackupRun extends BackupVolumeRun {
  /** A project's live repository. */
  repoDir(slug: string): string;
  /** A project's live Trac environment. */
  envDir(slug: string): string;
  /** A new staging folder for one run, named with this process's pid. */
  stagingDir(what: string): string;
}

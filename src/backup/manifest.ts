import fs from 'node:fs';
import { assertSlug } from '../names.js';
import path from 'node:path';
import { sqliteOnlineBackup as onlineBackup } from '../sys/sqlite.js';
import type { BackupKind } from '../store/backups.js';
import { fsyncDirSync, writeFileAtomicSync } from '../sys/fs.js';
import type { RunControl } from './control.js';
import type { FileRecord } from './files.js';

/** What a backup holds, written last into its folder: a backup without one is never used. */
export interface Manifest {
  format: 1;
  backupId: number;
  kind: BackupKind;
  baseId: number | null;
  /** null: Keelson's own database. */
  project: { id: number; slug: string; repoUuid: string } | null;
  youngestRev: number | null;
  revFrom: number | null;
  createdAt: string;
  files: FileRecord[];
  totalBytes: number;
}

/** What a backup body hands back to the frame: its manifest, where it was placed, the bytes it wrote. */
export interface Made {
  manifest: Manifest;
  finalDir: string;
  fresh: number;
}

const stamp = (d = new Date()) =>
  d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');

/** The folder a finished backup is renamed to: per project (slug and id) or Keelson's own. */
export function finalDirOf(root: string, projectId: number | null, slug: string | null, id: number, kind: BackupKind): string {
  if (projectId !== null) assertSlug(slug); // from a row: checked again where it becomes a path
  const dir = projectId === null ? path.join(root, 'keelson') : path.join(root, 'projects', `${slug}-${projectId}`);
  return path.join(dir, `${stamp()}-b${id}-${kind}`);
}

/** Writes the manifest (last), then renames the staging folder into place, durably. */
export async function place(ctl: RunControl, stage: string, finalDir: string, manifest: Manifest): Promise<void> {
  ctl.throwIfAborted();
  // The manifest is written last: a backup without one is never used.
  writeFileAtomicSync(path.join(stage, 'manifest.json'), JSON.stringify(manifest, null, 1) + '\n');
  fs.mkdirSync(path.dirname(finalDir), { recursive: true });
  fs.renameSync(stage, finalDir);
  fsyncDirSync(path.dirname(finalDir));
}

/** SQLite's online backup API: a consistent copy while Trac keeps writing. The watcher's abort stops it. */
export const sqliteOnlineBackup = (ctl: RunControl, src: string, dest: string, readonly: boolean): Promise<void> =>
  onlineBackup(src, dest, readonly, () => ctl.throwIfAborted());

import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import Database from 'better-sqlite3';
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

export function sha256(b: Buffer): string {
  return crypto.createHash('sha256').update(b).digest('hex');
}

/** PRAGMA integrity_check on a copy; throws with SQLite's answer unless it is "ok". */
export function integrityCheck(file: string): void {
  const d = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const rows = d.pragma('integrity_check') as { integrity_check: string }[];
    const msg = rows.map((r) => r.integrity_check).join('; ');
    if (msg !== 'ok') throw new Error(`integrity_check of ${file}: ${msg.slice(0, 500)}`);
  } finally {
    d.close();
  }
}

/** SQLite's online backup API: a consistent copy while Trac keeps writing. The watcher's abort stops it. */
export async function sqliteOnlineBackup(ctl: RunControl, src: string, dest: string, readonly: boolean): Promise<void> {
  const d = new Database(src, { readonly, fileMustExist: true });
  try {
    d.pragma('busy_timeout = 5000');
    await d.backup(dest, {
      progress: () => {
        ctl.throwIfAborted();
        return 256;
      },
    });
  } finally {
    d.close();
  }
}

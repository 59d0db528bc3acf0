import fs from 'node:fs';
import { assertSlug } from '../names.js';
import path from 'node:path';
import crypto from 'node:crypto';
import type { Config } from '../config.js';
import { log } from '../sys/log.js';
import { sameDevice } from '../sys/volume.js';
import { pidOfEntry } from '../provision/owner.js';
import { pidAlive } from '../sys/liveness.js';

/**
 * Where an in-place restore puts the live repository and Trac environment it replaces, until the
 * restore has finished: outside every staging folder, because staging is swept at start and a
 * restore that died mid-swap may have left the only copy of the live data there. On the backup
 * volume when it is the live trees' device (a rename, no copy), else in the data directory.
 */
export function asideRoots(cfg: Config): { backup: string; data: string } {
  return { backup: path.join(cfg.backupDir, '.restore-aside'), data: path.join(cfg.dataDir, 'restore-aside') };
}

/** A new folder for one restore's replaced trees, on the device of `trees` (which renames need). */
export function asideFolder(cfg: Config, trees: string[], slug: string, projectId: number): string {
  assertSlug(slug);
  const roots = asideRoots(cfg);
  const root = trees.every((t) => sameDevice(cfg.backupDir, t)) ? roots.backup : roots.data;
  fs.mkdirSync(root, { recursive: true, mode: 0o700 });
  const dir = path.join(root, `${slug}-${projectId}-p${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
  fs.mkdirSync(dir, { mode: 0o700 });
  return dir;
}

/**
 * Folders of restores whose process is gone: never deleted here (one may hold the only copy of a
 * live repository), reported in the log for the operator to inspect and remove.
 */
export function asideLeftovers(cfg: Config): string[] {
  const out: string[] = [];
  for (const root of Object.values(asideRoots(cfg))) {
    if (!fs.existsSync(root)) continue;
    for (const e of fs.readdirSync(root)) {
      const pid = pidOfEntry(e);
      if (pid && (pid === process.pid || pidAlive(pid))) continue; // a restore in progress
      out.push(path.join(root, e));
    }
  }
  if (out.length) {
    log.warn('restore leftovers kept: a restore stopped before finishing; these folders hold the live files it had replaced', {
      paths: out,
      hint: 'check the project (svnadmin verify, Trac), move a tree back if the live one is missing or wrong, then remove the folder',
    });
  }
  return out;
}

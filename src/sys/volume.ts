import fs from 'node:fs';
import path from 'node:path';

export interface Volume {
  path: string;
  totalBytes: number;
  /** statfs bavail * bsize: what an unprivileged writer can still use (can be far below bfree). */
  freeBytes: number;
  totalInodes: number;
  freeInodes: number;
}

/** The nearest existing directory at or above p (the backup directory may not exist yet). */
export function existingAncestor(p: string): string {
  let d = path.resolve(p);
  while (!fs.existsSync(d)) {
    const up = path.dirname(d);
    if (up === d) break;
    d = up;
  }
  return d;
}

export function volumeOf(dir: string): Volume {
  const d = existingAncestor(dir);
  const s = fs.statfsSync(d);
  return {
    path: dir,
    totalBytes: s.blocks * s.bsize,
    freeBytes: s.bavail * s.bsize,
    totalInodes: s.files,
    freeInodes: s.ffree,
  };
}

export function sameDevice(a: string, b: string): boolean {
  return fs.statSync(existingAncestor(a)).dev === fs.statSync(existingAncestor(b)).dev;
}

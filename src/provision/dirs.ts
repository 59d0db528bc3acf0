import path from 'node:path';
import crypto from 'node:crypto';
import type { Layout } from '../config.js';

/** A project's repository: <svnRoot>/<slug>. */
export function repoDir(l: Layout, slug: string): string {
  return path.join(l.svnRoot, slug);
}

/** A project's Trac environment: <tracRoot>/<slug>. */
export function envDir(l: Layout, slug: string): string {
  return path.join(l.tracRoot, slug);
}

/** A fresh name in the staging folder, carrying this process's pid (see sweepStaging). */
export function stagingPath(l: Layout, what: string): string {
  return path.join(l.staging, `${what}-p${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
}

import path from 'node:path';
import crypto from 'node:crypto';
import type { Layout } from '../config.js';
import { assertSlug } from '../names.js';

/**
 * A project's repository: <svnRoot>/<slug>. The slug is checked again here, where it becomes a
 * path: it comes from a row, and a row is only data.
 */
export function repoDir(l: Layout, slug: string): string {
  assertSlug(slug);
  return path.join(l.svnRoot, slug);
}

/** A project's Trac environment: <tracRoot>/<slug> (the slug checked again). */
export function envDir(l: Layout, slug: string): string {
  assertSlug(slug);
  return path.join(l.tracRoot, slug);
}

/** A fresh name in the staging folder, carrying this process's pid (see sweepStaging). */
export function stagingPath(l: Layout, what: string): string {
  if (!/^[a-z0-9-]+$/.test(what)) throw new Error(`staging name ${JSON.stringify(what)}: letters, digits and '-' only`);
  return path.join(l.staging, `${what}-p${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
}

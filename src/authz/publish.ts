import fs from 'node:fs';
import path from 'node:path';
import type { DB } from '../store/db.js';
import { publishedVersion, recordPublish } from '../store/permissions.js';
import { renderAuthz } from './render.js';
import type { ProjectAccess } from '../names.js';
import type { AuthzChecker } from './canary.js';
import { fsyncDir, readIfExists, tempBeside, writeFileAtomic, writeTempSync } from '../sys/fs.js';
import { pidAlive } from '../sys/liveness.js';
import { sha256 } from '../sys/hash.js';

export interface PublishResult {
  version: number;
  checksum: string;
  /** The bytes on disk changed. */
  changed: boolean;
  /** A newer version was already published by someone else; this one was dropped. */
  stale: boolean;
}

export interface PublishInput {
  projectId: number;
  /** The repository's authz file (<repo>/conf/authz). */
  file: string;
  access: ProjectAccess;
  /** The permission version `access` was read at (one transaction; see readAccess). */
  version: number;
  checker: AuthzChecker;
  owner?: { uid: number; gid: number };
  publisher: string;
}

const TEMP_RE = /^\.(?:authz|post-commit)\.(\d+)\.[0-9a-f]+\.tmp$/;

/** Temporary files of publishers that died (SIGKILL, power loss) before their rename. */
async function sweepDeadTemps(dir: string): Promise<void> {
  for (const f of await fs.promises.readdir(dir)) {
    const pid = Number(f.match(TEMP_RE)?.[1]);
    if (pid && pid !== process.pid && !pidAlive(pid)) await fs.promises.rm(path.join(dir, f), { force: true });
  }
}

/** sweepDeadTemps for the bulk rebuild, without a thread-pool round trip per directory. */
export function sweepDeadTempsSync(dir: string): void {
  for (const f of fs.readdirSync(dir)) {
    const pid = Number(f.match(TEMP_RE)?.[1]);
    if (pid && pid !== process.pid && !pidAlive(pid)) fs.rmSync(path.join(dir, f), { force: true });
  }
}

/**
 * Publishes one repository's authz file, or nothing:
 *   render → libsvn parses it and answers the canaries → temporary file in the same directory →
 *   fsync → [write transaction: no newer version published? rename; record version, checksum,
 *   time] → fsync the directory.
 * Any failure before the rename (a rendering refused, a canary that does not hold, ENOSPC) leaves
 * the previous file serving; the caller records the error and the job retries with backoff.
 * The rename happens inside a SQLite write transaction that first checks the published version,
 * so publishers in different processes (the worker, `keelson reconcile --all`) are serialized
 * per database and an older state can never replace a newer one.
 */
export async function publishAuthz(db: DB, i: PublishInput): Promise<PublishResult> {
  return publishAuthzText(db, i, renderAuthz(i.access));
}

/** publishAuthz of a rendered text (exported for the test that feeds it a broken one). */
export async function publishAuthzText(db: DB, i: PublishInput, text: string): Promise<PublishResult> {
  const prepared = await prepareAuthz(i, { sync: true }, text);
  try {
    const r = db.transaction(() => commitAuthz(db, prepared)).immediate();
    if (r.changed) await fsyncDir(path.dirname(i.file));
    return r;
  } finally {
    await discard(prepared);
  }
}

/**
 * An authz file that is not yet live and has no version of its own (a repository in staging, about
 * to be renamed into place): rendered, checked by libsvn and the canaries, written atomically.
 */
export async function writeCheckedAuthz(file: string, access: ProjectAccess, checker: AuthzChecker): Promise<void> {
  const text = renderAuthz(access);
  await checker.verify(text, access);
  await writeFileAtomic(file, text, { mode: 0o644 });
}

/** A rendering checked and written to its temporary file, waiting for commitAuthz. */
export interface PreparedAuthz {
  input: PublishInput;
  checksum: string;
  same: boolean;
  tmp?: string;
}

/**
 * Render, check with libsvn and the canaries, and write the temporary file (fsynced unless the
 * caller makes it durable another way: the bulk rebuild syncs the whole file system once).
 */
export async function prepareAuthz(i: PublishInput, o: { sync: boolean }, text = renderAuthz(i.access)): Promise<PreparedAuthz> {
  const checksum = sha256(text);
  await i.checker.verify(text, i.access);
  const dir = path.dirname(i.file);
  await sweepDeadTemps(dir);
  let same = false;
  try {
    same = (await fs.promises.readFile(i.file, 'utf8')) === text;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (same) return { input: i, checksum, same };
  const tmp = tempBeside(i.file);
  let fh: fs.promises.FileHandle | undefined;
  try {
    fh = await fs.promises.open(tmp, 'wx', 0o644);
    await fh.writeFile(text);
    if (o.sync) await fh.sync();
    if (i.owner) await fh.chown(i.owner.uid, i.owner.gid);
    await fh.close();
    fh = undefined;
  } catch (e) {
    await fh?.close().catch(() => {});
    await fs.promises.rm(tmp, { force: true });
    throw e;
  }
  return { input: i, checksum, same, tmp };
}

/**
 * The bulk rebuild's form of prepareAuthz: the rendering, not yet checked (the caller has libsvn
 * check many at once, then calls stageAuthz on each that passed), compared with the live file.
 */
export function planAuthz(i: PublishInput): { prepared: PreparedAuthz; text: string } {
  const text = renderAuthz(i.access);
  return { prepared: { input: i, checksum: sha256(text), same: readIfExists(i.file) === text }, text };
}

/**
 * After libsvn and the canaries passed `text` (verifyMany): its temporary file, written without
 * fsync (the caller syncs the file system once), waiting for commitAuthz.
 */
export function stageAuthz(p: PreparedAuthz, text: string): void {
  if (!p.same) p.tmp = writeTempSync(p.input.file, text, { mode: 0o644 });
}

/**
 * Call inside a write transaction (BEGIN IMMEDIATE): unless a newer version is already
 * published, renames the prepared file into place and records the version, checksum and time.
 * The directory is not fsynced here.
 */
export function commitAuthz(db: DB, p: PreparedAuthz): PublishResult {
  const i = p.input;
  const published = publishedVersion(db, i.projectId);
  if (published !== null && published > i.version) return { version: i.version, checksum: p.checksum, changed: false, stale: true };
  if (p.tmp) fs.renameSync(p.tmp, i.file);
  p.tmp = undefined;
  if (published !== i.version || !p.same) recordPublish(db, i.projectId, i.version, p.checksum, !p.same, i.publisher);
  return { version: i.version, checksum: p.checksum, changed: !p.same, stale: false };
}

/** Removes a prepared temporary file that was not renamed (stale, or the commit failed). */
export async function discard(p: PreparedAuthz): Promise<void> {
  if (p.tmp) await fs.promises.rm(p.tmp, { force: true });
  p.tmp = undefined;
}

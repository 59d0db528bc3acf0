import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { run } from './process.js';

/**
 * A new temporary name beside `target`, `.<name>.<pid>.<hex>.tmp`: the same directory (so the
 * rename is atomic), hidden, and naming its writer's pid so a sweep can tell a dead writer's.
 */
export function tempBeside(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`);
}

export interface AtomicOptions {
  mode?: number;
  uid?: number;
  gid?: number;
  /**
   * Runs on the complete temporary file before it is published (e.g. `svnauthz validate`,
   * `apache2 -t`). If it throws, the temporary file is removed and the live file is untouched.
   */
  validate?: (tmpPath: string) => Promise<void>;
}

/**
 * Publishes a file another process reads: write a temporary file in the same directory, fsync,
 * validate, rename over the target, fsync the directory. A reader sees the old or the new file,
 * never a half-written one; a disk-full error leaves the old file serving.
 * Returns false when the file already had exactly these bytes (nothing written).
 */
export async function writeFileAtomic(target: string, content: string | Buffer, opts: AtomicOptions = {}): Promise<boolean> {
  const data = typeof content === 'string' ? Buffer.from(content) : content;
  try {
    if ((await fs.promises.readFile(target)).equals(data)) return false;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const dir = path.dirname(target);
  const tmp = tempBeside(target);
  let fh: fs.promises.FileHandle | undefined;
  try {
    fh = await fs.promises.open(tmp, 'wx', opts.mode ?? 0o644);
    await fh.writeFile(data);
    await fh.sync();
    if (opts.uid !== undefined) await fh.chown(opts.uid, opts.gid ?? -1);
    if (opts.mode !== undefined) await fh.chmod(opts.mode);
    await fh.close();
    fh = undefined;
    await opts.validate?.(tmp);
    await fs.promises.rename(tmp, target);
  } catch (e) {
    await fh?.close().catch(() => {});
    await fs.promises.rm(tmp, { force: true });
    throw e;
  }
  await fsyncDir(dir);
  return true;
}

export async function fsyncDir(dir: string): Promise<void> {
  const d = await fs.promises.open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/** A file written to its temporary name, waiting for renameStaged. */
export interface Staged {
  target: string;
  tmp?: string;
}

export function renameStaged(s: Staged): boolean {
  if (!s.tmp) return false;
  fs.renameSync(s.tmp, s.target);
  s.tmp = undefined;
  return true;
}

export async function discardStaged(s: Staged): Promise<void> {
  if (s.tmp) await fs.promises.rm(s.tmp, { force: true });
  s.tmp = undefined;
}

/**
 * syncfs(2) of the file system holding `dir` (coreutils `sync -f`): one flush for thousands of
 * files written without fsync, the group commit of a bulk rebuild.
 */
export async function syncFileSystem(dir: string): Promise<void> {
  await run('sync', ['-f', dir]);
}

/**
 * Writes `content` to a new temporary file beside `target` (no fsync: the bulk caller syncs the
 * file system once) and returns its path. Synchronous: for thousands of small files in a row,
 * plain system calls beat a round trip through libuv's thread pool each.
 */
export function writeTempSync(target: string, content: string, o: { mode: number; uid?: number; gid?: number }): string {
  const tmp = tempBeside(target);
  const fd = fs.openSync(tmp, 'wx', o.mode);
  try {
    fs.writeFileSync(fd, content);
    if (o.uid !== undefined) fs.fchownSync(fd, o.uid, o.gid ?? -1);
    fs.fchmodSync(fd, o.mode);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  return tmp;
}

/** The file's content, or undefined if there is none. */
export function readIfExists(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Writes a file another process (or a later restore) reads: temp file, fsync, rename, fsync the directory. */
export function writeFileAtomicSync(target: string, data: string | Buffer): void {
  const tmp = tempBeside(target);
  const fd = fs.openSync(tmp, 'wx', 0o644);
  try {
    fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, target);
  fsyncDirSync(path.dirname(target));
}

export function fsyncDirSync(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

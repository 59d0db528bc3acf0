import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import type { RunControl } from './control.js';
import { sha256OnWorker } from './hashpool.js';
import { onDisk, type Need } from './space.js';

export interface Entry {
  rel: string;
  kind: 'file' | 'dir' | 'symlink';
  size: number;
  mtimeNs: bigint;
  atimeNs: bigint;
  mode: number;
}

/** Every entry below root (relative paths, parents before children), minus what skip() says. */
export function listTree(root: string, skip: (rel: string) => boolean = () => false): Entry[] {
  const out: Entry[] = [];
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (skip(r)) continue;
      const st = fs.lstatSync(path.join(root, r), { bigint: true });
      const kind = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : undefined;
      if (!kind) continue; // sockets, fifos: nothing to back up
      out.push({ rel: r, kind, size: Number(st.size), mtimeNs: st.mtimeNs, atimeNs: st.atimeNs, mode: Number(st.mode) & 0o7777 });
      if (kind === 'dir') walk(r);
    }
  };
  walk('');
  return out;
}

/** What writing these entries costs the volume; linked files cost a directory entry, not an inode or blocks. */
export function needOf(entries: Entry[], linked: (rel: string) => boolean = () => false): Need {
  let bytes = 0;
  let inodes = 0;
  for (const e of entries) {
    if (e.kind === 'file' && linked(e.rel)) continue;
    inodes++;
    bytes += e.kind === 'file' ? onDisk(e.size) : 4096;
  }
  return { bytes, inodes };
}

export interface FileRecord {
  path: string;
  size: number;
  sha256: string;
}

/** Big files go to the worker threads' pool; small ones are cheaper to hash here. */
export function sha256File(file: string, size?: number): Promise<string> {
  if (size !== undefined && size >= 256 * 1024) return sha256OnWorker(file);
  return sha256Inline(file);
}

function sha256Inline(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = crypto.createHash('sha256');
    const s = fs.createReadStream(file, { highWaterMark: 1 << 20 });
    s.on('error', reject);
    s.on('data', (b) => h.update(b));
    s.on('end', () => resolve(h.digest('hex')));
  });
}

const ns = (t: bigint) => Number(t) / 1e9;

/**
 * Copies entries from src to dst (dst must not hold them yet). Files that link() accepts are
 * hard-linked instead (immutable files shared with an earlier backup on the same volume). File
 * times are kept to the microsecond, because `svnadmin hotcopy --incremental` skips files whose
 * size and mtime already match. Copies run a few at a time (the kernel copies; copy_file_range),
 * and each copied file is hashed from the copy. Checks for an abort between files.
 */
export async function copyEntries(
  ctl: RunControl,
  src: string,
  dst: string,
  entries: Entry[],
  opts: {
    link?: (rel: string) => boolean;
    knownHash?: (rel: string, size: number) => string | undefined;
    hash?: (rel: string) => boolean;
  } = {},
): Promise<FileRecord[]> {
  const records: FileRecord[] = [];
  fs.mkdirSync(dst, { recursive: true });
  for (const e of entries) {
    if (e.kind === 'dir') fs.mkdirSync(path.join(dst, e.rel), { mode: e.mode });
  }
  const files = entries.filter((e) => e.kind !== 'dir');
  const hashes: Promise<void>[] = [];
  let next = 0;
  const one = async (e: Entry) => {
    ctl.throwIfAborted();
    const from = path.join(src, e.rel);
    const to = path.join(dst, e.rel);
    if (e.kind === 'symlink') {
      await fs.promises.symlink(await fs.promises.readlink(from), to);
      return;
    }
    if (opts.link?.(e.rel)) {
      await fs.promises.link(from, to);
      const known = opts.knownHash?.(e.rel, e.size);
      records.push({ path: e.rel, size: e.size, sha256: known ?? (await sha256File(to, e.size)) });
      return;
    }
    await fs.promises.copyFile(from, to, fs.constants.COPYFILE_EXCL);
    await fs.promises.chmod(to, e.mode);
    await fs.promises.utimes(to, ns(e.atimeNs), ns(e.mtimeNs));
    ctl.progress(ctl.phase, e.size);
    // Hashing overlaps the next copies: the copies run in the kernel, the hashes on worker threads.
    if (opts.hash?.(e.rel) ?? true)
      hashes.push(sha256File(to, e.size).then((sha256) => void records.push({ path: e.rel, size: e.size, sha256 })));
  };
  const worker = async () => {
    while (next < files.length) {
      const e = files[next++]!;
      await one(e);
    }
  };
  try {
    await Promise.all([worker(), worker(), worker(), worker()]);
  } finally {
    // Never leave a hash reading a file the caller is about to remove.
    await Promise.allSettled(hashes);
  }
  await Promise.all(hashes);
  return records;
}

/** Hashes every file below root that records do not already cover (e.g. files svnadmin wrote), a few at a time. */
export async function hashRest(ctl: RunControl, root: string, prefix: string, records: Map<string, FileRecord>): Promise<void> {
  const todo = listTree(root).filter((e) => {
    if (e.kind !== 'file') return false;
    const have = records.get(`${prefix}${e.rel}`);
    return !(have && have.size === e.size);
  });
  let next = 0;
  const worker = async () => {
    while (next < todo.length) {
      const e = todo[next++]!;
      ctl.throwIfAborted();
      const rel = `${prefix}${e.rel}`;
      records.set(rel, { path: rel, size: e.size, sha256: await sha256File(path.join(root, e.rel), e.size) });
      ctl.progress(ctl.phase, 0);
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
}

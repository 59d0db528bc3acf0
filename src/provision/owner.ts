import fs from 'node:fs';
import path from 'node:path';
import { run } from './exec.js';

/** True while a process with this pid exists on this host (EPERM: it exists, owned by another user). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid in a staging or aside entry's name (`…-p<pid>-<hex>`), or 0. */
export function pidOfEntry(name: string): number {
  return Number(name.match(/-p(\d+)-[0-9a-f]+$/)?.[1] ?? 0);
}

export interface Owner {
  uid: number;
  gid: number;
}

/** Apache's user and group as ids; when not root there is nobody to hand files to. */
export async function apacheOwner(user: string, group: string): Promise<Owner | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number((await run('id', ['-u', user])).stdout.trim());
  const gid = Number((await run('getent', ['group', group])).stdout.split(':')[2]);
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw new Error(`cannot resolve ${user}:${group}`);
  return { uid, gid };
}

/** Hands a tree to Apache's user (symlinks themselves, not their targets). */
export async function chownTree(dir: string, o: Owner | undefined): Promise<void> {
  if (!o) return;
  await fs.promises.lchown(dir, o.uid, o.gid);
  for (const e of await fs.promises.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) await chownTree(p, o);
    else await fs.promises.lchown(p, o.uid, o.gid);
  }
}

import fs from 'node:fs';
import path from 'node:path';
import svnUltimate from 'node-svn-ultimate';
import { run } from '../sys/process.js';

/**
 * node-svn-ultimate joins its arguments into one shell string, so nothing but a file:// URL made
 * of a checked path and fixed names may ever reach it.
 */
function assertShellSafeUrl(url: string): void {
  if (!/^file:\/\/\/[A-Za-z0-9_./-]+$/.test(url)) throw new Error(`refusing to pass ${url} to svn through a shell`);
}

export async function createRepository(dir: string, uuid: string): Promise<void> {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(uuid)) throw new Error(`bad uuid ${uuid}`);
  await run('svnadmin', ['create', '--fs-type', 'fsfs', dir]);
  await run('svnadmin', ['setuuid', dir, uuid]);
}

/** trunk/branches/tags in one commit, made over file:// with node-svn-ultimate. */
export function makeStandardLayout(dir: string): Promise<void> {
  const base = `file://${dir}`;
  const targets = ['trunk', 'branches', 'tags'].map((d) => `${base}/${d}`);
  targets.forEach(assertShellSafeUrl);
  return new Promise((resolve, reject) => {
    svnUltimate.commands.mkdir(
      targets,
      { msg: 'Standard layout (created by Keelson)', quiet: true, params: ['--config-dir', '/nonexistent-keelson'] },
      (err: Error | null) => (err ? reject(new Error(`svn mkdir failed: ${err.message}`)) : resolve()),
    );
  });
}

/** The repository's UUID, read from disk (db/uuid's first line), or undefined if none is there. */
export function readRepositoryUuid(dir: string): string | undefined {
  try {
    return (
      fs
        .readFileSync(path.join(dir, 'db', 'uuid'), 'utf8')
        .split('\n')[0]
        ?.trim() || undefined
    );
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

export function youngestRevision(dir: string): number {
  const txt = fs.readFileSync(path.join(dir, 'db', 'current'), 'utf8');
  return Number(txt.split(/\s/)[0]);
}

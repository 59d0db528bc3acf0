import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../sys/fs.js';
import { HelperPool } from '../sys/json-lines.js';
import { PROJECT_ROOT } from '../paths.js';
import type { Config, Layout } from '../config.js';
import { serviceOwners, type Owners } from './owner.js';

/** Keelson's Python for Trac: the guard every Trac process imports first, and the helper. */
const TRAC_LIB = ['trac_guard.py', 'trac_helper.py', 'trac_paths.py', 'trac_limits.py', 'trac_highlight.py', 'trac_quota.py'];

/**
 * Copies Keelson's Python for Trac into the data directory (root's, 0644), where the Trac user can
 * read it wherever the checkout lives, and where nobody else can change it. The one writer of
 * these files; trac.wsgi and the helper import them from there.
 */
export async function installTracLib(l: Layout, owners: Owners | undefined): Promise<void> {
  fs.mkdirSync(l.libDir, { recursive: true, mode: 0o755 });
  // The Trac user's own scratch (Python's egg cache, the template being made): nobody else's.
  fs.mkdirSync(l.tracCache, { recursive: true, mode: 0o700 });
  if (owners) fs.chownSync(l.tracCache, owners.trac.uid, owners.trac.gid);
  for (const f of TRAC_LIB) {
    await writeFileAtomic(path.join(l.libDir, f), fs.readFileSync(path.join(PROJECT_ROOT, 'src', 'provision', f)), { mode: 0o644 });
  }
}

/**
 * Client of the long-lived Python helper that imports Trac once (see trac_helper.py). It runs as
 * the Trac user, never root, with an environment of its own (no Keelson secrets), and imports
 * Keelson's guard before it opens any environment.
 *
 * A pool of such processes (HelperPool), each running one call at a time: a call stuck in one
 * project's environment is killed at its timeout and fails alone, while other projects' calls go
 * on in the other processes (or in a new one that takes its place).
 */
export class TracHelper extends HelperPool {
  private lib: Promise<void> | undefined;

  constructor(
    private readonly cfg: Config,
    private readonly l: Layout,
    opts: { size?: number; callTimeoutMs?: number } = {},
  ) {
    super(cfg.python, path.join(l.libDir, 'trac_helper.py'), 'trac', {
      ...opts,
      pythonArgs: ['-I', '-B'],
      cwd: l.tracCache,
      env: {
        PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
        LANG: 'C.UTF-8',
        HOME: l.tracCache,
        PYTHON_EGG_CACHE: path.join(l.tracCache, 'eggs'),
      },
    });
  }

  private async prepare(): Promise<void> {
    const owners = await serviceOwners(this.cfg);
    await installTracLib(this.l, owners);
    if (owners) this.opts = { ...this.opts, uid: owners.trac.uid, gid: owners.trac.gid };
  }

  override async call<T = unknown>(op: string, args: Record<string, unknown> = {}, timeoutMs?: number): Promise<T> {
    await (this.lib ??= this.prepare().catch((e) => {
      this.lib = undefined;
      throw e;
    }));
    return super.call<T>(op, args, timeoutMs);
  }
}

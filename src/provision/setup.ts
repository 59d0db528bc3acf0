import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import type { Config, Layout } from '../config.js';
import { renderTracPermissions } from '../authz/render.js';
import { publishTracIni, renderSharedTracIni } from '../files/trac/ini.js';
import type { TracHelper } from './trac.js';
import { checkReach, chownTree, pidOfEntry, purgeTracEnv, type Owners } from './owner.js';
import { pidAlive } from '../sys/liveness.js';

/** The data directory's folders, with their owners and modes (see owner.ts for who writes what). */
export async function prepareDirectories(cfg: Config, l: Layout, owners: Owners | undefined): Promise<void> {
  for (const d of [l.svnRoot, l.tracRoot, l.staging, l.authDir, l.cacheDir, l.tracShared, path.dirname(l.commitSpool)]) {
    fs.mkdirSync(d, { recursive: true, mode: 0o755 });
  }
  fs.mkdirSync(l.commitSpool, { recursive: true });
  if (!owners) return;
  const { apache } = owners;
  fs.chownSync(l.commitSpool, apache.uid, apache.gid);
  // Apache's authentication reads the credentials; the Trac user (not in Apache's group) cannot.
  fs.chownSync(l.authDir, 0, apache.gid);
  fs.chmodSync(l.authDir, 0o750);
  if (owners.api) {
    // An API running apart as its own user: the database through its group, in a directory root
    // keeps (that user can create, rename or replace no file in it, so root never follows a link
    // it planted); and a directory of its own, only watched by the worker, to wake it.
    fs.chownSync(path.dirname(l.db), 0, owners.api.gid);
    fs.chmodSync(path.dirname(l.db), 0o750);
    for (const f of [l.db, l.db + '-wal', l.db + '-shm']) {
      if (!fs.existsSync(f)) continue;
      fs.lchownSync(f, 0, owners.api.gid);
      fs.chmodSync(f, 0o660);
    }
    // The wake-ups: a directory root keeps, holding the two files that user owns and may only touch
    // (it can create nothing there, so root's watch never sees a tree it built).
    for (const d of [path.dirname(l.wakeDir), l.wakeDir]) {
      fs.mkdirSync(d, { recursive: true, mode: 0o755 });
      fs.lchownSync(d, 0, 0);
      fs.chmodSync(d, 0o755);
    }
    for (const name of ['wake', 'credentials']) {
      const f = path.join(l.wakeDir, name);
      if (!fs.lstatSync(f, { throwIfNoEntry: false })?.isFile()) {
        fs.rmSync(f, { recursive: true, force: true });
        fs.writeFileSync(f, '', { mode: 0o600 });
      }
      fs.lchownSync(f, owners.api.uid, owners.api.gid);
      fs.chmodSync(f, 0o600);
    }
  }
  // Earlier releases handed the cache to Apache's user; it is Keelson's now (the Trac user has its own).
  for (const d of [l.cacheDir, l.tracRoot, l.svnRoot, l.tracShared]) fs.chownSync(d, 0, 0);
  // With the owners above set, Apache's and Trac's users must reach their parts: said now
  // instead of served as 403s later.
  await checkReach(owners, cfg, {
    apache: [l.svnRoot, l.authDir, l.commitSpool, l.quotaDir],
    trac: [l.tracRoot, l.svnRoot, l.tracShared, l.quotaDir],
  });
}

/**
 * Staging entries carry their maker's pid: those of dead processes are debris of a run that
 * died (nothing there is ever served); a live worker's or CLI's work in progress is left alone.
 */
export function sweepStaging(staging: string): void {
  for (const e of fs.readdirSync(staging)) {
    const pid = pidOfEntry(e);
    if (pid && pid !== process.pid && pidAlive(pid)) continue;
    fs.rmSync(path.join(staging, e), { recursive: true, force: true });
  }
}

/** The shared Trac settings, and the template new environments are copied from (made if missing); returns its path. */
export async function prepareTrac(cfg: Config, l: Layout, trac: TracHelper, owners: Owners | undefined): Promise<string> {
  await publishTracIni(
    l.tracInherit,
    renderSharedTracIni({
      secureCookies: cfg.publicUrl.startsWith('https:'),
      maxDiffFiles: cfg.trac.maxDiffFiles,
      maxDiffBytes: cfg.trac.maxDiffBytes,
    }),
    trac,
    {
      shared: true,
    },
  );
  const version = ((await trac.call('ping')) as { trac_version: string }).trac_version;
  // The template is named by what it holds, so a new Trac or new role permissions make a new one.
  const basePerms = renderTracPermissions({ slug: 'template', visibility: 'private', members: [] });
  const tag = crypto
    .createHash('sha256')
    .update(JSON.stringify([version, basePerms]))
    .digest('hex')
    .slice(0, 12);
  const template = path.join(l.cacheDir, `trac-template-${tag}`);
  if (fs.existsSync(path.join(template, 'VERSION'))) return template;
  // Trac makes it as the Trac user in that user's own folder; then it becomes Keelson's, with
  // Trac's sample templates and logs removed, and is moved into place.
  const made = path.join(l.tracCache, `template-p${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
  try {
    await trac.call('make_template', { path: made, inherit: l.tracInherit, perms: basePerms });
    if (owners) await chownTree(made, { uid: 0, gid: 0 });
    purgeTracEnv(made);
    if (!fs.existsSync(path.join(template, 'VERSION'))) {
      fs.rmSync(template, { recursive: true, force: true });
      fs.renameSync(made, template);
    }
  } finally {
    fs.rmSync(made, { recursive: true, force: true });
  }
  return template;
}

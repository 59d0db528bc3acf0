import fs from 'node:fs';
import path from 'node:path';
import { run } from '../sys/process.js';

/** The pid in a staging or aside entry's name (`…-p<pid>-<hex>`), or 0. */
export function pidOfEntry(name: string): number {
  return Number(name.match(/-p(\d+)-[0-9a-f]+$/)?.[1] ?? 0);
}

export interface Owner {
  uid: number;
  gid: number;
}

/** Hands a tree to a user (symlinks themselves, not their targets). */
export async function chownTree(dir: string, o: Owner | undefined): Promise<void> {
  if (!o) return;
  await fs.promises.lchown(dir, o.uid, o.gid);
  for (const e of await fs.promises.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) await chownTree(p, o);
    else await fs.promises.lchown(p, o.uid, o.gid);
  }
}

/**
 * Who may write what, by Unix user (when Keelson runs as root; otherwise everything is the current
 * user's). Keelson (root) owns every file it generates; Apache's user writes only repositories'
 * `db/` and `locks/` (commits) and the commit spool; the Trac user writes only environments' `db/`
 * and `files/` (attachments) and its own cache. Neither can write a configuration, a hook, a
 * plugin or a template, so nothing a tenant reaches through them can load code or name a path.
 */
export interface Owners {
  apache: Owner;
  trac: Owner;
  /** The API's own user when it runs apart (KEELSON_API_USER): owns the database's directory and Apache's credentials. */
  api?: Owner;
}

const ROOT: Owner = { uid: 0, gid: 0 };

async function userOwner(user: string, group: string, what: string): Promise<Owner> {
  const uid = Number((await run('id', ['-u', user]).catch(() => ({ stdout: '' }))).stdout.trim() || NaN);
  const gid = Number((await run('getent', ['group', group]).catch(() => ({ stdout: '' }))).stdout.split(':')[2] ?? NaN);
  if (!Number.isInteger(uid) || !Number.isInteger(gid) || uid === 0) {
    throw new Error(`${what} ${user}:${group} is missing or is root; scripts/install-system.sh creates it (run it as root)`);
  }
  return { uid, gid };
}

/** Apache's and Trac's users as ids, or undefined when Keelson is not root (nobody to hand files to). */
export async function serviceOwners(cfg: {
  apacheUser: string;
  apacheGroup: string;
  tracUser: string;
  tracGroup: string;
  apiUser?: string | null;
}): Promise<Owners | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const apache = await userOwner(cfg.apacheUser, cfg.apacheGroup, "Apache's user");
  const trac = await userOwner(cfg.tracUser, cfg.tracGroup, 'the Trac user');
  if (trac.uid === apache.uid) throw new Error(`the Trac user must not be Apache's user (${cfg.apacheUser})`);
  if (!cfg.apiUser) return { apache, trac };
  const api = await userOwner(cfg.apiUser, cfg.apiUser, 'the API user (KEELSON_API_USER)');
  if (api.uid === apache.uid || api.uid === trac.uid)
    throw new Error(`the API user (${cfg.apiUser}) must be neither Apache's user nor the Trac user`);
  return { apache, trac, api };
}

async function lchownIfNeeded(p: string, o: Owner): Promise<void> {
  const st = await fs.promises.lstat(p);
  if (st.uid !== o.uid || st.gid !== o.gid) await fs.promises.lchown(p, o.uid, o.gid);
}

/** Owner of one folder and its direct entries (not deeper). */
async function chownShallow(dir: string, o: Owner): Promise<void> {
  await lchownIfNeeded(dir, o);
  for (const e of await fs.promises.readdir(dir)) await lchownIfNeeded(path.join(dir, e), o);
}

/** The folder's owner, or undefined when it does not exist. */
function ownerOf(p: string): number | undefined {
  try {
    return fs.lstatSync(p).uid;
  } catch {
    return undefined;
  }
}

/**
 * A repository: Keelson's (root) but for `db/` and `locks/`, which Apache's user writes when it
 * takes a commit. `deep` walks those two fully (a new or restored repository, or one whose `db/`
 * is not yet Apache's); otherwise only the top, `conf/` and `hooks/` are checked, which is cheap.
 */
export async function ownRepository(dir: string, o: Owners | undefined, opts: { deep: boolean }): Promise<void> {
  if (!o) return;
  for (const e of await fs.promises.readdir(dir)) {
    const p = path.join(dir, e);
    if (e === 'db' || e === 'locks') {
      if (opts.deep || ownerOf(p) !== o.apache.uid) await chownTree(p, o.apache);
    } else if (e === 'conf' || e === 'hooks') await chownShallow(p, ROOT);
    else await lchownIfNeeded(p, ROOT);
  }
  await lchownIfNeeded(dir, ROOT);
}

/**
 * A Trac environment: Keelson's (root) but for `db/` and `files/`, which the Trac user writes, each
 * 0700 so no other user (Apache's included) reads a project's Trac database or attachments.
 */
export async function ownTracEnv(dir: string, o: Owners | undefined, opts: { deep: boolean }): Promise<void> {
  for (const d of ['db', 'files']) {
    const p = path.join(dir, d);
    if (!fs.existsSync(p)) await fs.promises.mkdir(p, { mode: 0o700 });
  }
  if (!o) return;
  for (const e of await fs.promises.readdir(dir)) {
    const p = path.join(dir, e);
    if (e === 'db' || e === 'files') {
      if (opts.deep || ownerOf(p) !== o.trac.uid) await chownTree(p, o.trac);
      await fs.promises.chmod(p, 0o700);
    } else if ((await fs.promises.lstat(p)).isDirectory()) await chownShallow(p, ROOT);
    else await lchownIfNeeded(p, ROOT);
  }
  await lchownIfNeeded(dir, ROOT);
}

/** What a repository may hold in `conf/` and `hooks/` besides Keelson's atomic-write temporaries. */
const REPO_ALLOWED: Record<string, RegExp> = {
  conf: /^(authz|passwd|svnserve\.conf|hooks-env\.tmpl)$/,
  hooks: /^(post-commit|pre-commit|pre-lock|[a-z-]+\.tmpl)$/,
};
/** Temporaries of writeFileAtomic / writeTempSync: `.<name>.<pid>.<hex>.tmp`. */
const TEMP = /^\.[A-Za-z0-9_.-]+\.\d+\.[0-9a-f]+\.tmp$/;

/** An environment keeps no plugins, templates, static files, logs or extra configuration. */
const ENV_EMPTIED = ['plugins', 'templates', 'htdocs', 'log'];
const ENV_CONF = /^trac\.ini$/;

function removeUnexpected(dir: string, keep: RegExp, removed: string[], label: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const e of names) {
    if (keep.test(e) || TEMP.test(e)) continue;
    fs.rmSync(path.join(dir, e), { recursive: true, force: true });
    removed.push(`${label}/${e}`);
  }
}

/**
 * Removes from a repository what Keelson does not own: hooks other than its post-commit (a
 * start-commit that blocks every commit, say) and unknown files in `conf/` (a hooks-env could set
 * LD_PRELOAD for the hooks). Returns what was removed.
 */
export function purgeRepository(dir: string): string[] {
  const removed: string[] = [];
  for (const [sub, keep] of Object.entries(REPO_ALLOWED)) removeUnexpected(path.join(dir, sub), keep, removed, sub);
  return removed;
}

/** Removes from a Trac environment what Keelson does not own: plugins, templates, htdocs, logs, extra conf. */
export function purgeTracEnv(dir: string): string[] {
  const removed: string[] = [];
  for (const sub of ENV_EMPTIED) removeUnexpected(path.join(dir, sub), /^$/, removed, sub);
  removeUnexpected(path.join(dir, 'conf'), ENV_CONF, removed, 'conf');
  return removed;
}

/**
 * Apache's user and the Trac user must reach their parts of the data directory: a directory on the
 * way closed to them (a data directory made with umask 077, a parent at 0700) would otherwise show
 * up as every project answering 403 or 500. Asked of the kernel as that user, at start; the first
 * directory on the way it cannot search is named.
 */
export async function checkReach(
  owners: Owners | undefined,
  cfg: { apacheUser: string; apacheGroup: string; tracUser: string; tracGroup: string },
  dirs: { apache: string[]; trac: string[] },
): Promise<void> {
  if (!owners) return;
  const who = [
    { user: cfg.apacheUser, group: cfg.apacheGroup, role: "Apache's user", dirs: dirs.apache },
    { user: cfg.tracUser, group: cfg.tracGroup, role: 'the Trac user', dirs: dirs.trac },
  ];
  for (const w of who) {
    const can = (dir: string) =>
      run('setpriv', ['--reuid', w.user, '--regid', w.group, '--init-groups', '--', 'test', '-x', dir]).then(
        () => true,
        () => false,
      );
    // The directories made so far (Apache's own is made when its configuration is first written).
    for (const d of w.dirs.filter((x) => fs.existsSync(x))) {
      if (await can(d)) continue;
      let blocked = d;
      for (let cur = '/', rest = path.resolve(d).split('/').filter(Boolean); rest.length;) {
        cur = path.join(cur, rest.shift()!);
        if (!(await can(cur))) {
          blocked = cur;
          break;
        }
      }
      const mode = (fs.statSync(blocked).mode & 0o7777).toString(8).padStart(4, '0');
      throw new Error(
        `${w.user} (${w.role}) cannot reach ${d}: ${blocked} (mode ${mode}) is closed to it; let it through, e.g. chmod o+x ${blocked}`,
      );
    }
  }
}

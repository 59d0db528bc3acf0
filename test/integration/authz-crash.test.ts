import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { PROJECT_ROOT } from '../../src/paths.js';
import { http, startHost, type TestHost } from '../helpers/host.js';
import { fixtures } from '../helpers/fixtures.js';
import { readAccess, type PermissionSnapshot } from '../../src/store/permissions.js';
import { renderAuthz } from '../../src/authz/render.js';
import { getProject } from '../../src/store/projects.js';
import { removeMember, setMember } from '../helpers/seed.js';
import { AuthzChecker } from '../../src/authz/canary.js';

const KILLS = Number(process.env.KEELSON_CRASH_KILLS) || 200;
const SLUGS = Array.from({ length: 12 }, (_, i) => `crash-${String.fromCharCode(97 + i)}`);
const USERS = ['u1', 'u2', 'u3', 'u4', 'u5', 'u6'];

/**
 * Crash safety of publishing: a separate publishing process (`keelson reconcile --all
 * --files-only`, which publishes every project's authz) is SIGKILLed at random points while
 * memberships change. After every kill each authz file on disk must parse (libsvn) and be the
 * rendering of a recorded version no older than the one seen before; after a final run every
 * project must be at its database state and Apache must enforce it.
 */
describe('authz publishing survives SIGKILL', () => {
  let h: TestHost;
  let f: ReturnType<typeof fixtures>;
  const checker = new AuthzChecker('/usr/bin/python3');
  const authzFile = (slug: string) => path.join(h.run.reconciler.repoDir(slug), 'conf', 'authz');

  const publisher = () =>
    spawn(process.execPath, [path.join(PROJECT_ROOT, 'dist', 'src', 'cli', 'main.js'), 'reconcile', '--all', '--files-only'], {
      env: { ...process.env, KEELSON_DATA_DIR: h.cfg.dataDir, KEELSON_APACHE_PORT: String(h.cfg.apachePort), KEELSON_LOG: 'silent' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  const exited = (c: ReturnType<typeof publisher>) =>
    new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => c.on('exit', (code, signal) => r({ code, signal })));
  /** Resolves when the publisher starts publishing (its first progress line), or when it exits. */
  const publishing = (c: ReturnType<typeof publisher>) =>
    new Promise<void>((r) => {
      c.stderr!.on('data', (b: Buffer) => b.toString().includes('authz and hooks') && r());
      c.on('exit', () => r());
    });

  /** Every version's rendering, per project, from the recorded history. */
  function renderings(slug: string): Map<string, number> {
    const p = getProject(h.run.db, slug)!;
    const rows = h.run.db.prepare(`SELECT version, snapshot FROM permission_history WHERE project_id = ?`).all(p.id) as {
      version: number;
      snapshot: string;
    }[];
    const out = new Map<string, number>();
    for (const r of rows) {
      const s = JSON.parse(r.snapshot) as PermissionSnapshot;
      const text = renderAuthz({ slug, visibility: s.visibility, members: s.members, rules: s.rules, suspended: s.suspended });
      out.set(text, Math.max(out.get(text) ?? 0, r.version));
    }
    return out;
  }

  before(async () => {
    h = await startHost('authz-crash');
    f = fixtures(h);
    for (const u of ['olivia', ...USERS]) await f.user(u);
    for (const slug of SLUGS) await f.project(slug, 'olivia');
    // From here on only the killed process publishes.
    await h.run.worker!.stop();
  });
  after(async () => {
    checker.close();
    await h?.stop();
  });

  it(`${KILLS} SIGKILLs at random points: every file is a whole recorded version; then all converge`, async () => {
    const db = h.run.db;
    let seed = 42;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    // How long one full run and its publishing part take here, so the kills spread over them.
    const t0 = Date.now();
    const first = publisher();
    const fullDone = exited(first);
    await publishing(first);
    const t1 = Date.now();
    const full = await fullDone;
    assert.equal(full.code, 0);
    const span = Math.max(50, Date.now() - t0);
    const publishSpan = Math.max(5, Date.now() - t1);

    const seen = new Map<string, number>(SLUGS.map((s) => [s, 0]));
    let midway = 0;
    let inside = 0;
    // Random kills land with some projects published and others not yet only by chance (0 to 26
    // of 200 here, depending on the machine's load; 0 of 600 in one CI run). If none of the KILLS
    // random ones did, the next kills are aimed: a change right after the publisher read the rows
    // (so that project stays behind), then SIGKILL as soon as another project's publish shows in
    // the database, while the publisher is still flushing and exiting.
    let kills = 0;
    let aimed = 0;
    for (let k = 0; k < KILLS || (midway === 0 && k < KILLS + 20); k++) {
      kills = k + 1;
      const aim = k >= KILLS;
      // A few membership changes, committed before (and while) the publisher runs.
      const change = () => {
        const slug = SLUGS[rnd(SLUGS.length)]!;
        const user = USERS[rnd(USERS.length)]!;
        const what = rnd(3);
        if (what === 2) {
          if (getProject(db, slug) && readAccess(db, getProject(db, slug)!.id)!.access.members.some((m) => m.user === user)) {
            removeMember(db, 'crash-test', slug, user);
          }
        } else setMember(db, 'crash-test', slug, user, what === 0 ? 'developer' : 'viewer');
      };
      for (let i = 0; i < 2 + rnd(6); i++) change();
      const before = new Map(SLUGS.map((s) => [s, getProject(db, s)!]));
      const child = publisher();
      const done = exited(child);
      let gone = false;
      void done.then(() => (gone = true));
      // Most kills inside the publishing part, the rest anywhere in the run.
      const inPublish = aim || rnd(5) !== 0;
      if (inPublish) await publishing(child);
      let during: Promise<void>;
      if (aim) {
        change();
        during = Promise.resolve();
        const published = () =>
          SLUGS.some(
            (s) =>
              readAccess(db, getProject(db, s)!.id)!.project.published_version !==
              (before.get(s) as { published_version?: number }).published_version,
          );
        while (!gone && !published()) await new Promise((r) => setImmediate(r));
      } else {
        const delay = rnd(inPublish ? publishSpan : span);
        during = new Promise<void>((r) =>
          setTimeout(() => {
            change();
            r();
          }, rnd(span)),
        );
        await new Promise((r) => setTimeout(r, delay));
      }
      child.kill('SIGKILL');
      const end = await done;
      if (inPublish && end.signal === 'SIGKILL') inside++;
      await during;

      let advanced = 0;
      let behind = 0;
      for (const slug of SLUGS) {
        const text = fs.readFileSync(authzFile(slug), 'utf8');
        await checker.access(text, slug, [['olivia', '/']]); // libsvn parses it, or this throws
        const versions = renderings(slug);
        const v = versions.get(text);
        assert.ok(v !== undefined, `${slug}: the file on disk is not a rendering of any recorded version (kill ${k})`);
        assert.ok(v >= seen.get(slug)!, `${slug}: version ${v} on disk after ${seen.get(slug)} (kill ${k})`);
        seen.set(slug, v);
        const now = readAccess(db, getProject(db, slug)!.id)!.project;
        if (now.published_version !== (before.get(slug) as { published_version?: number }).published_version) advanced++;
        if (now.published_version !== now.perm_version) behind++;
      }
      if (advanced > 0 && behind > 0 && end.signal === 'SIGKILL') {
        midway++;
        if (aim) aimed++;
      }
    }
    // The kills must have landed inside publishing, not only before or after it.
    console.log(
      `# ${inside} of ${kills} kills landed while publishing, ${midway} with some projects published and others not yet (${aimed} of them aimed; one full run: ${span} ms, publishing ${publishSpan} ms)`,
    );
    assert.ok(inside >= kills / 2, `only ${inside} of ${kills} kills landed while publishing`);
    // And some between one project's publish and the next: at least one, or the state this test
    // exists for was never reached (observed 3, 9, 12 and 26 of 200 here; how many depends on the
    // machine's load, so no larger floor is a property of the code).
    assert.ok(midway >= 1, `none of ${kills} kills landed with some projects published and others not yet`);

    const last = await exited(publisher());
    assert.equal(last.code, 0);
    for (const slug of SLUGS) {
      const a = readAccess(db, getProject(db, slug)!.id)!;
      assert.equal(a.project.published_version, a.version, slug);
      assert.equal(fs.readFileSync(authzFile(slug), 'utf8'), renderAuthz(a.access), slug);
      assert.deepEqual(
        fs.readdirSync(path.dirname(authzFile(slug))).filter((x) => x.endsWith('.tmp')),
        [],
        `${slug}: no temporary files left`,
      );
      // And Apache enforces it: every user's access is what the database says.
      for (const u of USERS) {
        const member = a.access.members.some((m) => m.user === u);
        assert.equal((await http(`${h.svnUrl(slug)}/`, f.creds(u))).status, member ? 200 : 403, `${u} on ${slug}`);
      }
    }
  });
});

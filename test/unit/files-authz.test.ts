import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase, type DB } from '../../src/store/db.js';
import { createProject, createUser } from '../helpers/seed.js';
import { hashPassword } from '../../src/sys/password.js';
import { readAccess } from '../../src/store/permissions.js';
import { renderAuthz } from '../../src/authz/render.js';
import { publishAuthz, publishAuthzText, type PublishInput } from '../../src/authz/publish.js';
import { AuthzChecker } from '../../src/authz/canary.js';

// The store takes a computed hash (hashing is the use case's, off the event loop).
const PW_HASH = await hashPassword('correct horse battery');

/**
 * svn/<slug>/conf/authz has one writer (src/authz/publish.ts), and libsvn's own parser with
 * the canaries checks a rendering before it replaces the live file.
 */
describe('generated files: authz (libsvn and the canaries check it before publishing)', () => {
  const checker = new AuthzChecker('/usr/bin/python3');
  after(() => checker.close());

  function setup(): { dir: string; db: DB; file: string; input: () => PublishInput } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keelson-files-authz-'));
    const db = openDatabase(path.join(dir, 'keelson.db'));
    createUser(db, 'test', { name: 'amy', email: 'amy@example.com', passwordHash: PW_HASH });
    const p = createProject(db, 'test', { slug: 'alpha', title: 'Alpha', visibility: 'private', owner: 'amy' });
    const file = path.join(dir, 'repo', 'conf', 'authz');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const input = (): PublishInput => {
      const s = readAccess(db, p.id)!;
      return { projectId: p.id, file, access: s.access, version: s.version, checker, publisher: 'test' };
    };
    return { dir, db, file, input };
  }
  const published = (db: DB) => ({
    project: db.prepare(`SELECT published_version, published_checksum FROM projects WHERE slug = 'alpha'`).get(),
    publishes: db.prepare(`SELECT count(*) FROM authz_publishes`).pluck().get(),
  });

  it('publishes the rendering with mode 0644 and records its version; unchanged bytes are not rewritten', async () => {
    const { dir, db, file, input } = setup();
    try {
      const r = await publishAuthz(db, input());
      assert.equal(r.changed, true);
      assert.equal(fs.readFileSync(file, 'utf8'), renderAuthz(input().access));
      assert.equal(fs.statSync(file).mode & 0o777, 0o644);
      assert.deepEqual(published(db).project, { published_version: r.version, published_checksum: r.checksum });
      assert.equal((await publishAuthz(db, input())).changed, false);
    } finally {
      db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a rendering libsvn cannot parse, or one that grants what the database does not, is refused and the live file stays', async () => {
    const { dir, db, file, input } = setup();
    try {
      await publishAuthz(db, input());
      const before = fs.readFileSync(file);
      const recorded = published(db);
      const good = renderAuthz(input().access);
      for (const [bad, why] of [
        // An undefined group: libsvn refuses the whole file.
        [good + '\n[/secret]\n@nobody = rw\n', /authz check: .*undefined group '@nobody'/],
        // Parses, but the private project is readable by everyone: the canaries catch it.
        [
          renderAuthz({ ...input().access, visibility: 'public' }),
          /authz canary failed for alpha: .*anonymous should have no access on \/, file gives r/,
        ],
        // Parses, but a non-member may write.
        [good.replace('[/]\n', '[/]\nKeelson-NonMember = rw\n'), /Keelson-NonMember should have no access on \/, file gives rw/],
      ] as const) {
        await assert.rejects(publishAuthzText(db, input(), bad), why);
        assert.ok(fs.readFileSync(file).equals(before), 'the live authz file changed');
        assert.deepEqual(published(db), recorded, 'a refused rendering was recorded as published');
      }
      assert.deepEqual(fs.readdirSync(path.dirname(file)), ['authz'], 'a temporary file was left behind');
    } finally {
      db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { openDatabase } from '../../src/store/db.js';
import { createUser, rotateAccessToken, setUserDisabled } from '../helpers/seed.js';
import { hashPassword } from '../../src/sys/password.js';
import { apacheHash } from '../../src/domain/tokens.js';
import { publishCredential, publishCredentials, syncCredentials, syncUserCredential } from '../../src/files/credentials/credentials.js';

// The store takes a computed hash (hashing is the use case's, off the event loop).
const PW_HASH = await hashPassword('correct horse battery');

/**
 * auth/credentials.db (the table mod_authn_dbd reads) has one writer
 * (src/files/credentials/credentials.ts): every row is checked (user-name rule, {SHA} hash) and
 * each transaction passes SQLite's integrity_check before it commits.
 */
describe('generated files: credentials.db (rows checked, integrity_check before commit)', () => {
  const rows = (file: string): [string, string][] => {
    const d = new Database(file, { readonly: true });
    try {
      return d.prepare(`SELECT username, hash FROM credentials ORDER BY username`).raw().all() as [string, string][];
    } finally {
      d.close();
    }
  };
  const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'keelson-files-cred-'));

  it("holds every enabled user's token hash, row by row as Keelson's database says", () => {
    const dir = tmp();
    const db = openDatabase(path.join(dir, 'keelson.db'));
    const file = path.join(dir, 'credentials.db');
    try {
      createUser(db, 'test', { name: 'amy', email: 'amy@example.com', passwordHash: PW_HASH });
      const { accessToken } = createUser(db, 'test', { name: 'bob', email: 'bob@example.com', passwordHash: PW_HASH });
      assert.equal(syncUserCredential(db, file, 'amy'), 'none', 'the full sync creates the database');
      assert.deepEqual(syncCredentials(db, file), { upserted: 2, removed: 0 });
      assert.deepEqual(
        rows(file).map(([u]) => u),
        ['amy', 'bob'],
      );
      assert.equal(rows(file)[1]![1], apacheHash(accessToken));
      assert.deepEqual(syncCredentials(db, file), { upserted: 0, removed: 0 });
      const token = rotateAccessToken(db, 'test', 'bob');
      assert.equal(syncUserCredential(db, file, 'bob'), 'set');
      assert.equal(rows(file)[1]![1], apacheHash(token));
      setUserDisabled(db, 'test', 'amy', true);
      assert.equal(syncUserCredential(db, file, 'amy'), 'removed');
      assert.deepEqual(rows(file), [['bob', apacheHash(token)]]);
    } finally {
      db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a row with a name outside the user-name rule or a hash not in {SHA} form is refused on its own and fails closed: its live row goes, the others are published', () => {
    const dir = tmp();
    const file = path.join(dir, 'credentials.db');
    try {
      const good: [string, string][] = [
        ['amy', apacheHash('svn_amy')],
        ['bob', apacheHash('svn_bob')],
      ];
      assert.deepEqual(publishCredentials(file, good), { upserted: 2, removed: 0 });
      const before = rows(file);
      for (const [bad, why, gone] of [
        [[...good, ['Amy Admin', apacheHash('x')]], /user "Amy Admin"/, undefined],
        [[...good, ['eve" OR "1"="1', apacheHash('x')]], /refusing credentials row/, undefined],
        [[...good, ['admin', apacheHash('x')]], /"admin" is reserved/, undefined],
        [[good[0]!, ['bob', 'svn_bob']], /not in \{SHA\} form/, 'bob'],
        [[good[0]!, ['bob', '{SHA}' + 'x'.repeat(40)]], /not in \{SHA\} form/, 'bob'],
        [[['amy', '$apr1$abc$def'], good[1]!], /not in \{SHA\} form/, 'amy'],
      ] as const) {
        publishCredentials(file, good);
        const out = publishCredentials(file, bad);
        assert.equal(out.refused?.length, 1, 'the bad row is reported');
        assert.match(out.refused![0]!.problem, why);
        // The refused name has no row (its old token must not keep working); the others are as before.
        assert.deepEqual(
          rows(file),
          before.filter(([u]) => u !== gone),
          'only the refused row changed',
        );
      }
      // One bad row does not hold back the others: a good row's change is published beside it.
      const amy2 = apacheHash('svn_amy2');
      const mixed = publishCredentials(file, [
        ['amy', amy2],
        ['bob', 'not-a-hash'],
      ]);
      assert.deepEqual([mixed.upserted, mixed.removed, mixed.refused?.map((r) => r.name)], [1, 1, ['bob']]);
      assert.deepEqual(rows(file), [['amy', amy2]]);
      // One user's row (a rotation): refused, it removes the live row and says so.
      publishCredentials(file, good);
      assert.deepEqual(rows(file), before);
      assert.throws(() => publishCredential(file, 'bob', 'plaintext-token'), /not in \{SHA\} form/);
      assert.deepEqual(rows(file), [before[0]!], "bob's old token stopped working");
      assert.throws(() => publishCredential(file, '../etc', apacheHash('x')), /refusing credentials row/);
      assert.deepEqual(rows(file), [before[0]!], 'a refused name wrote nothing');
      assert.deepEqual(fs.readdirSync(dir), ['credentials.db'], 'a journal was left behind');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

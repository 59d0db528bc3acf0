/**
 * The production settings that become file ownership: KEELSON_API_USER and KEELSON_DB_FILE.
 * The API's user is handed the database's directory, so that directory must be one of its own.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { layout, loadConfig } from '../../src/config.js';

const base = { KEELSON_DATA_DIR: '/var/lib/keelson' };

describe('KEELSON_API_USER and KEELSON_DB_FILE', () => {
  it('puts the database where KEELSON_DB_FILE says, by default in the data directory', () => {
    assert.equal(layout(loadConfig(base)).db, '/var/lib/keelson/keelson.db');
    const cfg = loadConfig({ ...base, KEELSON_API_USER: 'keelson', KEELSON_DB_FILE: '/var/lib/keelson/db/keelson.db' });
    assert.equal(cfg.apiUser, 'keelson');
    assert.equal(layout(cfg).db, '/var/lib/keelson/db/keelson.db');
  });

  it("refuses an API user without a database directory of its own, or one of Keelson's", () => {
    for (const db of [
      undefined,
      '/var/lib/keelson/keelson.db',
      '/var/lib/keelson/auth/keelson.db',
      '/var/lib/keelson/svn/keelson.db',
      '/var/lib/keelson/db/deeper/keelson.db',
      '/var/lib/other/keelson.db',
      '/var/lib/keelson/../keelson.db',
    ])
      assert.throws(
        () => loadConfig({ ...base, KEELSON_API_USER: 'keelson', ...(db ? { KEELSON_DB_FILE: db } : {}) }),
        /KEELSON_API_USER needs KEELSON_DB_FILE in a directory of its own/,
        String(db),
      );
  });

  it('refuses an API user that is not a plain system user name, and a database path with odd characters', () => {
    for (const u of ['root; rm -rf /', 'Keelson', '../x', 'a'.repeat(40)])
      assert.throws(
        () => loadConfig({ ...base, KEELSON_API_USER: u, KEELSON_DB_FILE: '/var/lib/keelson/db/k.db' }),
        /KEELSON_API_USER must be/,
        u,
      );
    assert.throws(() => loadConfig({ ...base, KEELSON_DB_FILE: '/var/lib/keelson/db/k$1.db' }), /KEELSON_DB_FILE/);
  });
});

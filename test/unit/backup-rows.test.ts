/**
 * A backup row is data: whoever could write the database (the API runs apart as its own user in
 * production) must not point root's restore, test restore or incremental base at a tree of its
 * own, nor make a slug a path.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { migrate } from '../../src/store/db.js';
import { loadConfig, layout } from '../../src/config.js';
import { BackupService } from '../../src/backup/engine.js';
import { finalDirOf } from '../../src/backup/manifest.js';
import { repoDir, envDir, stagingPath } from '../../src/provision/dirs.js';
import type { BackupRow } from '../../src/store/backups.js';

describe('rows that would steer root', () => {
  it("a backup's folder counts only below the backup directory, outside its staging, with no link on the way", () => {
    const top = fs.mkdtempSync(path.join(os.tmpdir(), 'keelson-rows-'));
    try {
      const cfg = loadConfig({ KEELSON_DATA_DIR: path.join(top, 'data'), KEELSON_BACKUP_DIR: path.join(top, 'backups') });
      const db = new Database(':memory:');
      migrate(db);
      const svc = new BackupService(db, cfg, cfg.backup);
      const good = path.join(cfg.backupDir, 'projects', 'alpha-1', 'x-b1-full');
      fs.mkdirSync(good, { recursive: true });
      const outside = path.join(top, 'data', 'run', 'wake', 'x');
      fs.mkdirSync(outside, { recursive: true });
      fs.symlinkSync(outside, path.join(cfg.backupDir, 'projects', 'alpha-1', 'linked'));
      fs.mkdirSync(path.join(cfg.backupDir, '.staging', 'b2'), { recursive: true });
      const row = (p: string | null) => ({ id: 7, path: p, state: 'verified' }) as BackupRow;
      assert.equal(svc.folderOf(row(good)), good);
      for (const bad of [
        outside,
        path.join(cfg.backupDir, '..', 'data', 'run', 'wake', 'x'),
        path.join(cfg.backupDir, 'projects', 'alpha-1', 'linked'),
        path.join(cfg.backupDir, '.staging', 'b2'),
        cfg.backupDir,
        'projects/alpha-1/x-b1-full',
      ])
        assert.throws(() => svc.folderOf(row(bad)), /is not one Keelson made under/, bad);
      assert.throws(() => svc.readManifest(row(outside)), /is not one Keelson made under/);
    } finally {
      fs.rmSync(top, { recursive: true, force: true });
    }
  });

  it('a slug from a row is checked again where it becomes a path', () => {
    const l = layout(loadConfig({ KEELSON_DATA_DIR: '/var/lib/keelson' }));
    for (const slug of ['a/../../backups', '../auth', 'x/y', '']) {
      assert.throws(() => repoDir(l, slug), /slug/, slug);
      assert.throws(() => envDir(l, slug), /slug/, slug);
      assert.throws(() => finalDirOf('/b', 1, slug, 1, 'full'), /slug/, slug);
    }
    assert.throws(() => stagingPath(l, 'deleted-a/../../backups'), /staging name/);
    assert.equal(repoDir(l, 'alpha'), '/var/lib/keelson/svn/alpha');
  });
});

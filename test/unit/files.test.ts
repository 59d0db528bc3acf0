import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { publishHookText, publishHooks, renderPostCommitHook } from '../../src/files/hooks/post-commit.js';
import { publishTracIni, renderProjectTracIni, renderSharedTracIni } from '../../src/files/trac/ini.js';
import { TracHelper } from '../../src/provision/trac.js';
import { layout, loadConfig } from '../../src/config.js';
import { tempDataDir } from '../helpers/host.js';

/**
 * Each generated file has one writer, and that writer has the real tool check a rendering before
 * it replaces the live file: a refused rendering leaves the live file exactly as it was.
 */
describe('generated files: one writer each, checked before publishing', () => {
  const repo = () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'keelson-files-'));
    fs.mkdirSync(path.join(d, 'hooks'));
    return d;
  };

  it('post-commit hook: published with mode 0755, unchanged bytes are not rewritten', async () => {
    const d = repo();
    try {
      assert.equal(await publishHooks(d, 'alpha', { commitSpool: '/srv/spool', quotaDir: '/srv/quota' }), true);
      const file = path.join(d, 'hooks', 'post-commit');
      assert.equal(fs.readFileSync(file, 'utf8'), renderPostCommitHook('alpha', '/srv/spool'));
      assert.equal(fs.statSync(file).mode & 0o777, 0o755);
      assert.equal(await publishHooks(d, 'alpha', { commitSpool: '/srv/spool', quotaDir: '/srv/quota' }), false);
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
  });

  it('post-commit hook: a rendering the shell cannot parse is refused (sh -n) and the live hook stays', async () => {
    const d = repo();
    try {
      await publishHooks(d, 'alpha', { commitSpool: '/srv/spool', quotaDir: '/srv/quota' });
      const file = path.join(d, 'hooks', 'post-commit');
      const before = fs.readFileSync(file);
      await assert.rejects(publishHookText(file, '#!/bin/sh\nif then fi (\n'), /sh -n/);
      assert.ok(fs.readFileSync(file).equals(before));
      assert.deepEqual(
        fs.readdirSync(path.join(d, 'hooks')).sort(),
        ['post-commit', 'pre-commit', 'pre-lock'],
        'a temporary file was left behind',
      );
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
  });

  it("trac.ini: Trac's own parser checks it; a project file that enables a component, sets a log, or does not parse is refused and the live file stays", async () => {
    const dataDir = tempDataDir('files');
    const cfg = loadConfig({ KEELSON_DATA_DIR: dataDir });
    const l = layout(cfg);
    const trac = new TracHelper(cfg, l);
    try {
      fs.mkdirSync(path.dirname(l.tracInherit), { recursive: true, mode: 0o755 });
      assert.equal(await publishTracIni(l.tracInherit, renderSharedTracIni(), trac, { shared: true }), true);
      const conf = path.join(dataDir, 'env', 'conf');
      fs.mkdirSync(conf, { recursive: true, mode: 0o755 });
      fs.chmodSync(path.dirname(conf), 0o755);
      const file = path.join(conf, 'trac.ini');
      const good = renderProjectTracIni({
        slug: 'alpha',
        title: 'Alpha',
        inheritFile: l.tracInherit,
        repoDir: '/srv/svn/alpha',
        baseUrl: 'http://h/trac/alpha',
      });
      assert.equal(await publishTracIni(file, good, trac, { shared: false }), true);
      assert.equal(fs.statSync(file).mode & 0o777, 0o644);
      for (const [bad, why] of [
        [good + '\n[components]\ntrac.admin.web_ui.PluginAdminPanel = enabled\n', /\[components\]/],
        [good + '\n[logging]\nlog_type = file\nlog_file = /srv/svn/victim/hooks/start-commit\n', /\[logging\]/],
        [good.replace('[inherit]\n', '[inherit]\nplugins_dir = /tmp/evil\n'), /plugins_dir/],
        ['[trac\ndatabase = sqlite:db/trac.db\n', /Error/],
      ] as const) {
        await assert.rejects(publishTracIni(file, bad, trac, { shared: false }), why);
        assert.equal(fs.readFileSync(file, 'utf8'), good);
      }
      assert.deepEqual(fs.readdirSync(conf), ['trac.ini'], 'a temporary file was left behind');
    } finally {
      trac.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

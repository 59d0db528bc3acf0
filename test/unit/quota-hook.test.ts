import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { publishHooks } from '../../src/files/hooks/post-commit.js';
import { publishDefaultQuota, publishQuota, renderQuotaLine } from '../../src/files/quota/quota.js';

/**
 * The pre-commit hook on its own (file:// commits run hooks too): what it does with a quota file
 * that is missing, garbled or set to the default, and the grammar of the files it reads.
 */
describe('the pre-commit quota hook', () => {
  // In memory where there is a tmpfs: loading 1500 revisions on this machine's disk takes 10-20 s, on tmpfs 1.
  const top = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'keelson-qhook-'));
  const quotaDir = path.join(top, 'quota');
  fs.mkdirSync(quotaDir);
  after(() => fs.rmSync(top, { recursive: true, force: true }));
  let n = 0;

  async function repo(slug: string): Promise<string> {
    const r = path.join(top, slug);
    assert.equal(spawnSync('svnadmin', ['create', r]).status, 0);
    await publishHooks(r, slug, { commitSpool: path.join(top, 'spool'), quotaDir });
    return r;
  }
  function put(r: string, bytes: number) {
    const f = path.join(top, `f${++n}`);
    fs.writeFileSync(f, crypto.randomBytes(bytes));
    const res = spawnSync('svn', ['import', '-q', '-m', 'x', f, `file://${r}/f${n}`], { encoding: 'utf8' });
    fs.rmSync(f);
    return res;
  }

  it('without a quota file, the whole repository is measured against the default (never unlimited)', async () => {
    const r = await repo('nofile');
    await publishDefaultQuota(quotaDir, 1024 * 1024);
    assert.equal(put(r, 600 * 1024).status, 0);
    const over = put(r, 600 * 1024);
    assert.notEqual(over.status, 0);
    assert.match(over.stderr, /project nofile is over its 1\.0 MiB storage limit: 1\.[0-9] MiB used with this commit/);
  });

  it("'default' follows the operator's file; 'none' there means no limit; a garbled line counts as unmeasured", async () => {
    const r = await repo('deflt');
    await publishQuota(quotaDir, 'deflt', { limit: 'default', repoBytes: 0, repoRev: 0, tracBytes: 0 });
    await publishDefaultQuota(quotaDir, null);
    assert.equal(put(r, 1200 * 1024).status, 0, 'no limit refused a commit');
    await publishDefaultQuota(quotaDir, 1024 * 1024);
    assert.match(put(r, 10).stderr, /over its 1\.0 MiB storage limit/);
    // A line the hook cannot read is the same as no file: measured whole, still limited.
    fs.writeFileSync(path.join(quotaDir, 'deflt'), '1048576 lots of bytes\n');
    assert.match(put(r, 10).stderr, /over its 1\.0 MiB storage limit/);
  });

  it('far behind the last measure (over 1000 revisions), it measures the whole repository, quickly and never unlimited', async () => {
    const r = await repo('behind');
    const rev = (n: number) => `Revision-number: ${n}\nProp-content-length: 10\nContent-length: 10\n\nPROPS-END\n\n`;
    const dump = 'SVN-fs-dump-format-version: 2\n\n' + Array.from({ length: 1500 }, (_, i) => rev(i + 1)).join('');
    assert.equal(spawnSync('svnadmin', ['load', '-q', '--no-flush-to-disk', r], { input: dump }).status, 0);
    // Measured through revision 1, 100 MiB of room: 1500 revisions later, still within it.
    await publishQuota(quotaDir, 'behind', { limit: 100 * 1024 * 1024, repoBytes: 0, repoRev: 1, tracBytes: 0 });
    let t0 = performance.now();
    assert.equal(put(r, 10).status, 0);
    assert.ok(performance.now() - t0 < 5000, `${performance.now() - t0} ms`);
    // 1 MiB: the 1500 revision files alone (a block each, and their revprops) are more.
    await publishQuota(quotaDir, 'behind', { limit: 1024 * 1024, repoBytes: 0, repoRev: 1, tracBytes: 0 });
    t0 = performance.now();
    const over = put(r, 10);
    assert.ok(performance.now() - t0 < 5000, `${performance.now() - t0} ms`);
    assert.match(over.stderr, /project behind is over its 1\.0 MiB storage limit: [0-9.]+ MiB used/);
  });

  it("without the operator's default file, a project on the default has no limit (a missing file never locks a host out)", async () => {
    const r = await repo('nodefault');
    fs.rmSync(path.join(quotaDir, '_default'), { force: true });
    await publishQuota(quotaDir, 'nodefault', { limit: 'default', repoBytes: 0, repoRev: 0, tracBytes: 0 });
    assert.equal(put(r, 100 * 1024).status, 0);
  });

  it('the quota file publisher refuses what the hook would not parse', () => {
    assert.throws(() => renderQuotaLine({ limit: -5, repoBytes: 0, repoRev: 0, tracBytes: 0 }), /byte count/);
    assert.throws(() => renderQuotaLine({ limit: Number.NaN, repoBytes: 0, repoRev: 0, tracBytes: 0 }));
    assert.equal(renderQuotaLine({ limit: null, repoBytes: 1, repoRev: 2, tracBytes: 3 }), 'none 1 2 3\n');
  });
});

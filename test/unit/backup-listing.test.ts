/**
 * GET /api/v1/backups shows the quota over the backup directory. Reading it runs programs (btrfs,
 * python3's quotactl_fd); the listing used to run them with execFileSync on every call, stalling
 * every request behind it. Now it takes the last sample (a run's check or watcher, or a read under
 * a minute old) or reads without blocking the event loop. The quota reader here is a stand-in
 * python that takes a second and reports a 3 MiB user quota, counting its runs.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase } from '../../src/store/db.js';
import { loadConfig } from '../../src/config.js';
import { listBackups } from '../../src/domain/backups.js';
import { noEffects, operator, type Ctx } from '../../src/domain/context.js';
import { backupPort } from '../../src/main/ports.js';

const MiB = 1024 * 1024;

describe('the backup listing reads the quota without blocking the event loop', () => {
  it('the first listing reads it as a child process the event loop does not wait on; the next ones take that sample', async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keelson-listing-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const runs = path.join(dir, 'runs');
    const python = path.join(dir, 'python');
    fs.writeFileSync(
      python,
      `#!/bin/sh\necho run >> '${runs}'\nsleep 1\necho '[{"kind":"user","id":0,"hard":${3 * MiB},"soft":0,"used":${MiB}},{"kind":"group","id":0,"errno":"ESRCH"}]'\n`,
      { mode: 0o755 },
    );
    fs.mkdirSync(path.join(dir, 'data'));
    const cfg = loadConfig({ KEELSON_DATA_DIR: path.join(dir, 'data'), KEELSON_PYTHON: python, KEELSON_LOG: 'silent' });
    const db = openDatabase(path.join(dir, 'data', 'keelson.db'));
    t.after(() => db.close());
    const ctx: Ctx = { db, cfg, fx: noEffects, backups: backupPort(db, cfg) };

    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const t0 = performance.now();
    // Two listings at once share one read.
    const [first, second] = await Promise.all([listBackups(ctx, operator('test')), listBackups(ctx, operator('test'))]);
    const ms = performance.now() - t0;
    clearInterval(timer);
    assert.ok(ms >= 900, `the stand-in takes a second (took ${ms.toFixed(0)} ms)`);
    // With execFileSync the timer could not have fired while the second passed.
    assert.ok(ticks >= 30, `${ticks} ticks of 10 ms in ${ms.toFixed(0)} ms`);
    for (const l of [first, second]) {
      assert.equal(l.volume.quota?.limitBytes, 3 * MiB);
      assert.equal(l.volume.quota?.usedBytes, MiB);
      assert.match(l.volume.quota?.name ?? '', /user quota of uid 0/);
    }
    assert.equal(fs.readFileSync(runs, 'utf8'), 'run\n', 'one read for both listings');

    const t1 = performance.now();
    const again = await listBackups(ctx, operator('test'));
    assert.ok(performance.now() - t1 < 500, 'the sample is reused');
    assert.equal(again.volume.quota?.limitBytes, 3 * MiB);
    assert.equal(fs.readFileSync(runs, 'utf8'), 'run\n', 'no new read within the minute');
  });
});

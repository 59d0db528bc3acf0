import { describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import Database from 'better-sqlite3';
import { migrate } from '../../src/store/db.js';
import { applyRetention, retained, roomPlan } from '../../src/backup/retention.js';
import { heldBytes } from '../../src/store/backups.js';
import type { BackupRow } from '../../src/store/backups.js';
import { checkFits, reserveFor, belowFloor } from '../../src/backup/space.js';
import { type Volume } from '../../src/sys/volume.js';
import { loadBackupSettings, parseBytes } from '../../src/settings/backup.js';

const DAY = 86_400_000;
const T0 = Date.parse('2026-11-23T12:00:00Z');

function row(
  id: number,
  daysAgo: number,
  kind: 'full' | 'incremental',
  base: number | null,
  state: BackupRow['state'] = 'verified',
): BackupRow {
  return { id, kind, base_id: base, state, started_at: new Date(T0 - daysAgo * DAY).toISOString() } as BackupRow;
}

describe('retention rules', () => {
  it('keeps the newest, one per day/week/month within the counts, and every base of a kept backup', () => {
    const rows = [
      row(1, 70, 'full', null),
      row(2, 60, 'incremental', 1),
      row(3, 40, 'full', null),
      row(4, 30, 'incremental', 3),
      row(5, 20, 'incremental', 4),
      row(6, 10, 'full', null),
      row(7, 1, 'incremental', 6),
      row(8, 0, 'incremental', 7),
    ];
    const keep = retained(rows, { keepDaily: 1, keepWeekly: 1, keepMonthly: 1 });
    assert.deepEqual([...keep].sort(), [6, 7, 8]);
    const more = retained(rows, { keepDaily: 2, keepWeekly: 2, keepMonthly: 3 });
    // Days: 8, 7. Weeks: 8, 6. Months: Nov 8, Oct 4 (needs 3), Sep 2 (needs 1). #5 (Nov 3) is none of these.
    assert.deepEqual(
      [...more].sort((a, b) => a - b),
      [1, 2, 3, 4, 6, 7, 8],
    );
  });

  it('never drops the newest verified backup, even with every count at zero; failed and refused rows do not count', () => {
    const rows = [
      row(1, 3, 'full', null),
      row(2, 2, 'incremental', 1),
      row(3, 1, 'full', null, 'failed'),
      row(4, 0, 'full', null, 'refused'),
    ];
    assert.deepEqual([...retained(rows, { keepDaily: 0, keepWeekly: 0, keepMonthly: 0 })].sort(), [1, 2]);
  });
});

describe('retention within the budget (roomPlan)', () => {
  /** A row of project `p` with `mib` MiB of its own. */
  const r = (id: number, p: number | null, daysAgo: number, base: number | null, mib: number, state: BackupRow['state'] = 'verified') =>
    ({ ...row(id, daysAgo, base === null ? 'full' : 'incremental', base, state), project_id: p, bytes: mib * 1048576 }) as BackupRow;
  const ids = (plan: ReturnType<typeof roomPlan>) => ('expire' in plan ? plan.expire.map((b) => b.id).sort((a, b) => a - b) : plan);
  const MiB = 1048576;
  const rows = [
    // project 1: an old chain 1 <- 2, a newer full 3 with an incremental 4 (the newest).
    r(1, 1, 30, null, 10),
    r(2, 1, 29, 1, 2),
    r(3, 1, 10, null, 10),
    r(4, 1, 9, 3, 1),
    // project 2: its only backup, the oldest of all: the newest of its project.
    r(5, 2, 40, null, 50),
    // Keelson's database: two, the older one expirable.
    r(6, null, 20, null, 3),
    r(7, null, 1, null, 3),
  ];

  it('expires the oldest first, with everything built on it; never the newest of a scope, never a base a kept one needs', () => {
    assert.deepEqual(ids(roomPlan(rows, 0)), []);
    // The oldest expirable is 1 (5 is project 2's newest); 2 is built on it and goes with it.
    assert.deepEqual(ids(roomPlan(rows, 1)), [1, 2]);
    assert.deepEqual(ids(roomPlan(rows, 12 * MiB)), [1, 2]);
    // Then Keelson's database's older backup (20 days) before anything newer.
    assert.deepEqual(ids(roomPlan(rows, 13 * MiB)), [1, 2, 6]);
    // 3 and 4 are project 1's newest chain and 5 and 7 the newest of theirs: 15 MiB is all that may go.
    assert.deepEqual(ids(roomPlan(rows, 15 * MiB)), [1, 2, 6]);
    assert.deepEqual(roomPlan(rows, 15 * MiB + 1), { freeable: 15 * MiB });
  });

  it('a running backup’s base chain is kept; failed, refused and expired rows are never chosen', () => {
    const more = [...rows.filter((b) => b.id !== 4), r(8, 1, 0, 2, 0, 'running'), r(9, 1, 50, null, 99, 'failed')];
    // 8 is an incremental in progress on 2 (and so on 1): those stay; 3 is now project 1's newest.
    assert.deepEqual(roomPlan(more, 1), { expire: [more.find((b) => b.id === 6)!] });
    assert.deepEqual(roomPlan(more, 4 * MiB), { freeable: 3 * MiB });
  });

  it('a backup a restore reads (or is queued to read) is kept, with its chain', () => {
    // A restore of 2 keeps 2 and its base 1: only Keelson's older database backup may go.
    assert.deepEqual(ids(roomPlan(rows, 1, { inUse: [2] })), [6]);
    assert.deepEqual(roomPlan(rows, 4 * MiB, { inUse: [2] }), { freeable: 3 * MiB });
  });

  it('who pays: the run’s own scope first, then the scope that holds the most; the oldest by id, whatever the clock said', () => {
    // A run of Keelson's database pays with its own older backup first.
    assert.deepEqual(ids(roomPlan(rows, 1, { scope: null })), [6]);
    assert.deepEqual(ids(roomPlan(rows, 4 * MiB, { scope: null })), [1, 2, 6]);
    // Project 3 holds more than project 1 (23 MiB): its oldest goes first, though project 1's is older.
    const big = [...rows, r(10, 3, 5, null, 40), r(11, 3, 4, null, 40)];
    assert.deepEqual(ids(roomPlan(big, 1)), [10]);
    assert.deepEqual(ids(roomPlan(big, 41 * MiB)), [1, 2, 10]);
    // Project 1's run, needing 10 MiB: its own old chain first (12 MiB); for more, only project 3
    // (80 MiB) holds more than project 1 will (23 + 10); Keelson's database (6) never pays for it.
    assert.deepEqual(ids(roomPlan(big, 12 * MiB, { scope: 1, need: 10 * MiB })), [1, 2]);
    assert.deepEqual(ids(roomPlan(big, 13 * MiB, { scope: 1, need: 10 * MiB })), [1, 2, 10]);
    assert.deepEqual(roomPlan(big, 53 * MiB, { scope: 1, need: 10 * MiB }), { freeable: 52 * MiB });
    // A project that outgrew everyone takes nothing from the others.
    assert.deepEqual(roomPlan(big, 1, { scope: 3, need: 1 }), { expire: [big.find((b) => b.id === 10)!] });
    assert.deepEqual(roomPlan(big, 41 * MiB, { scope: 3, need: 1 }), { freeable: 40 * MiB });
    // A clock stepped back: 21 was made after 20 but says it started earlier. 21 is the newest.
    const stepped = [r(20, 4, 1, null, 5), r(21, 4, 3, null, 5)];
    assert.deepEqual(ids(roomPlan(stepped, 1)), [20]);
  });

  it('the newest backup whose test restore did not fail is kept too (with its chain)', () => {
    const tested = [r(30, 5, 9, null, 5), r(31, 5, 8, 30, 1), r(32, 5, 1, null, 5)];
    tested[2]!.test_restore_ok = 0;
    // 32 is the newest but failed its test restore: 31 (and its base 30) stay as well.
    assert.deepEqual(roomPlan(tested, 1), { freeable: 0 });
    tested[2]!.test_restore_ok = 1;
    assert.deepEqual(ids(roomPlan(tested, 1)), [30, 31]);
  });
});

describe('what the backups hold (heldBytes)', () => {
  it('verified rows count what they wrote; runs in progress the larger of that and their estimate; the rest nothing', () => {
    const db = new Database(':memory:');
    migrate(db);
    const ins = db.prepare(
      `INSERT INTO backups (project_id, kind, state, bytes, needed_bytes, started_at) VALUES (NULL, 'full', ?, ?, ?, 't')`,
    );
    ins.run('verified', 100, 500); // its estimate was larger than what it wrote: 100
    ins.run('running', 0, 300); // admitted on 300, nothing written yet: 300
    ins.run('verifying', 0, null); // before its admission: 0
    for (const st of ['refused', 'failed', 'aborted', 'expired']) ins.run(st, 1000, 1000);
    assert.equal(heldBytes(db), 400);
  });
});

describe('retention applied', () => {
  it("deletes nothing outside the backup directory, whatever an expired row's path says", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'keelson-retention-root-'));
    const victim = fs.mkdtempSync(path.join(os.tmpdir(), 'keelson-retention-victim-'));
    fs.writeFileSync(path.join(victim, 'precious'), 'x');
    const db = new Database(':memory:');
    migrate(db);
    const ins = db.prepare(
      `INSERT INTO backups (id, project_id, kind, state, path, started_at, finished_at, duration_ms) VALUES (?, NULL, 'full', 'verified', ?, ?, ?, 5)`,
    );
    const at = (daysAgo: number) => new Date(T0 - daysAgo * DAY).toISOString();
    // A row written by whoever could write the database: one outside, one climbing out, one inside.
    ins.run(1, victim, at(4), at(4));
    ins.run(2, `${root}/../${path.basename(victim)}`, at(3), at(3));
    fs.mkdirSync(path.join(root, 'b3'));
    ins.run(3, path.join(root, 'b3'), at(2), at(2));
    ins.run(4, path.join(root, 'b4'), at(0), at(0));
    const expired = applyRetention(db, { ...loadBackupSettings({}), keepDaily: 0, keepWeekly: 0, keepMonthly: 0 }, null, root);
    assert.deepEqual([...expired].sort(), [1, 2, 3]);
    assert.ok(fs.existsSync(path.join(victim, 'precious')), 'the directory outside is untouched');
    assert.ok(!fs.existsSync(path.join(root, 'b3')), 'the expired backup inside is removed');
    fs.rmSync(root, { recursive: true, force: true });
    fs.rmSync(victim, { recursive: true, force: true });
  });

  it('marks rows expired (one transaction) before deleting their files; a failed deletion leaves no verified row without files', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keelson-retention-'));
    const db = new Database(':memory:');
    migrate(db);
    const at = (daysAgo: number) => new Date(T0 - daysAgo * DAY).toISOString();
    const ins = db.prepare(
      `INSERT INTO backups (id, project_id, kind, state, path, started_at, finished_at, duration_ms) VALUES (?, NULL, 'full', 'verified', ?, ?, ?, 5)`,
    );
    for (const [id, daysAgo] of [
      [1, 3],
      [2, 2],
      [3, 0],
    ] as const) {
      const p = path.join(dir, `b${id}`);
      fs.mkdirSync(p);
      fs.writeFileSync(path.join(p, 'keelson.db'), 'x');
      ins.run(id, p, at(daysAgo), at(daysAgo));
    }
    // A real failure under the oldest one's files: b1 is a mount point (a 1 MiB tmpfs holding its
    // files), which rmSync empties but cannot remove (EBUSY). Tests run as root.
    const b1 = path.join(dir, 'b1');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', b1]);
    fs.writeFileSync(path.join(b1, 'keelson.db'), 'x');
    const real = fs.rmSync.bind(fs);
    const seen: string[] = [];
    const failed: string[] = [];
    // Only watches each deletion (the row's state at that moment, and whether it failed); the fault is the mount's.
    const rm = mock.method(fs, 'rmSync', (p: fs.PathLike, o?: fs.RmOptions) => {
      const state = db.prepare(`SELECT state FROM backups WHERE path = ?`).pluck().get(String(p));
      seen.push(`${path.basename(String(p))}:${state}`);
      try {
        real(p, o);
      } catch (e) {
        failed.push(`${path.basename(String(p))}:${(e as NodeJS.ErrnoException).code}`);
        throw e;
      }
    });
    try {
      const expired = applyRetention(db, { ...loadBackupSettings({}), keepDaily: 0, keepWeekly: 0, keepMonthly: 0 }, null, dir);
      assert.deepEqual([...expired].sort(), [1, 2]);
    } finally {
      rm.mock.restore();
    }
    try {
      // The deletion of b1 really failed (and was caught: applyRetention returned), and only that one.
      assert.deepEqual(failed, ['b1:EBUSY']);
    } finally {
      execFileSync('umount', [b1]);
    }
    // Every deletion found its row already expired.
    assert.deepEqual(seen.sort(), ['b1:expired', 'b2:expired']);
    const rows = db.prepare(`SELECT id, state, path, finished_at FROM backups ORDER BY id`).all() as BackupRow[];
    assert.deepEqual(
      rows.map((r) => r.state),
      ['expired', 'expired', 'verified'],
    );
    assert.equal(rows[0]!.finished_at, at(3), 'the finish time is kept');
    for (const r of rows) if (r.state === 'verified') assert.ok(fs.existsSync(path.join(r.path!, 'keelson.db')));
    assert.equal(fs.existsSync(path.join(dir, 'b2')), false);
    assert.equal(fs.existsSync(path.join(dir, 'b1')), true, 'files no row uses are left (and logged) when their deletion fails');
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('space rules', () => {
  const s = { ...loadBackupSettings({}), reserveBytes: 2 * 1024 ** 3, reservePercent: 10 };
  const vol = (total: number, free: number): Volume => ({
    path: '/b',
    totalBytes: total,
    freeBytes: free,
    totalInodes: 1000,
    freeInodes: 900,
  });

  it('reserve is the larger of 10% and 2 GiB, doubled on the live data volume', () => {
    assert.equal(reserveFor(vol(100 * 1024 ** 3, 0), s, false).bytes, 10 * 1024 ** 3);
    assert.equal(reserveFor(vol(10 * 1024 ** 3, 0), s, false).bytes, 2 * 1024 ** 3);
    assert.equal(reserveFor(vol(10 * 1024 ** 3, 0), s, true).bytes, 4 * 1024 ** 3);
  });

  it('refuses when the reserve would not stay free, in bytes or in inodes', () => {
    const v = vol(100 * 1024 ** 3, 15 * 1024 ** 3);
    const r = reserveFor(v, { ...s, reserveInodes: 100, reserveInodesPercent: 0 }, false);
    assert.equal(checkFits(v, { bytes: 5 * 1024 ** 3, inodes: 10 }, r), undefined);
    assert.match(checkFits(v, { bytes: 6 * 1024 ** 3, inodes: 10 }, r)!, /must stay free/);
    assert.match(checkFits(v, { bytes: 1, inodes: 850 }, r)!, /inodes/);
    assert.match(belowFloor({ ...v, freeBytes: 9 * 1024 ** 3 }, r)!, /below the reserve/);
    assert.equal(belowFloor(v, r), undefined);
  });

  it('parses sizes and rejects nonsense', () => {
    assert.equal(parseBytes('x', '2G'), 2 * 1024 ** 3);
    assert.equal(parseBytes('x', '512M'), 512 * 1024 ** 2);
    assert.equal(parseBytes('x', '100'), 100);
    assert.throws(() => parseBytes('KEELSON_BACKUP_RESERVE_BYTES', 'lots'), /KEELSON_BACKUP_RESERVE_BYTES must be a size/);
    assert.throws(() => loadBackupSettings({ KEELSON_BACKUP_FULL_CRON: 'every sunday' }), /not a valid cron/);
    assert.throws(() => loadBackupSettings({ KEELSON_BACKUP_RESERVE_PERCENT: '150' }), /from 0 to 100/);
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { retained } from '../../src/backup/retention.js';
import type { BackupRow } from '../../src/backup/catalog.js';
import { checkFits, reserveFor, belowFloor, type Volume } from '../../src/backup/space.js';
import { loadBackupSettings, parseBytes } from '../../src/backup/settings.js';

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

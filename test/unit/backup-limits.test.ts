import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  budgetAlertDue,
  budgetLimit,
  budgetMark,
  binding,
  checkLimits,
  limitReached,
  quotaLimit,
  reserveOf,
  type Limit,
} from '../../src/backup/limits.js';
import { parseQgroups, pickQuotactl, readQuotactl, tightest, userGroupQuota } from '../../src/sys/quota.js';
import { isNoSpace, isQuotaExceeded, isWriteError } from '../../src/backup/control.js';

const MiB = 1024 ** 2;
const volume = (free: number, reserve: number): Limit => ({
  name: 'free space of /srv/backups',
  kind: 'volume',
  totalBytes: 1024 * MiB,
  usedBytes: 1024 * MiB - free,
  availableBytes: free,
  reserveBytes: reserve,
});

describe('backup limits: the smallest of free space, quota and budget, each with its reserve', () => {
  it('every combination: the run fits only if it fits each limit with that limit’s reserve left; the refusal names the limit', () => {
    const need = 10 * MiB;
    const q = (limit: number, used: number) =>
      quotaLimit('/srv/backups', { source: 'btrfs qgroup 0/256', limitBytes: limit, usedBytes: used }, 10);
    const b = (budget: number, held: number) => budgetLimit(budget, held, 10);
    const cases: [string, Limit[], RegExp | undefined][] = [
      ['free space alone, fits', [volume(100 * MiB, 20 * MiB)], undefined],
      ['free space alone, reserve broken', [volume(25 * MiB, 20 * MiB)], /^free space of \/srv\/backups/],
      ['quota roomy, fits', [volume(100 * MiB, 20 * MiB), q(100 * MiB, 0)], undefined],
      [
        'quota smaller than the run',
        [volume(100 * MiB, 20 * MiB), q(3 * MiB, 16 * 1024)],
        /^quota of \/srv\/backups \(btrfs qgroup 0\/256\): 3\.0 MiB, 16\.0 KiB used and 307\.2 KiB must stay unused; needs 10\.0 MiB$/,
      ],
      [
        'quota fits the run but not its reserve',
        [volume(100 * MiB, 0), q(11 * MiB, 0)],
        /quota of .* and 1\.1 MiB must stay unused; needs 10\.0 MiB$/,
      ],
      [
        'budget exceeded, space and quota fine',
        [volume(100 * MiB, 0), q(100 * MiB, 0), b(50 * MiB, 45 * MiB)],
        /^backup budget \(KEELSON_BACKUP_BUDGET\): 50\.0 MiB, 45\.0 MiB used/,
      ],
      ['budget fits', [volume(100 * MiB, 0), b(50 * MiB, 30 * MiB)], undefined],
      [
        'everything too small: the tightest is named',
        [volume(12 * MiB, 1 * MiB), q(11 * MiB, 10 * MiB), b(20 * MiB, 15 * MiB)],
        /^quota of/,
      ],
    ];
    for (const [what, limits, want] of cases) {
      const got = checkLimits(limits, need);
      if (want === undefined) assert.equal(got, undefined, what);
      else assert.match(got ?? '(fits)', want, what);
    }
  });

  it('the reserve of a quota or the budget is its share, never the volume’s fixed floor; the binding limit has the least room', () => {
    assert.equal(reserveOf(3 * MiB, 10), Math.ceil(0.3 * MiB));
    assert.equal(reserveOf(3 * MiB, 0), 0);
    const l = [volume(100 * MiB, 20 * MiB), budgetLimit(50 * MiB, 49 * MiB, 0)];
    assert.equal(binding(l)!.kind, 'budget');
    assert.equal(
      limitReached([quotaLimit('/b', { source: 'btrfs qgroup 0/5', limitBytes: 10 * MiB, usedBytes: 9.5 * MiB }, 10)])?.startsWith(
        'quota of /b (btrfs qgroup 0/5) reached',
      ),
      true,
    );
    assert.equal(limitReached([quotaLimit('/b', { source: 'x', limitBytes: 10 * MiB, usedBytes: 1 * MiB }, 10)]), undefined);
  });

  it('btrfs qgroup rows: limits read, "none" ignored, the tightest of referenced and exclusive limits over the path', () => {
    const rows = parseQgroups(`Qgroupid    Referenced    Exclusive  Max referenced  Max exclusive   Path
--------    ----------    ---------  --------------  -------------   ----
0/256            16384        16384         3145728           none   backups
1/100          2097152      1048576         4194304        1310720   <1 member qgroup>
0/257             4096         4096            none           none   other
`);
    assert.equal(rows.length, 3);
    assert.deepEqual(tightest(rows), { source: 'btrfs qgroup 1/100', limitBytes: 1310720, usedBytes: 1048576 });
    assert.equal(tightest(parseQgroups('0/256 16384 16384 none none backups')), undefined);
  });

  it('EDQUOT in every form is a full volume (and a quota), never an unknown error', () => {
    const forms: unknown[] = [
      Object.assign(new Error("Unknown system error -122: Unknown system error -122, copyfile 'a' -> 'b'"), {
        errno: -122,
        code: 'Unknown system error -122',
      }),
      Object.assign(new Error('EDQUOT: disk quota exceeded, write'), { code: 'EDQUOT', errno: -122 }),
      new Error("svnadmin: E000122: Can't write to file: Disk quota exceeded"),
    ];
    for (const e of forms) {
      assert.equal(isNoSpace(e), true, String(e));
      assert.equal(isQuotaExceeded(e), true, String(e));
    }
    assert.equal(isQuotaExceeded(Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC', errno: -28 })), false);
    assert.equal(isNoSpace(new Error('permission denied')), false);
    // SQLite reports EDQUOT as an I/O error or as a file it could not create: a write error, which
    // counts as the quota when the quota is full (frame.ts asks it then).
    for (const e of [
      Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR_WRITE' }),
      Object.assign(new Error('unable to open database file'), { code: 'SQLITE_CANTOPEN' }),
    ]) {
      assert.equal(isWriteError(e), true, String(e));
      assert.equal(isQuotaExceeded(e), false, String(e));
    }
    assert.equal(isWriteError(Object.assign(new Error('UNIQUE constraint failed'), { code: 'SQLITE_CONSTRAINT' })), false);
  });

  it('user and group quotas (quotactl rows): the tightest soft or hard limit; "quotas off" and "not supported" are no quota', () => {
    const K = 1024;
    const r = pickQuotactl([
      { kind: 'user', id: 0, hard: 8 * MiB, soft: 6 * MiB, used: 5 * MiB },
      { kind: 'group', id: 0, hard: 4 * MiB, soft: 0, used: 2 * MiB },
    ]);
    // The user's soft limit leaves 1 MiB, the group's hard one 2 MiB.
    assert.deepEqual(r.quota, { source: 'user quota of uid 0', limitBytes: 6 * MiB, usedBytes: 5 * MiB });
    assert.equal(r.off, false);
    const none = pickQuotactl([
      { kind: 'user', id: 0, hard: 0, soft: 0, used: 100 * K },
      { kind: 'group', id: 0, errno: 'ESRCH' },
    ]);
    assert.deepEqual(none, { quota: undefined, off: false, errors: [] });
    assert.deepEqual(
      pickQuotactl([
        { kind: 'user', id: 0, errno: 'ESRCH' },
        { kind: 'group', id: 0, errno: 'ENOSYS' },
      ]),
      {
        quota: undefined,
        off: true,
        errors: [],
      },
    );
    assert.deepEqual(pickQuotactl([{ kind: 'user', id: 7, errno: 'EIO' }]).errors, ['user 7: EIO']);
  });

  it('quotactl_fd on this machine’s file systems without quotas (ext4 under /var/tmp, tmpfs /dev/shm): no quota, no error', () => {
    // Real calls: ext4 without quotas answers ESRCH (quotas off); tmpfs ENOSYS here (a kernel
    // without tmpfs quotas), ESRCH on one with them.
    for (const dir of ['/var/tmp', '/dev/shm']) {
      const [uid, gid] = [process.geteuid!(), process.getegid!()];
      const rows = readQuotactl(dir, uid, gid);
      assert.deepEqual(
        rows.map((r) => [r.kind, r.id]),
        [
          ['user', uid],
          ['group', gid],
        ],
      );
      for (const r of rows) assert.ok('errno' in r && ['ESRCH', 'ENOSYS'].includes(r.errno), `${dir}: ${JSON.stringify(r)}`);
    }
    assert.equal(userGroupQuota('/var/tmp'), undefined);
    assert.equal(userGroupQuota('/dev/shm'), undefined);
  });

  it('the budget alert: at 90% of what the budget lets backups hold (less its reserve), when crossed or not yet said', () => {
    // A 100 MiB budget with the default 10% reserve: runs are refused past 90 MiB, the alert is at 81 MiB.
    assert.deepEqual(budgetMark(100 * MiB, 10), { usable: 90 * MiB, mark: Math.ceil(81 * MiB) });
    assert.deepEqual(budgetMark(100 * MiB, 0), { usable: 100 * MiB, mark: 90 * MiB });
    const mark = 81 * MiB;
    assert.equal(budgetAlertDue(80 * MiB, 82 * MiB, mark, false), true, 'crossed');
    assert.equal(budgetAlertDue(80 * MiB, 82 * MiB, mark, true), true, 'crossed again after falling below');
    assert.equal(budgetAlertDue(82 * MiB, 83 * MiB, mark, false), true, 'above, not yet said by this process');
    assert.equal(budgetAlertDue(82 * MiB, 83 * MiB, mark, true), false, 'above and said');
    assert.equal(budgetAlertDue(70 * MiB, 80 * MiB, mark, false), false, 'below');
  });
});

/**
 * Backups under a real quota (issue 11): a btrfs loop volume made by the test (as root), quotas
 * on, the backup directory a subvolume with a qgroup limit; and Keelson's own backup budget on a
 * tmpfs. The quota and the budget are read before a byte is written, and EDQUOT during a run is
 * a refusal naming the quota, never an unknown error.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import request from 'supertest';
import { BackupService } from '../../src/backup/engine.js';
import { budgetMark } from '../../src/backup/limits.js';
import { getBackup } from '../../src/store/backups.js';
import { btrfsQuota } from '../../src/sys/quota.js';
import { startHost, svn, tree, until, type TestHost } from '../helpers/host.js';
import { webhook } from '../helpers/webhook.js';

const MiB = 1024 * 1024;
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

/** Unmounts (lazily if busy) and removes the mount point. */
function unmount(mnt: string): void {
  try {
    sh('umount', [mnt]);
  } catch {
    sh('umount', ['-l', mnt]);
  }
  fs.rmSync(mnt, { recursive: true, force: true });
}

/** A 256 MiB tmpfs for the backups: plenty of free space, so only the budget limits. */
function tmpfsVolume(): string {
  const dir = fs.mkdtempSync(path.join('/var/tmp', 'keelson-budget-'));
  sh('mount', ['-t', 'tmpfs', '-o', 'size=256m,mode=0755', 'tmpfs', dir]);
  return dir;
}

/** A 1 GiB btrfs loop volume with quotas on and a subvolume `backups`; returns the subvolume and a cleanup. */
function btrfsVolume(): { dir: string; mnt: string; done: () => void } {
  const img = fs.mkdtempSync(path.join('/var/tmp', 'keelson-btrfs-img-'));
  const file = path.join(img, 'vol.img');
  const mnt = fs.mkdtempSync(path.join('/var/tmp', 'keelson-btrfs-'));
  fs.closeSync(fs.openSync(file, 'w'));
  fs.truncateSync(file, 1024 * MiB);
  sh('mkfs.btrfs', ['-q', file]);
  sh('mount', ['-o', 'loop', file, mnt]);
  sh('btrfs', ['quota', 'enable', mnt]);
  sh('btrfs', ['subvolume', 'create', path.join(mnt, 'backups')]);
  return {
    dir: path.join(mnt, 'backups'),
    mnt,
    done: () => {
      unmount(mnt);
      fs.rmSync(img, { recursive: true, force: true });
    },
  };
}

/**
 * A 256 MiB ext4 loop volume with user and group quotas on, or why this kernel cannot make one
 * (this machine's kernel has CONFIG_QUOTA but not CONFIG_QFMT_V2, which ext4's quota files need,
 * nor CONFIG_XFS_QUOTA: no file system here can carry user or group quotas).
 */
function ext4QuotaVolume(): { mnt: string; done: () => void } | { notRun: string } {
  const img = fs.mkdtempSync(path.join('/var/tmp', 'keelson-ext4q-img-'));
  const file = path.join(img, 'vol.img');
  const mnt = fs.mkdtempSync(path.join('/var/tmp', 'keelson-ext4q-'));
  const done = () => {
    try {
      sh('umount', [mnt]);
    } catch {
      /* not mounted */
    }
    fs.rmSync(mnt, { recursive: true, force: true });
    fs.rmSync(img, { recursive: true, force: true });
  };
  fs.closeSync(fs.openSync(file, 'w'));
  fs.truncateSync(file, 256 * MiB);
  sh('mkfs.ext4', ['-q', '-O', 'quota', '-E', 'quotatype=usrquota:grpquota', file]);
  try {
    sh('mount', ['-o', 'loop,usrquota,grpquota', file, mnt]);
  } catch (e) {
    done();
    let config = '';
    try {
      config = execFileSync('zcat', ['/proc/config.gz'], { encoding: 'utf8' });
    } catch {
      /* the kernel does not publish its configuration */
    }
    const missing = ['CONFIG_QUOTA', 'CONFIG_QFMT_V2', 'CONFIG_XFS_QUOTA'].filter((c) => config.includes(`# ${c} is not set`));
    const why = missing.length
      ? `this kernel was built without ${missing.join(' and ')}`
      : `mount -o usrquota,grpquota failed: ${String((e as { stderr?: Buffer }).stderr ?? e).trim()}`;
    return { notRun: `not run: no file system here can carry user or group quotas (${why}); btrfs qgroups and the budget are tested` };
  }
  return { mnt, done };
}

/** Sets the block hard limit of a user's quota on the file system of `dir` (quotactl_fd, Q_SETQUOTA). */
function setUserQuota(dir: string, uid: number, bytes: number): void {
  const py = String.raw`
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
class Dqblk(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in ('bhard', 'bsoft', 'space', 'ihard', 'isoft', 'inodes', 'btime', 'itime')] + [('valid', ctypes.c_uint32)]
q = Dqblk(bhard=int(sys.argv[3]) // 1024, valid=1)
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
if libc.syscall(443, fd, ctypes.c_uint(0x80000800), ctypes.c_uint(int(sys.argv[2])), ctypes.byref(q)) != 0:
    sys.exit(os.strerror(ctypes.get_errno()))
`;
  sh('python3', ['-I', '-c', py, dir, String(uid), String(bytes)]);
}

const env = {
  KEELSON_BACKUP_RESERVE_PERCENT: '0',
  KEELSON_BACKUP_RESERVE_BYTES: '0',
  KEELSON_BACKUP_RESERVE_INODES: '0',
  KEELSON_BACKUP_RESERVE_INODES_PERCENT: '0',
  KEELSON_BACKUP_WATCH_MS: '20',
};

async function withProject(h: TestHost, slug: string, bytes: number): Promise<{ user: string; password: string }> {
  const u = await h.api.post('/api/v1/users').send({ name: `${slug}-o`, email: `${slug}@example.com`, password: 'a long enough password' });
  assert.equal(u.status, 201, JSON.stringify(u.body));
  const creds = { user: `${slug}-o`, password: u.body.accessToken as string };
  assert.equal((await h.api.post('/api/v1/projects').send({ slug, owner: creds.user })).status, 201);
  await until(`${slug} active`, async () => (await h.api.get(`/api/v1/projects/${slug}`)).body.state === 'active', 30_000);
  await commitBytes(h, slug, creds, 'big.bin', bytes);
  return creds;
}

/** Commits a new file of `bytes` random bytes to the project's trunk. */
async function commitBytes(h: TestHost, slug: string, creds: { user: string; password: string }, name: string, bytes: number) {
  const wc = fs.mkdtempSync(path.join(os.tmpdir(), 'qwc-'));
  try {
    assert.equal((await svn(['checkout', `${h.cfg.publicUrl}/svn/${slug}/trunk`, wc], creds)).code, 0);
    fs.writeFileSync(path.join(wc, name), crypto.randomBytes(bytes));
    assert.equal((await svn(['add', path.join(wc, name)])).code, 0);
    const ci = await svn(['commit', '-m', name, wc], creds);
    assert.equal(ci.code, 0, ci.stderr);
  } finally {
    fs.rmSync(wc, { recursive: true, force: true });
  }
}

describe('backups under a btrfs qgroup quota (a real loop volume)', () => {
  let vol: ReturnType<typeof btrfsVolume>;
  let h: TestHost;
  let hook: Awaited<ReturnType<typeof webhook>>;
  let alerts: Awaited<ReturnType<typeof webhook>>['alerts'];

  before(async () => {
    vol = btrfsVolume();
    hook = await webhook();
    alerts = hook.alerts;
    h = await startHost('quota', {}, { ...env, KEELSON_BACKUP_DIR: vol.dir, KEELSON_ALERT_WEBHOOK: hook.url });
  });
  after(async () => {
    await h?.stop();
    hook?.close();
    vol?.done();
  });

  it('a qgroup limit smaller than the backup: refused before a byte, the reason names the quota, the tree is unchanged', async () => {
    await withProject(h, 'qalpha', 6 * MiB);
    sh('btrfs', ['qgroup', 'limit', '3M', vol.dir]);
    const q = btrfsQuota(vol.dir, { sync: true });
    assert.ok(q, 'the quota is read');
    assert.equal(q.limitBytes, 3 * MiB);
    const before = tree(vol.dir);
    const svc = new BackupService(h.run.db, h.cfg, h.cfg.backup);
    const r = await svc.runProject('qalpha', { kind: 'full', trigger: 'manual' });
    const b = getBackup(h.run.db, r.backup!.id)!;
    assert.equal(b.state, 'refused', JSON.stringify(b));
    assert.match(
      b.reason!,
      /^refused before writing: quota of .*backups \(btrfs qgroup 0\/\d+\): 3\.0 MiB, [\d.]+ KiB used; needs [\d.]+ MiB$/,
    );
    assert.deepEqual(tree(vol.dir), before, 'nothing was written');
    assert.equal(alerts.at(-1)?.event, 'backup.refused');
    assert.equal(alerts.at(-1)?.limit, 'quota');
    // The operator sees the quota next to the free space.
    const v = (await h.api.get('/api/v1/backups')).body.volume;
    assert.equal(v.quota.limitBytes, 3 * MiB);
    assert.match(v.quota.name, /btrfs qgroup 0\//);
  });

  it('the limit lowered while a backup runs: aborted, staging removed, refused naming the quota; live commits and API writes go on', async () => {
    const creds = await withProject(h, 'qbeta', 40 * MiB);
    sh('btrfs', ['qgroup', 'limit', '900M', vol.dir]);
    const svc = new BackupService(h.run.db, h.cfg, h.cfg.backup);
    const before = alerts.length;
    let lowered = false;
    const r = await svc.runProject('qbeta', {
      kind: 'full',
      trigger: 'manual',
      onProgress: (p) => {
        if (lowered || p.bytesDone === 0) return;
        lowered = true;
        // What the subvolume holds now plus 1 MiB: the copy cannot finish under it.
        const used = btrfsQuota(vol.dir, { sync: true })!.usedBytes;
        sh('btrfs', ['qgroup', 'limit', String(used + MiB), vol.dir]);
      },
    });
    assert.ok(lowered, 'the run reached its copy');
    const b = getBackup(h.run.db, r.backup!.id)!;
    assert.equal(b.state, 'refused', JSON.stringify(b));
    assert.match(b.reason!, /quota of .*backups \(btrfs qgroup 0\/\d+\)/);
    assert.doesNotMatch(b.reason!, /Unknown system error/);
    const staging = path.join(vol.dir, '.staging');
    assert.deepEqual(fs.existsSync(staging) ? fs.readdirSync(staging) : [], [], 'staging removed');
    assert.equal(alerts.length - before, 1, 'one alert');
    assert.equal(alerts.at(-1)?.limit, 'quota');
    // Live writes were never on this volume: a commit and an API write work.
    const wc = fs.mkdtempSync(path.join(os.tmpdir(), 'qwc-'));
    try {
      assert.equal((await svn(['checkout', `${h.cfg.publicUrl}/svn/qbeta/trunk`, wc], creds)).code, 0);
      fs.writeFileSync(path.join(wc, 'after.txt'), 'still works\n');
      assert.equal((await svn(['add', path.join(wc, 'after.txt')])).code, 0);
      assert.equal((await svn(['commit', '-m', 'after', wc], creds)).code, 0);
    } finally {
      fs.rmSync(wc, { recursive: true, force: true });
    }
    assert.equal((await h.api.patch('/api/v1/projects/qbeta').send({ title: 'still writable' })).status, 200);
  });

  it('the limit lowered while Keelson’s own database is copied (SQLite’s backup API): refused naming the quota, not an I/O error', async () => {
    sh('btrfs', ['qgroup', 'limit', '900M', vol.dir]);
    // Make the database worth copying: a few thousand audit rows.
    const ins = h.run.db.prepare(`INSERT INTO audit_log (at, actor, action, target, details) VALUES ('t', 'test', 'pad', 'x', ?)`);
    h.run.db.transaction(() => {
      for (let i = 0; i < 4000; i++) ins.run('x'.repeat(1000));
    })();
    const svc = new BackupService(h.run.db, h.cfg, h.cfg.backup);
    const before = alerts.length;
    let lowered = false;
    const r = await svc.runControl({
      onProgress: (p) => {
        if (lowered || p.phase !== 'copying database') return;
        lowered = true;
        const used = btrfsQuota(vol.dir, { sync: true })!.usedBytes;
        sh('btrfs', ['qgroup', 'limit', String(used + 64 * 1024), vol.dir]);
      },
    });
    assert.ok(lowered, 'the run reached its copy');
    const b = getBackup(h.run.db, r.backup!.id)!;
    assert.equal(b.state, 'refused', JSON.stringify(b));
    assert.match(b.reason!, /quota of .*backups \(btrfs qgroup 0\/\d+\)/);
    assert.doesNotMatch(b.reason!, /I\/O error|Unknown system error/);
    const staging = path.join(vol.dir, '.staging');
    assert.deepEqual(fs.existsSync(staging) ? fs.readdirSync(staging) : [], [], 'staging removed');
    assert.deepEqual(
      alerts.slice(before).map((a) => [a.event, a.limit]),
      [['backup.refused', 'quota']],
    );
    sh('btrfs', ['qgroup', 'limit', 'none', vol.dir]);
  });

  it('a SQLite write error far from any limit (a read-only file system under the staging folder) stays a failure, not the quota', async () => {
    // The other direction of "a write error near the quota is the quota": with the quota roomy, the
    // same kind of error (SQLite cannot create the copy) is an I/O failure.
    sh('btrfs', ['qgroup', 'limit', '900M', vol.dir]);
    const svc = new BackupService(h.run.db, h.cfg, h.cfg.backup);
    // The run reads the quota afresh before it writes, as here.
    const q = btrfsQuota(vol.dir, { sync: true });
    assert.equal(q?.limitBytes, 900 * MiB, 'the run sees a quota (so the quota check after a failed write does run)');
    assert.ok(q.limitBytes - q.usedBytes > 100 * MiB, JSON.stringify(q));
    const ro = fs.mkdtempSync(path.join('/var/tmp', 'keelson-rofs-'));
    sh('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m,mode=0755', 'tmpfs', ro]);
    const before = alerts.length;
    let swapped = '';
    try {
      const r = await svc.runControl({
        onProgress: (p) => {
          if (swapped || p.phase !== 'copying database') return;
          // The run's staging folder is made and still empty: a read-only file system takes its place
          // (through a link, so the run can still remove what it thinks is its folder).
          const staging = path.join(vol.dir, '.staging');
          const [stage, ...more] = fs.readdirSync(staging);
          assert.ok(stage && more.length === 0, 'one staging folder');
          swapped = path.join(staging, stage);
          assert.deepEqual(fs.readdirSync(swapped), []);
          fs.rmdirSync(swapped);
          fs.symlinkSync(ro, swapped);
        },
      });
      assert.ok(swapped, 'the run reached its copy');
      const b = getBackup(h.run.db, r.backup!.id)!;
      assert.equal(b.state, 'failed', JSON.stringify(b));
      // SQLite's own words for a copy it could not create: the kind of error EDQUOT also gives.
      assert.match(b.reason!, /^failed: .*unable to open database file/);
      assert.doesNotMatch(b.reason!, /quota|EDQUOT/i);
      const staging = path.join(vol.dir, '.staging');
      assert.deepEqual(fs.existsSync(staging) ? fs.readdirSync(staging) : [], [], 'staging removed');
      assert.deepEqual(
        alerts.slice(before).map((a) => [a.event, a.limit]),
        [['backup.failed', undefined]],
      );
    } finally {
      if (swapped && fs.lstatSync(swapped, { throwIfNoEntry: false })?.isSymbolicLink()) fs.unlinkSync(swapped);
      unmount(ro);
      sh('btrfs', ['qgroup', 'limit', 'none', vol.dir]);
    }
  });

  it('a user quota smaller than the backup (ext4 with quotas): refused before a byte, the reason names the user quota', async (t) => {
    const v = ext4QuotaVolume();
    if ('notRun' in v) return t.skip(v.notRun);
    try {
      const dir = path.join(v.mnt, 'backups');
      fs.mkdirSync(dir);
      setUserQuota(dir, process.geteuid!(), 3 * MiB);
      const before = tree(dir);
      const svc = new BackupService(h.run.db, { ...h.cfg, backupDir: dir }, h.cfg.backup);
      assert.equal((await svc.volume()).quota?.limitBytes, 3 * MiB);
      const b = getBackup(h.run.db, (await svc.runProject('qalpha', { kind: 'full', trigger: 'manual' })).backup!.id)!;
      assert.equal(b.state, 'refused', JSON.stringify(b));
      assert.match(
        b.reason!,
        /^refused before writing: quota of .*backups \(user quota of uid \d+\): 3\.0 MiB, .* used; needs [\d.]+ MiB$/,
      );
      assert.deepEqual(tree(dir), before, 'nothing was written');
    } finally {
      v.done();
    }
  });
});

describe('the backup budget (KEELSON_BACKUP_BUDGET) on a tmpfs', () => {
  let dir: string;
  let h: TestHost;
  before(async () => {
    dir = tmpfsVolume();
    h = await startHost('budget', {}, { ...env, KEELSON_BACKUP_DIR: dir, KEELSON_BACKUP_BUDGET: '12M' });
  });
  after(async () => {
    await h?.stop();
    if (dir) unmount(dir);
  });

  it('a run that passes the free-space rule but not the budget is refused, naming the budget; a run within it is not', async () => {
    await withProject(h, 'bsmall', 2 * MiB);
    await withProject(h, 'bbig', 16 * MiB);
    const svc = new BackupService(h.run.db, h.cfg, h.cfg.backup);
    const ok = await svc.runProject('bsmall', { kind: 'full', trigger: 'manual' });
    assert.equal(getBackup(h.run.db, ok.backup!.id)!.state, 'verified');
    const r = await svc.runProject('bbig', { kind: 'full', trigger: 'manual' });
    const b = getBackup(h.run.db, r.backup!.id)!;
    assert.equal(b.state, 'refused', JSON.stringify(b));
    assert.match(
      b.reason!,
      /^refused before writing: backup budget \(KEELSON_BACKUP_BUDGET\): 12\.0 MiB, [\d.]+ MiB used; needs [\d.]+ MiB$/,
    );
    const v = (await h.api.get('/api/v1/backups')).body.volume;
    assert.equal(v.budget.limitBytes, 12 * MiB);
    assert.equal(v.budget.retention, false, 'retention within the budget is off unless asked for');
    // The project's owner sees that it was refused, not the shared budget's numbers (other tenants' usage).
    const owner = request.agent(h.run.url!);
    const csrf = (await owner.get('/api/v1/session')).body.csrfToken as string;
    const signin = await owner
      .post('/api/v1/session')
      .set('x-csrf-token', csrf)
      .send({ username: 'bbig-o', password: 'a long enough password' });
    assert.equal(signin.status, 201);
    const mine = (await owner.get('/api/v1/projects/bbig/backups')).body.backups.find((x: { id: number }) => x.id === b.id);
    assert.equal(mine.state, 'refused');
    assert.equal(mine.reason, 'refused: the backup space shared by this host was short (the operator is alerted and has the details)');
    assert.equal(mine.free, undefined);
    assert.doesNotMatch(JSON.stringify(mine), /budget|MiB/);
    // After the refusal a scheduled run backs off; one an operator asked for as well does not.
    assert.match((await svc.runProject('bbig', { kind: 'full', trigger: 'schedule' })).skipped ?? '', /^backing off after a refusal/);
    const asked = await svc.runProject('bbig', { kind: 'full', trigger: 'schedule', requested: true });
    assert.equal(asked.skipped, undefined);
    assert.equal(asked.backup!.state, 'refused');
    // The operator sees the whole reason.
    assert.match(
      (await h.api.get('/api/v1/projects/bbig/backups')).body.backups.find((x: { id: number }) => x.id === b.id).reason,
      /backup budget/,
    );
    assert.ok(v.budget.usedBytes > 2 * MiB, JSON.stringify(v.budget));
  });
});

describe('retention within the budget (KEELSON_BACKUP_BUDGET_RETENTION) on a tmpfs', () => {
  let dir: string;
  let h: TestHost;
  let hook: Awaited<ReturnType<typeof webhook>>;
  before(async () => {
    hook = await webhook();
    dir = tmpfsVolume();
    h = await startHost('budgetret', {}, { ...env, KEELSON_BACKUP_DIR: dir });
  });
  after(async () => {
    await h?.stop();
    hook?.close();
    if (dir) unmount(dir);
  });

  /** Moves a backup's dates `days` back: the catalog then says it was made on an earlier day. */
  const backdate = (id: number, days: number) => {
    const at = new Date(Date.now() - days * 86_400_000).toISOString();
    h.run.db.prepare('UPDATE backups SET started_at = ?, finished_at = ? WHERE id = ?').run(at, at, id);
  };
  let keepCreds: { user: string; password: string };
  const held = () => h.run.db.prepare(`SELECT sum(bytes) FROM backups WHERE state = 'verified'`).pluck().get() as number;

  it('a scheduled run over the budget expires the oldest backups the rules allow and fits; never the newest verified one', async () => {
    const svc0 = new BackupService(h.run.db, h.cfg, h.cfg.backup);
    const bold = await withProject(h, 'rold', 3 * MiB);
    keepCreds = await withProject(h, 'rkeep', 2 * MiB);
    // rold: a full three days ago, an incremental on it two days ago, a new full yesterday
    // (daily retention keeps all three); rkeep: one backup, its newest, the oldest of all.
    const keep = (await svc0.runProject('rkeep', { kind: 'full' })).backup!;
    backdate(keep.id, 4);
    const f1 = (await svc0.runProject('rold', { kind: 'full' })).backup!;
    backdate(f1.id, 3);
    await commitBytes(h, 'rold', bold, 'more.bin', 1 * MiB);
    const i1 = (await svc0.runProject('rold', { kind: 'incremental' })).backup!;
    assert.equal(i1.base_id, f1.id);
    backdate(i1.id, 2);
    const f2 = (await svc0.runProject('rold', { kind: 'full' })).backup!;
    backdate(f2.id, 1);
    for (const b of [keep, f1, i1, f2]) assert.equal(getBackup(h.run.db, b.id)!.state, 'verified');
    const old = [f1, i1].map((b) => getBackup(h.run.db, b.id)!);
    const oldBytes = old[0]!.bytes + old[1]!.bytes;

    await withProject(h, 'rnew', 6 * MiB);
    const settings = { ...h.cfg.backup, backoffMs: 0, budgetRetention: true, alertWebhook: hook.url };
    // A budget the new backup does not fit even with both old backups gone: nothing is expired.
    let svc = new BackupService(h.run.db, h.cfg, { ...settings, budgetBytes: held() + MiB });
    const r1 = getBackup(h.run.db, (await svc.runProject('rnew', { kind: 'full', trigger: 'schedule' })).backup!.id)!;
    assert.equal(r1.state, 'refused', JSON.stringify(r1));
    assert.match(
      r1.reason!,
      /backup budget .*; retention within the budget may expire only [\d.]+ MiB, not the [\d.]+ MiB needed .*; nothing was expired$/,
    );
    for (const b of [keep, f1, i1, f2]) assert.equal(getBackup(h.run.db, b.id)!.state, 'verified', `#${b.id} kept`);
    const need = r1.needed_bytes!;
    assert.ok(need > 5 * MiB, String(need));

    // A budget it fits only with the old chain gone (2 MiB to spare); an operator's own run does not expire.
    const budget = held() - oldBytes + need + 2 * MiB;
    svc = new BackupService(h.run.db, h.cfg, { ...settings, budgetBytes: budget });
    const r2 = getBackup(h.run.db, (await svc.runProject('rnew', { kind: 'full', trigger: 'manual' })).backup!.id)!;
    assert.equal(r2.state, 'refused');
    assert.match(r2.reason!, /makes room for scheduled runs only; nothing was expired$/);
    assert.equal(getBackup(h.run.db, f1.id)!.state, 'verified');

    const before = hook.alerts.length;
    const r3 = getBackup(h.run.db, (await svc.runProject('rnew', { kind: 'full', trigger: 'schedule' })).backup!.id)!;
    assert.equal(r3.state, 'verified', JSON.stringify(r3));
    for (const b of old) {
      const now = getBackup(h.run.db, b.id)!;
      assert.equal(now.state, 'expired', `#${b.id}`);
      // The row says why, but not for whom: that run may be another tenant's.
      assert.equal(now.reason, 'expired by retention within the budget (KEELSON_BACKUP_BUDGET_RETENTION) to make room for a newer backup');
      assert.equal(fs.existsSync(b.path!), false, `#${b.id}'s files removed`);
    }
    // The newest of each project, and rkeep's only (and oldest) backup, stay.
    for (const b of [keep, f2]) assert.equal(getBackup(h.run.db, b.id)!.state, 'verified', `#${b.id} kept`);
    assert.ok(held() < budgetMark(budget, settings.reservePercent).mark, `${held()} is under the alert mark of ${budget}: no budget alert`);
    assert.deepEqual(
      hook.alerts.slice(before).map((a) => a.event),
      [],
    );
  });

  it('an alert when the backups come to hold 90% of what the budget allows (default 10% reserve): once, not again while above', async () => {
    await commitBytes(h, 'rkeep', keepCreds, 'four.bin', 4 * MiB);
    // What the next backups will need, read from refusals under a budget of one byte more than held.
    const probe = new BackupService(h.run.db, h.cfg, { ...h.cfg.backup, budgetBytes: held() + 1 });
    const need = getBackup(h.run.db, (await probe.runProject('rkeep', { kind: 'incremental' })).backup!.id)!.needed_bytes!;
    const needControl = getBackup(h.run.db, (await probe.runControl()).backup!.id)!.needed_bytes!;
    assert.ok(need > 4 * MiB && needControl > 0, `${need} ${needControl}`);

    // A budget the incremental just fits (with the default 10% reserve): the backups cross the mark.
    const settings = { ...h.cfg.backup, reservePercent: 10, alertWebhook: hook.url };
    let budget = Math.ceil((held() + need + 128 * 1024) / 0.9);
    const mark = budgetMark(budget, 10).mark;
    assert.ok(held() < mark, `below the mark before: ${held()} < ${mark}`);
    const before = hook.alerts.length;
    const b1 = (await new BackupService(h.run.db, h.cfg, { ...settings, budgetBytes: budget }).runProject('rkeep', { kind: 'incremental' }))
      .backup!;
    assert.equal(b1.state, 'verified', b1.reason ?? '');
    assert.ok(held() >= mark, `above the mark after: ${held()} >= ${mark}`);
    const first = hook.alerts.slice(before);
    assert.deepEqual(
      first.map((a) => a.event),
      ['backup.budget'],
    );
    assert.equal(first[0]!.limitBytes, budget);
    assert.equal(first[0]!.usableBytes, budget - Math.ceil(budget / 10));
    assert.ok((first[0]!.percent as number) >= 90, JSON.stringify(first[0]));
    assert.match(
      first[0]!.reason as string,
      /^the backups hold [\d.]+ MiB, 9\d% of the [\d.]+ MiB they may hold under the [\d.]+ MiB backup budget less its reserve$/,
    );

    // Another backup that fits, still above the mark: no second alert.
    budget = Math.ceil((held() + needControl + 128 * 1024) / 0.9);
    assert.ok(held() >= budgetMark(budget, 10).mark);
    const b2 = (await new BackupService(h.run.db, h.cfg, { ...settings, budgetBytes: budget }).runControl()).backup!;
    assert.equal(b2.state, 'verified', b2.reason ?? '');
    assert.deepEqual(
      hook.alerts.slice(before).map((a) => a.event),
      ['backup.budget'],
    );
  });
});

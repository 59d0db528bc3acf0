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
import { BackupService } from '../../src/backup/engine.js';
import { getBackup } from '../../src/backup/catalog.js';
import { btrfsQuota } from '../../src/sys/quota.js';
import { startHost, svn, tree, until, type TestHost } from '../helpers/host.js';

const MiB = 1024 * 1024;
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

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
      try {
        sh('umount', [mnt]);
      } catch {
        sh('umount', ['-l', mnt]);
      }
      fs.rmSync(mnt, { recursive: true, force: true });
      fs.rmSync(img, { recursive: true, force: true });
    },
  };
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
  const wc = fs.mkdtempSync(path.join(os.tmpdir(), 'qwc-'));
  try {
    assert.equal((await svn(['checkout', `${h.cfg.publicUrl}/svn/${slug}/trunk`, wc], creds)).code, 0);
    fs.writeFileSync(path.join(wc, 'big.bin'), crypto.randomBytes(bytes));
    assert.equal((await svn(['add', path.join(wc, 'big.bin')])).code, 0);
    const ci = await svn(['commit', '-m', 'big', wc], creds);
    assert.equal(ci.code, 0, ci.stderr);
  } finally {
    fs.rmSync(wc, { recursive: true, force: true });
  }
  return creds;
}

describe('backups under a btrfs qgroup quota (a real loop volume)', () => {
  let vol: ReturnType<typeof btrfsVolume>;
  let h: TestHost;
  const alerts: unknown[] = [];
  let hook: import('node:http').Server;

  before(async () => {
    vol = btrfsVolume();
    const http = await import('node:http');
    hook = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        alerts.push(JSON.parse(body));
        res.end('ok');
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', () => r()));
    const port = (hook.address() as { port: number }).port;
    h = await startHost('quota', {}, { ...env, KEELSON_BACKUP_DIR: vol.dir, KEELSON_ALERT_WEBHOOK: `http://127.0.0.1:${port}/alert` });
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
    assert.equal((alerts.at(-1) as { event: string }).event, 'backup.refused');
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
});

describe('the backup budget (KEELSON_BACKUP_BUDGET) on a tmpfs', () => {
  let dir: string;
  let h: TestHost;
  before(async () => {
    dir = fs.mkdtempSync(path.join('/var/tmp', 'keelson-budget-'));
    sh('mount', ['-t', 'tmpfs', '-o', 'size=256m,mode=0755', 'tmpfs', dir]);
    h = await startHost('budget', {}, { ...env, KEELSON_BACKUP_DIR: dir, KEELSON_BACKUP_BUDGET: '12M' });
  });
  after(async () => {
    await h?.stop();
    try {
      sh('umount', [dir]);
    } catch {
      sh('umount', ['-l', dir]);
    }
    fs.rmSync(dir, { recursive: true, force: true });
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
    assert.ok(v.budget.usedBytes > 2 * MiB, JSON.stringify(v.budget));
  });
});

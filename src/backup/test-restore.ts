import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { nowIso } from '../store/db.js';
import { testRestoreCandidates } from '../store/backups.js';
import { readRepositoryUuid, youngestRevision } from '../provision/svn.js';
import { RunControl } from './control.js';
import { copyEntries } from './files.js';
import { getBackup, updateBackup, type BackupRow } from '../store/backups.js';
import type { Manifest } from './manifest.js';
import { integrityCheck } from '../sys/sqlite.js';
import { testRestoreSpace } from './restore-plan.js';
import type { BackupService } from './engine.js';

/** A test restore of one backup into the backup volume's staging: checksums, svnadmin verify, integrity_check, identity. */
export async function testRestore(svc: BackupService, row: BackupRow): Promise<void> {
  const m: Manifest = svc.readManifest(row);
  const entries = testRestoreSpace(svc, row);
  fs.mkdirSync(svc.staging, { recursive: true });
  const stage = path.join(svc.staging, `test-b${row.id}-p${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
  const ctl = new RunControl();
  try {
    const got = await copyEntries(
      ctl,
      row.path!,
      stage,
      entries.filter((e) => e.rel !== 'manifest.json'),
    );
    const have = new Map(got.map((f) => [f.path, f]));
    for (const f of m.files) {
      const g = have.get(f.path);
      if (!g || g.sha256 !== f.sha256) throw new Error(`${f.path}: checksum mismatch or missing`);
    }
    if (m.project) {
      const svnStage = path.join(stage, 'svn');
      if (readRepositoryUuid(svnStage) !== m.project.repoUuid) throw new Error('repository UUID differs from the manifest');
      if (youngestRevision(svnStage) !== m.youngestRev) throw new Error('youngest revision differs from the manifest');
      await ctl.run('svnadmin', ['verify', '--quiet', svnStage]);
      if (fs.existsSync(path.join(stage, 'trac', 'db', 'trac.db'))) integrityCheck(path.join(stage, 'trac', 'db', 'trac.db'));
    } else integrityCheck(path.join(stage, 'keelson.db'));
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

/** The scheduled test restore of a rotating sample: the backups tested longest ago (or never) first. */
export async function testRestoreSample(svc: BackupService, n: number, alertFn: (id: number, reason: string) => Promise<void>) {
  const rows = testRestoreCandidates(svc.db, n);
  const out: { id: number; ok: boolean; error?: string; skipped?: string }[] = [];
  for (const r of rows) {
    try {
      await testRestore(svc, r);
      updateBackup(svc.db, r.id, { test_restored_at: nowIso(), test_restore_ok: 1 });
      out.push({ id: r.id, ok: true });
    } catch (e) {
      // Retention expired it meanwhile (its files went while they were read): not a damaged backup.
      if (getBackup(svc.db, r.id)?.state === 'expired') {
        out.push({ id: r.id, ok: false, skipped: 'expired while it was tested' });
        continue;
      }
      const msg = (e as Error).message;
      updateBackup(svc.db, r.id, { test_restored_at: nowIso(), test_restore_ok: 0 });
      out.push({ id: r.id, ok: false, error: msg });
      await alertFn(r.id, msg);
    }
  }
  return out;
}

import fs from 'node:fs';
import path from 'node:path';
import { nowIso } from '../store/db.js';
import { databasePages } from '../store/backups.js';
import type { ProjectRow } from '../store/projects.js';
import { readRepositoryUuid, youngestRevision } from '../provision/svn.js';
import type { RunControl } from './control.js';
import type { Need } from './space.js';
import { copyEntries, hashRest, listTree, needOf, type Entry, type FileRecord } from './files.js';
import { updateBackup, type BackupKind, type BackupRow } from '../store/backups.js';
import { finalDirOf, place, sqliteOnlineBackup, type Made, type Manifest } from './manifest.js';
import { integrityCheck } from '../sys/sqlite.js';
import { currentId, stagingOf } from './frame.js';
import type { BackupRun } from './run.js';

/** FSFS files that are never copied raw: commits in progress, and the rep-cache (svnadmin copies it consistently). */
const SVN_SKIP = /^db\/(transactions|txn-protorevs)\/.|^db\/rep-cache\.db(-journal|-wal|-shm)?$/;
/** Revision files are immutable once committed (renamed into db/revs): safe to share between backups. */
const IMMUTABLE = /^db\/revs\//;
export const TRAC_DB = 'db/trac.db';
const TRAC_SKIP = /^db\/trac\.db(-journal|-wal|-shm)?$|^log\/./;

/** What a project backup will copy, read before a byte is written. */
interface Survey {
  repo: string;
  env: string;
  kind: BackupKind;
  youngestAtStart: number;
  hasEnv: boolean;
  envEntries: Entry[];
  /** Where the repository copy starts from: the live repository, or the base backup's copy (incremental). */
  seedRoot: string;
  seedEntries: Entry[];
  baseManifest: Manifest | undefined;
  baseRev: number | null;
  /** Files shared (hard-linked) with the base instead of copied. */
  linked: (rel: string) => boolean;
  need: Need;
}

function surveyProject(svc: BackupRun, p: ProjectRow, kind: BackupKind, base: BackupRow | undefined): Survey {
  const repo = svc.repoDir(p.slug);
  const env = svc.envDir(p.slug);
  const liveUuid = readRepositoryUuid(repo);
  if (liveUuid !== p.repo_uuid) throw new Error(`repository ${repo} has UUID ${liveUuid} but project ${p.slug} records ${p.repo_uuid}`);
  // Read the youngest revision first: every revision file up to it is complete and immutable.
  const youngestAtStart = youngestRevision(repo);
  const liveEntries = listTree(repo, (r) => SVN_SKIP.test(r));
  const hasEnv = fs.existsSync(path.join(env, 'VERSION'));
  const envEntries = hasEnv ? listTree(env, (r) => TRAC_SKIP.test(r)) : [];
  const tracDbSize = hasEnv ? fs.statSync(path.join(env, TRAC_DB)).size : 0;

  let seedRoot = repo;
  let seedEntries: Entry[] = liveEntries;
  let baseManifest: Manifest | undefined;
  let baseRev: number | null = null;
  if (kind === 'incremental' && base?.path) {
    baseManifest = JSON.parse(fs.readFileSync(path.join(base.path, 'manifest.json'), 'utf8')) as Manifest;
    baseRev = baseManifest.youngestRev;
    seedRoot = path.join(base.path, 'svn');
    seedEntries = listTree(seedRoot);
  }
  const linked = (rel: string) => kind === 'incremental' && IMMUTABLE.test(rel);
  // Peak: the seed (linked revision files cost nothing), what svnadmin adds (the live files the
  // seed does not have), the Trac copy and its database, the manifest, and slack.
  const seedNames = new Set(seedEntries.map((e) => e.rel));
  const added = liveEntries.filter((e) => !seedNames.has(e.rel) || !linked(e.rel));
  const n1 = needOf(seedEntries, linked);
  const n2 = kind === 'incremental' ? needOf(added) : { bytes: 0, inodes: 0 };
  const n3 = needOf(envEntries);
  const need = {
    bytes: n1.bytes + n2.bytes + n3.bytes + Math.ceil(tracDbSize * 1.1) + 1024 * 1024,
    inodes: n1.inodes + n2.inodes + n3.inodes + 16,
  };
  return { repo, env, kind, youngestAtStart, hasEnv, envEntries, seedRoot, seedEntries, baseManifest, baseRev, linked, need };
}

/** Copies the repository (seed, then svnadmin's incremental hotcopy) and the Trac environment into the staging folder. */
async function copyProject(
  ctl: RunControl,
  s: Survey,
  stage: string,
  p: ProjectRow,
): Promise<{ records: Map<string, FileRecord>; youngest: number }> {
  const svnStage = path.join(stage, 'svn');
  const known = new Map((s.baseManifest?.files ?? []).map((f) => [f.path, f]));
  const records = new Map<string, FileRecord>();

  ctl.progress('copying repository');
  for (const r of await copyEntries(ctl, s.seedRoot, svnStage, s.seedEntries, {
    link: s.linked,
    knownHash: (rel, size) => {
      const k = known.get(`svn/${rel}`);
      return k && k.size === size ? k.sha256 : undefined;
    },
    // Checksums are taken from the finished copy while it is synced (the 'sync + checksums' phase).
    hash: () => false,
  })) {
    records.set(`svn/${r.path}`, { ...r, path: `svn/${r.path}` });
  }
  // svnadmin makes the copy consistent: revisions committed meanwhile, revision properties,
  // the rep-cache (trimmed to the copied revisions), db/current last.
  ctl.progress('svnadmin hotcopy --incremental');
  await ctl.run('svnadmin', ['hotcopy', '--incremental', '--quiet', s.repo, svnStage]);
  const youngest = youngestRevision(svnStage);
  const uuid = readRepositoryUuid(svnStage);
  if (uuid !== p.repo_uuid) throw new Error(`copied repository has UUID ${uuid}, not ${p.repo_uuid}`);
  if (youngest < s.youngestAtStart) throw new Error(`copied repository is at r${youngest}, older than r${s.youngestAtStart}`);

  if (s.hasEnv) {
    ctl.progress('copying Trac environment');
    const tracStage = path.join(stage, 'trac');
    await copyEntries(ctl, s.env, tracStage, s.envEntries, { hash: () => false });
    fs.mkdirSync(path.join(tracStage, 'db'), { recursive: true });
    await sqliteOnlineBackup(ctl, path.join(s.env, TRAC_DB), path.join(tracStage, TRAC_DB), true);
  }
  return { records, youngest };
}

/** Syncs and checksums the copy, then verifies it: svnadmin verify of the new revisions, integrity_check of Trac's database. */
async function verifyProject(
  svc: BackupRun,
  ctl: RunControl,
  s: Survey,
  stage: string,
  id: number,
  youngest: number,
  records: Map<string, FileRecord>,
) {
  // On disk before it counts: one syncfs of the backup volume (coreutils `sync -f`), not an fsync per
  // file. Meanwhile the sha256 of every file as it is in the backup (hard-linked revision files keep
  // their base's, same inode) is read from the page cache: the kernel's writeback and the hashing
  // overlap instead of following each other. The manifest is written only after both.
  ctl.progress('sync + checksums');
  await Promise.all([ctl.run('sync', ['-f', stage]), hashRest(ctl, stage, '', records)]);

  ctl.progress('verifying');
  updateBackup(svc.db, id, { state: 'verifying' });
  const from = s.baseRev !== null && s.baseRev < youngest ? s.baseRev + 1 : s.kind === 'full' ? 0 : youngest;
  await ctl.run('svnadmin', ['verify', '--quiet', '-r', `${from}:${youngest}`, path.join(stage, 'svn')]);
  if (s.hasEnv) integrityCheck(path.join(stage, 'trac', TRAC_DB));
}

/** One project's backup body: survey and plan, copy, verify, manifest, place. */
export async function projectBackup(
  svc: BackupRun,
  ctl: RunControl,
  plan: (need: Need) => void,
  p: ProjectRow,
  kind: BackupKind,
  base: BackupRow | undefined,
): Promise<Made> {
  const id = currentId(svc, p.id);
  const s = surveyProject(svc, p, kind, base);
  plan(s.need);
  const stage = stagingOf(svc, id);
  const { records, youngest } = await copyProject(ctl, s, stage, p);
  await verifyProject(svc, ctl, s, stage, id, youngest, records);

  const known = new Set((s.baseManifest?.files ?? []).map((f) => f.path));
  const files = [...records.values()].sort((a, b) => a.path.localeCompare(b.path));
  const linkedBytes = files
    .filter((f) => f.path.startsWith('svn/') && s.linked(f.path.slice(4)) && known.has(f.path))
    .reduce((a, f) => a + f.size, 0);
  const total = files.reduce((a, f) => a + f.size, 0);
  const manifest: Manifest = {
    format: 1,
    backupId: id,
    kind,
    baseId: base?.id ?? null,
    project: { id: p.id, slug: p.slug, repoUuid: p.repo_uuid },
    youngestRev: youngest,
    revFrom: kind === 'incremental' && s.baseRev !== null ? s.baseRev + 1 : 0,
    createdAt: nowIso(),
    files,
    totalBytes: total,
  };
  const finalDir = finalDirOf(svc.root, p.id, p.slug, id, kind);
  await place(ctl, stage, finalDir, manifest);
  return { manifest, finalDir, fresh: total - linkedBytes };
}

/** Keelson's own database: SQLite's online backup, integrity_check, checksums, manifest, place. */
export async function controlBackup(svc: BackupRun, ctl: RunControl, plan: (need: Need) => void): Promise<Made> {
  const id = currentId(svc, null);
  const { pages, pageSize } = databasePages(svc.db);
  plan({ bytes: Math.ceil(pages * pageSize * 1.2) + 1024 * 1024, inodes: 8 });
  const stage = stagingOf(svc, id);
  fs.mkdirSync(stage, { recursive: true });
  ctl.progress('copying database');
  const dest = path.join(stage, 'keelson.db');
  await svc.db.backup(dest, {
    progress: ({ totalPages, remainingPages }) => {
      ctl.throwIfAborted();
      ctl.bytesTotal = totalPages * pageSize;
      ctl.bytesDone = (totalPages - remainingPages) * pageSize;
      ctl.progress('copying database');
      return 256;
    },
  });
  ctl.progress('verifying');
  updateBackup(svc.db, id, { state: 'verifying' });
  integrityCheck(dest);
  const records = new Map<string, FileRecord>();
  await hashRest(ctl, stage, '', records);
  await ctl.run('sync', ['-f', stage]);
  const files = [...records.values()];
  const total = files.reduce((a, f) => a + f.size, 0);
  const manifest: Manifest = {
    format: 1,
    backupId: id,
    kind: 'full',
    baseId: null,
    project: null,
    youngestRev: null,
    revFrom: null,
    createdAt: nowIso(),
    files,
    totalBytes: total,
  };
  const finalDir = finalDirOf(svc.root, null, null, id, 'full');
  await place(ctl, stage, finalDir, manifest);
  return { manifest, finalDir, fresh: total };
}

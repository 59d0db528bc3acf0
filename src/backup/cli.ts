import type { Config } from '../config.js';
import { layout } from '../config.js';
import { openDatabase } from '../store/db.js';
import { BackupService } from './engine.js';
import { backupView } from './catalog.js';
import { backedUpSlugs, lastGood, listBackups, liveProjectId } from '../store/backups.js';
import { restoreBackup } from './restore.js';
import { parse, UsageError } from '../cli/args.js';
import { fmtBytes } from '../sys/bytes.js';
import type { Progress } from './control.js';

export const BACKUP_HELP = `  keelson backup run [SLUG] [--full] [--control]
                                  back up one project (or every project; --control: Keelson's own database) now
  keelson backup list [SLUG]      the catalog: state, size, duration, refusal reasons; age of each project's last good backup
  keelson backup restore ID (--to NEW-SLUG [--owner USER] | --in-place)
                                  restore a verified backup into a new project, or over its own project (suspended meanwhile)`;

/** Prints "phase  done / total  rate  ETA" on one line, at most 5 times a second. */
function progressPrinter(label: string) {
  const t0 = Date.now();
  let last = 0;
  const tty = process.stderr.isTTY;
  return (p: Progress) => {
    const now = Date.now();
    if (now - last < 200) return;
    last = now;
    const secs = (now - t0) / 1000;
    const rate = secs > 0 ? p.bytesDone / secs : 0;
    const eta = rate > 0 && p.bytesTotal > p.bytesDone ? `ETA ${Math.ceil((p.bytesTotal - p.bytesDone) / rate)} s` : '';
    const line = `${label}: ${p.phase}  ${fmtBytes(p.bytesDone)} of ${fmtBytes(p.bytesTotal)}  ${fmtBytes(rate)}/s  ${eta}`;
    process.stderr.write(tty ? `\r${line.padEnd(100)}` : `${line}\n`);
  };
}

type Values = { full?: boolean; control?: boolean; to?: string; owner?: string; 'in-place'?: boolean };

/** `keelson backup run [SLUG] [--full] [--control]`: in this process, with progress. */
async function runSub(svc: BackupService, slug: string | undefined, values: Values): Promise<number> {
  const kind = values.full ? 'full' : 'incremental';
  if (values.control) {
    const r = await svc.runControl({ trigger: 'cli', actor: 'cli', onProgress: progressPrinter('keelson database') });
    process.stderr.write('\n');
    console.log(JSON.stringify(r.backup ? backupView(r.backup) : r, null, 2));
    return r.backup?.state === 'verified' ? 0 : 1;
  }
  const slugs = slug ? [slug] : backedUpSlugs(svc.db);
  let bad = 0;
  for (const s of slugs) {
    const r = await svc.runProject(s, { kind, trigger: 'cli', actor: 'cli', onProgress: progressPrinter(s) });
    if (process.stderr.isTTY) process.stderr.write('\n');
    if (r.skipped !== undefined) console.log(`${s}: skipped: ${r.skipped}`);
    else {
      const b = r.backup;
      console.log(
        `${s}: backup #${b.id} ${b.kind} ${b.state}${b.reason ? `: ${b.reason}` : ''} (${fmtBytes(b.bytes)} written, ${((b.duration_ms ?? 0) / 1000).toFixed(1)} s)`,
      );
      if (b.state !== 'verified') bad++;
    }
  }
  return bad ? 1 : 0;
}

/** `keelson backup list [SLUG]`: the catalog as JSON. */
function listSub(svc: BackupService, slug: string | undefined): number {
  const pid = slug ? liveProjectId(svc.db, slug) : undefined;
  if (slug && pid === undefined) {
    console.error(`no project ${slug}`);
    return 1;
  }
  console.log(
    JSON.stringify({ backups: listBackups(svc.db, pid).map(backupView), projects: lastGood(svc.db, pid), volume: svc.volume() }, null, 2),
  );
  return 0;
}

/**
 * `keelson backup restore ID (--to NEW-SLUG [--owner USER] | --in-place)`: the operator's own
 * command runs the restore in this process, with progress, through the same function as the
 * API's restore job (restore-job.ts), under the same lease.
 */
async function restoreSub(svc: BackupService, idText: string | undefined, values: Values): Promise<number> {
  const id = Number(idText);
  if (!Number.isInteger(id) || id <= 0 || !values['in-place'] === !values.to) {
    throw new UsageError('', 'keelson backup restore ID (--to NEW-SLUG [--owner USER] | --in-place)');
  }
  const r = await restoreBackup(svc, id, {
    inPlace: !!values['in-place'],
    to: values.to,
    owner: values.owner,
    admin: true, // whoever runs the CLI on the host is the operator
    actor: 'cli',
    onProgress: progressPrinter(`restore #${id}`),
  });
  if (process.stderr.isTTY) process.stderr.write('\n');
  console.log(JSON.stringify(r, null, 2));
  console.error('A running worker republishes authz and credentials now (or run `keelson reconcile ' + r.project + '`).');
  return 0;
}

export async function backupCommand(cfg: Config, args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  // Parsed before anything is opened: a mistyped flag changes nothing.
  const p =
    sub === 'run'
      ? parse(rest, { full: { type: 'boolean' }, control: { type: 'boolean' } }, 'keelson backup run [SLUG] [--full] [--control]')
      : sub === 'list'
        ? parse(rest, {}, 'keelson backup list [SLUG]')
        : sub === 'restore'
          ? parse(
              rest,
              { to: { type: 'string' }, owner: { type: 'string' }, 'in-place': { type: 'boolean' } },
              'keelson backup restore ID (--to NEW-SLUG [--owner USER] | --in-place)',
            )
          : undefined;
  if (!p) throw new UsageError(sub ? `unknown subcommand ${sub}` : '', `\n${BACKUP_HELP}`);
  const values = p.values as Values;
  if (p.positionals.length > 1) throw new UsageError(`unexpected ${p.positionals[1]}`, `\n${BACKUP_HELP}`);
  const db = openDatabase(layout(cfg).db);
  const svc = new BackupService(db, cfg, cfg.backup);
  try {
    if (sub === 'run') return await runSub(svc, p.positionals[0], values);
    if (sub === 'list') return listSub(svc, p.positionals[0]);
    if (sub === 'restore') return await restoreSub(svc, p.positionals[0], values);
    return 2;
  } finally {
    db.close();
  }
}

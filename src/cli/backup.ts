import type { Config } from '../config.js';
import type { Ctx } from '../domain/context.js';
import { operator } from '../domain/context.js';
import * as backups from '../domain/backups.js';
import type { Progress } from '../backup/control.js';
import { openContext } from '../main/context.js';
import { parse, UsageError } from './args.js';
import { fmtBytes } from '../sys/bytes.js';

const CLI = operator('cli');

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
async function runSub(ctx: Ctx, slug: string | undefined, values: Values): Promise<number> {
  const r = await backups.backupNow(ctx, CLI, {
    slug,
    kind: values.full ? 'full' : 'incremental',
    control: values.control,
    onProgress: progressPrinter,
  });
  if (r.control) {
    process.stderr.write('\n');
    console.log(JSON.stringify(r.control, null, 2));
    return 'state' in r.control && r.control.state === 'verified' ? 0 : 1;
  }
  let bad = 0;
  for (const p of r.projects) {
    if (process.stderr.isTTY) process.stderr.write('\n');
    if (!p.backup) console.log(`${p.slug}: skipped: ${p.skipped}`);
    else {
      const b = p.backup;
      console.log(
        `${p.slug}: backup #${b.id} ${b.kind} ${b.state}${b.reason ? `: ${b.reason}` : ''} (${fmtBytes(b.bytes ?? 0)} written, ${((b.durationMs ?? 0) / 1000).toFixed(1)} s)`,
      );
      if (b.state !== 'verified') bad++;
    }
  }
  return bad ? 1 : 0;
}

/** `keelson backup list [SLUG]`: the catalog as JSON. */
async function listSub(ctx: Ctx, slug: string | undefined): Promise<number> {
  console.log(JSON.stringify(await backups.listBackups(ctx, CLI, slug), null, 2));
  return 0;
}

/**
 * `keelson backup restore ID (--to NEW-SLUG [--owner USER] | --in-place)`: the operator's own
 * command runs the restore in this process, with progress, through the same function as the
 * API's restore job (restore-job.ts), under the same lease.
 */
async function restoreSub(ctx: Ctx, idText: string | undefined, values: Values): Promise<number> {
  const id = restoreId(idText, values);
  // Whoever runs the CLI on the host is the operator.
  const r = await backups.restoreNow(ctx, CLI, id, {
    inPlace: !!values['in-place'],
    to: values.to,
    owner: values.owner,
    onProgress: progressPrinter(`restore #${id}`),
  });
  if (process.stderr.isTTY) process.stderr.write('\n');
  console.log(JSON.stringify(r, null, 2));
  console.error('A running worker republishes authz and credentials now (or run `keelson reconcile ' + r.project + '`).');
  return 0;
}

/** The backup id of `keelson backup restore`, with exactly one of --to and --in-place; else a UsageError. */
function restoreId(idText: string | undefined, values: Values): number {
  const id = Number(idText);
  if (!Number.isInteger(id) || id <= 0 || !values['in-place'] === !values.to) {
    throw new UsageError('', 'keelson backup restore ID (--to NEW-SLUG [--owner USER] | --in-place)');
  }
  return id;
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
  if (sub === 'restore') restoreId(p.positionals[0], values);
  const ctx = openContext(cfg);
  try {
    if (sub === 'run') return await runSub(ctx, p.positionals[0], values);
    if (sub === 'list') return await listSub(ctx, p.positionals[0]);
    if (sub === 'restore') return await restoreSub(ctx, p.positionals[0], values);
    return 2;
  } finally {
    ctx.close();
  }
}

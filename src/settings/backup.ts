import cron from 'node-cron';

/** Backup settings: every one is a KEELSON_BACKUP_* variable (see docs/configuration.md; the design is docs/backups.md). */
export interface BackupSettings {
  /** node-cron schedules; an empty string turns a schedule off. */
  incrementalCron: string;
  fullCron: string;
  testRestoreCron: string;
  controlCron: string;
  /** Reserve kept free on the backup volume: the larger of percent of its size and bytes. */
  reservePercent: number;
  reserveBytes: number;
  /** Same for inodes. */
  reserveInodesPercent: number;
  reserveInodes: number;
  /** When the backup volume is the live data volume, the reserve is multiplied by this (stricter floor). */
  sameDeviceFactor: number;
  /** Retention counts (applied only after a new backup verified). */
  keepDaily: number;
  keepWeekly: number;
  keepMonthly: number;
  /** After a refusal, scheduled runs of that scope wait this long (doubling per refusal in a row, at most a day). */
  backoffMs: number;
  /** Backups sampled by each scheduled test restore. */
  testRestoreSample: number;
  /** How often the space watcher samples statfs during a run. */
  watchMs: number;
  /** A POST of every refusal and failure goes here, if set. */
  alertWebhook: string | undefined;
  /** Bytes the backups may hold in total (KEELSON_BACKUP_BUDGET; 0: no budget). */
  budgetBytes: number;
  /** A scheduled run that does not fit the budget first expires the oldest backups the rules allow (KEELSON_BACKUP_BUDGET_RETENTION, off by default). */
  budgetRetention: boolean;
}

function num(env: NodeJS.ProcessEnv, name: string, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n > max) throw new Error(`${name} must be a number from 0 to ${max}, got ${JSON.stringify(v)}`);
  return n;
}

/** Sizes: plain bytes or with a K/M/G/T suffix (powers of 1024), e.g. "2G". */
export function parseBytes(name: string, v: string): number {
  const m = v.trim().match(/^(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?$/i);
  if (!m) throw new Error(`${name} must be a size like 2147483648, 512M or 2G, got ${JSON.stringify(v)}`);
  const mult = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'];
  return Math.round(Number(m[1]) * mult);
}

function bytes(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const v = env[name];
  return v === undefined || v === '' ? fallback : parseBytes(name, v);
}

function flag(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const v = (env[name] ?? '').trim().toLowerCase();
  if (v === '') return fallback;
  if (['on', 'true', 'yes', '1'].includes(v)) return true;
  if (['off', 'false', 'no', '0'].includes(v)) return false;
  throw new Error(`${name} must be on or off, got ${JSON.stringify(env[name])}`);
}

function schedule(env: NodeJS.ProcessEnv, name: string, fallback: string): string {
  const v = env[name] ?? fallback;
  if (v !== '' && !cron.validate(v)) throw new Error(`${name} is not a valid cron expression: ${JSON.stringify(v)}`);
  return v;
}

export function loadBackupSettings(env: NodeJS.ProcessEnv = process.env): BackupSettings {
  const webhook = env.KEELSON_ALERT_WEBHOOK || undefined;
  if (webhook && !/^https?:\/\/\S+$/.test(webhook))
    throw new Error(`KEELSON_ALERT_WEBHOOK must be an http(s) URL, got ${JSON.stringify(webhook)}`);
  return {
    incrementalCron: schedule(env, 'KEELSON_BACKUP_INCREMENTAL_CRON', '40 1 * * *'),
    fullCron: schedule(env, 'KEELSON_BACKUP_FULL_CRON', '40 2 * * 0'),
    testRestoreCron: schedule(env, 'KEELSON_BACKUP_TEST_RESTORE_CRON', '10 5 * * *'),
    controlCron: schedule(env, 'KEELSON_BACKUP_CONTROL_CRON', '20 1 * * *'),
    reservePercent: num(env, 'KEELSON_BACKUP_RESERVE_PERCENT', 10, 100),
    reserveBytes: bytes(env, 'KEELSON_BACKUP_RESERVE_BYTES', 2 * 1024 ** 3),
    reserveInodesPercent: num(env, 'KEELSON_BACKUP_RESERVE_INODES_PERCENT', 10, 100),
    reserveInodes: num(env, 'KEELSON_BACKUP_RESERVE_INODES', 100_000),
    sameDeviceFactor: Math.max(1, num(env, 'KEELSON_BACKUP_SAME_DEVICE_FACTOR', 2, 100)),
    keepDaily: num(env, 'KEELSON_BACKUP_KEEP_DAILY', 7, 10_000),
    keepWeekly: num(env, 'KEELSON_BACKUP_KEEP_WEEKLY', 4, 10_000),
    keepMonthly: num(env, 'KEELSON_BACKUP_KEEP_MONTHLY', 6, 10_000),
    backoffMs: num(env, 'KEELSON_BACKUP_BACKOFF_SECONDS', 3600) * 1000,
    testRestoreSample: num(env, 'KEELSON_BACKUP_TEST_RESTORE_SAMPLE', 2, 1000),
    watchMs: Math.max(10, num(env, 'KEELSON_BACKUP_WATCH_MS', 200, 60_000)),
    alertWebhook: webhook,
    budgetBytes: bytes(env, 'KEELSON_BACKUP_BUDGET', 0),
    budgetRetention: flag(env, 'KEELSON_BACKUP_BUDGET_RETENTION', false),
  };
}

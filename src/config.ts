import path from 'node:path';
import { loadBackupSettings, type BackupSettings } from './settings/backup.js';
import { loadTracLimits, type TracLimits } from './settings/trac.js';

/** Every setting has a KEELSON_* variable; the defaults make embedded mode work unconfigured. */
export interface Config {
  dataDir: string;
  backupDir: string;
  /** Keelson's database (KEELSON_DB_FILE; default <data>/keelson.db). With an API user, in a directory of its own. */
  dbFile: string;
  /**
   * The user the API and web UI run as when they run apart from the worker (KEELSON_API_USER; the
   * production install's keelson-web.service): the root side hands it the database's directory and
   * Apache's credentials, the only files the API writes. null: one process does everything.
   */
  apiUser: string | null;
  httpHost: string;
  httpPort: number;
  apacheHost: string;
  apachePort: number;
  /** Base URL users see in checkout and Trac links (the private Apache by default). */
  publicUrl: string;
  /**
   * Apache terminates TLS itself on KEELSON_APACHE_PORT with this certificate (the full chain, e.g.
   * certbot's fullchain.pem) and key (KEELSON_TLS_CERT, KEELSON_TLS_KEY); null: plain HTTP (on
   * loopback, or behind a TLS proxy).
   */
  tls: { cert: string; key: string } | null;
  /** With TLS: a plain-HTTP port whose every request is redirected to the public https URL (KEELSON_APACHE_HTTP_PORT); null: none. */
  apacheHttpPort: number | null;
  /** Apache's request workers (threads; rounded up to whole processes of 25). */
  apacheWorkers: number;
  /** Seconds any one read or write of Apache's may wait (its `Timeout`). */
  apacheTimeout: number;
  /** The system user Apache's workers run as; it must reach every file Apache serves. */
  apacheUser: string;
  apacheGroup: string;
  /**
   * The system user the Trac daemon and Keelson's Trac helper run as (when started as root). It
   * writes only its environments' db/ and attachment folders and reads repositories; it cannot
   * read the credentials database or Keelson's own, nor write any repository or configuration.
   */
  tracUser: string;
  tracGroup: string;
  /** How long one run of each job kind may take before it is aborted and retried (KEELSON_JOB_TIMEOUT_*). */
  jobTimeouts: { reconcile: number; credentials: number; backup: number; restore: number };
  /** What one request, project and process may take of the shared Trac daemon (KEELSON_TRAC_*). */
  trac: TracLimits;
  /** Interpreter that has Trac importable (Debian's, not whatever python3 is first on PATH). */
  python: string;
  workerConcurrency: number;
  /** Backups: schedules, space reserve, retention, alert webhook (KEELSON_BACKUP_*, src/settings/backup.ts). */
  backup: BackupSettings;
  /** Web UI: a session ends after this many idle seconds. */
  sessionIdleSeconds: number;
  /** Web UI: cookies marked Secure (true when the public URL is https, or KEELSON_SECURE_COOKIES=1). */
  secureCookies: boolean;
  /**
   * Which proxies in front of the API and web UI are trusted to name the client (Express's
   * `trust proxy`: false, a hop count, or addresses/`loopback`); per-address throttles then use
   * X-Forwarded-For. Without it, behind a proxy every visitor shares the proxy's address.
   */
  trustProxy: boolean | number | string;
  /**
   * Web UI sign-in throttles (src/domain/signin.ts). Failed sign-ins for one account from one address
   * (KEELSON_LOGIN_LIMIT_ACCOUNT) and from one address for any account: over the limit, that address
   * gets 429. No limit locks an account for everyone: its failures from all addresses only slow
   * every attempt for it down (loginSlowdown).
   */
  loginPerAccountAddress: { max: number; windowSeconds: number };
  loginPerAddress: { max: number; windowSeconds: number };
  /**
   * Once an account has `after` failed sign-ins (from all addresses) in `windowSeconds`, every
   * attempt for it waits `firstDelayMs` before it is answered, doubling with each further failure,
   * at most `maxDelayMs` (0: never slowed).
   */
  loginSlowdown: { after: number; windowSeconds: number; firstDelayMs: number; maxDelayMs: number };
  signupPerAddress: { max: number; windowSeconds: number };
  /**
   * Every sign-in attempt, right or wrong: per address (KEELSON_LOGIN_ATTEMPTS_ADDRESS) and per
   * (account, address) (KEELSON_LOGIN_ATTEMPTS_ACCOUNT); over either, 429 for that address.
   */
  loginAttemptsPerAddress: { max: number; windowSeconds: number };
  loginAttemptsPerAccount: { max: number; windowSeconds: number };
  /** Password hashes (scrypt) computed at once off the main thread, and how many may wait (KEELSON_HASH_*). */
  hashConcurrency: number;
  hashQueue: number;
  /** Live web sessions one user may hold; a new sign-in ends the oldest beyond it (KEELSON_SESSIONS_PER_USER). */
  sessionsPerUser: number;
  /** Changes (members, path rules, settings) per acting user and per project (KEELSON_MUTATION_LIMIT_*); over it, 429. */
  mutationsPerUser: { max: number; windowSeconds: number };
  mutationsPerProject: { max: number; windowSeconds: number };
  /** Days audit rows are kept (KEELSON_AUDIT_RETENTION_DAYS). */
  auditRetentionDays: number;
  /** Permission-history versions kept per project besides the published one (KEELSON_PERMISSION_HISTORY_KEEP). */
  permissionHistoryKeep: number;
  /** Largest request body Apache accepts (one file of a commit, one Trac upload) (KEELSON_MAX_REQUEST_BYTES). */
  maxRequestBytes: number;
  /** node-cron schedule of the nightly full storage measure of every project (KEELSON_USAGE_CRON). */
  usageCron: string;
  /** node-cron schedule of the disk usage sampler (operator chart). */
  diskSampleCron: string;
}

/** "MAX/SECONDS", e.g. "5/900". */
function rate(name: string, value: string | undefined, max: number, windowSeconds: number) {
  if (value === undefined || value === '') return { max, windowSeconds };
  const m = value.match(/^(\d{1,6})\/(\d{1,7})$/);
  // Windows are at most a day: older throttle rows are swept (src/domain/retention.ts).
  if (!m || Number(m[2]) > 86_400 || Number(m[2]) < 1)
    throw new Error(`${name} must look like MAX/SECONDS with 1-86400 seconds (e.g. 5/900), got ${JSON.stringify(value)}`);
  return { max: Number(m[1]), windowSeconds: Number(m[2]) };
}

/** "FIRST_MS/MAX_MS", e.g. "1000/8000": the sign-in slow-down's first and longest delay. */
function delays(name: string, value: string | undefined, firstDelayMs: number, maxDelayMs: number) {
  if (value === undefined || value === '') return { firstDelayMs, maxDelayMs };
  const m = value.match(/^(\d{1,5})\/(\d{1,5})$/);
  // A request held much longer than this meets proxies' and browsers' timeouts instead.
  if (!m || Number(m[2]) > 30_000 || Number(m[1]) > Number(m[2]))
    throw new Error(
      `${name} must look like FIRST_MS/MAX_MS with FIRST_MS <= MAX_MS <= 30000 (e.g. 1000/8000), got ${JSON.stringify(value)}`,
    );
  return { firstDelayMs: Number(m[1]), maxDelayMs: Number(m[2]) };
}

function int(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new Error(`${name} must be a whole number from 0 to 65535, got ${JSON.stringify(value)}`);
  }
  return n;
}

/** A byte count (digits, or with K/M/G/T for powers of 1024), from 1 MiB to 2 GiB. */
function bytes(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const m = value.match(/^(\d{1,15})([KMGT]?)$/i);
  const n = m ? Number(m[1]) * 1024 ** ' KMGT'.indexOf((m[2] || ' ').toUpperCase()) : NaN;
  // Apache's LimitRequestBody takes at most 2 GiB.
  if (!Number.isSafeInteger(n) || n < 1024 ** 2 || n > 2 * 1024 ** 3)
    throw new Error(`${name} must be a byte count from 1M to 2G (e.g. 536870912 or 512M), got ${JSON.stringify(value)}`);
  return n;
}

/** Whole seconds, 1 to a week. */
function seconds(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 7 * 86_400)
    throw new Error(`${name} must be whole seconds from 1 to 604800, got ${JSON.stringify(value)}`);
  return n;
}

/**
 * The data directory ends up inside generated files (Apache config, hook scripts) and in the
 * file:// URLs node-svn-ultimate passes through a shell, so it is held to a plain character set.
 */
export const SAFE_PATH = /^\/[A-Za-z0-9_./-]*$/;

/** KEELSON_TLS_CERT and KEELSON_TLS_KEY: both or neither, each a plain absolute path (it goes into Apache's configuration). */
function tlsFiles(env: NodeJS.ProcessEnv): Config['tls'] {
  const cert = env.KEELSON_TLS_CERT || '';
  const key = env.KEELSON_TLS_KEY || '';
  if (!cert && !key) return null;
  if (!cert || !key)
    throw new Error('KEELSON_TLS_CERT and KEELSON_TLS_KEY go together: set both (certificate chain and its key) or neither');
  for (const [name, p] of [
    ['KEELSON_TLS_CERT', cert],
    ['KEELSON_TLS_KEY', key],
  ] as const)
    if (!SAFE_PATH.test(p)) throw new Error(`${name} (${p}) must be an absolute path of letters, digits, '_', '.', '-' and '/'`);
  return { cert, key };
}

/** The URL where users reach Subversion and Trac: scheme, host, optional port, optional path. */
export const PUBLIC_URL_RE = /^https?:\/\/[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::\d{1,5})?(?:\/[A-Za-z0-9._~-]+)*$/;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const dataDir = path.resolve(env.KEELSON_DATA_DIR || './data');
  const backupDir = path.resolve(env.KEELSON_BACKUP_DIR || path.join(dataDir, 'backups'));
  const dbFile = path.resolve(env.KEELSON_DB_FILE || path.join(dataDir, 'keelson.db'));
  for (const [name, p] of [
    ['KEELSON_DATA_DIR', dataDir],
    ['KEELSON_BACKUP_DIR', backupDir],
    ['KEELSON_DB_FILE', dbFile],
  ] as const) {
    if (!SAFE_PATH.test(p)) {
      throw new Error(`${name} (${p}) may hold only letters, digits, '_', '.', '-' and '/'`);
    }
  }
  const httpHost = env.KEELSON_HTTP_HOST || '127.0.0.1';
  const apacheHost = env.KEELSON_APACHE_HOST || '127.0.0.1';
  const httpPort = int('KEELSON_HTTP_PORT', env.KEELSON_HTTP_PORT, 8480);
  const apachePort = int('KEELSON_APACHE_PORT', env.KEELSON_APACHE_PORT, 8481);
  const tls = tlsFiles(env);
  const apacheHttpPort = env.KEELSON_APACHE_HTTP_PORT ? int('KEELSON_APACHE_HTTP_PORT', env.KEELSON_APACHE_HTTP_PORT, 0) : null;
  if (apacheHttpPort !== null && !tls)
    throw new Error('KEELSON_APACHE_HTTP_PORT redirects to HTTPS: it needs KEELSON_TLS_CERT and KEELSON_TLS_KEY');
  const publicUrl = (env.KEELSON_PUBLIC_URL || `${tls ? 'https' : 'http'}://${apacheHost}:${apachePort}`).replace(/\/+$/, '');
  // It becomes a pattern and a replacement in Apache's configuration, and every link Keelson shows.
  if (!PUBLIC_URL_RE.test(publicUrl))
    throw new Error(
      `KEELSON_PUBLIC_URL must look like https://code.example.org or https://example.org:8443/code (a host name or IPv4 address, an optional port and path of letters, digits, '.', '_', '-', '/'), got ${JSON.stringify(publicUrl)}`,
    );
  const apiUser = env.KEELSON_API_USER || null;
  if (apiUser !== null) {
    if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(apiUser))
      throw new Error(`KEELSON_API_USER must be a system user name, got ${JSON.stringify(apiUser)}`);
    // The API user's group is given the database's directory: one of its own, just below the
    // data directory, never the data directory itself nor one of Keelson's.
    const rel = path.relative(dataDir, path.dirname(dbFile));
    const own = ['svn', 'trac', 'staging', 'auth', 'apache', 'spool', 'quota', 'cache', 'lib', 'trac-shared', 'run', 'backups'];
    if (!rel || rel.includes('/') || rel.startsWith('.') || own.includes(rel))
      throw new Error(
        `KEELSON_API_USER needs KEELSON_DB_FILE in a directory of its own inside the data directory (e.g. ${dataDir}/db/keelson.db)`,
      );
  }
  return {
    dataDir,
    backupDir,
    dbFile,
    apiUser,
    httpHost,
    httpPort,
    apacheHost,
    apachePort,
    publicUrl,
    tls,
    apacheHttpPort,
    apacheWorkers: int('KEELSON_APACHE_WORKERS', env.KEELSON_APACHE_WORKERS, 200) || 200,
    apacheTimeout: int('KEELSON_APACHE_TIMEOUT', env.KEELSON_APACHE_TIMEOUT, 60) || 60,
    apacheUser: env.KEELSON_APACHE_USER || 'www-data',
    apacheGroup: env.KEELSON_APACHE_GROUP || env.KEELSON_APACHE_USER || 'www-data',
    tracUser: env.KEELSON_TRAC_USER || 'keelson-trac',
    tracGroup: env.KEELSON_TRAC_GROUP || env.KEELSON_TRAC_USER || 'keelson-trac',
    jobTimeouts: {
      reconcile: seconds('KEELSON_JOB_TIMEOUT_RECONCILE', env.KEELSON_JOB_TIMEOUT_RECONCILE, 600) * 1000,
      credentials: seconds('KEELSON_JOB_TIMEOUT_CREDENTIALS', env.KEELSON_JOB_TIMEOUT_CREDENTIALS, 300) * 1000,
      backup: seconds('KEELSON_JOB_TIMEOUT_BACKUP', env.KEELSON_JOB_TIMEOUT_BACKUP, 6 * 3600) * 1000,
      // A restore is not retried: at its timeout it stops, puts back what it moved aside, and fails.
      restore: seconds('KEELSON_JOB_TIMEOUT_RESTORE', env.KEELSON_JOB_TIMEOUT_RESTORE, 3600) * 1000,
    },
    trac: loadTracLimits(env),
    python: env.KEELSON_PYTHON || '/usr/bin/python3',
    workerConcurrency: int('KEELSON_WORKER_CONCURRENCY', env.KEELSON_WORKER_CONCURRENCY, 2) || 1,
    backup: loadBackupSettings(env),
    sessionIdleSeconds: Number(env.KEELSON_SESSION_IDLE_SECONDS) > 0 ? Number(env.KEELSON_SESSION_IDLE_SECONDS) : 12 * 3600,
    secureCookies: env.KEELSON_SECURE_COOKIES ? env.KEELSON_SECURE_COOKIES === '1' : publicUrl.startsWith('https:'),
    // The name is kept from when it limited the account as a whole; it now counts per (account, address).
    loginPerAccountAddress: rate('KEELSON_LOGIN_LIMIT_ACCOUNT', env.KEELSON_LOGIN_LIMIT_ACCOUNT, 5, 900),
    loginPerAddress: rate('KEELSON_LOGIN_LIMIT_ADDRESS', env.KEELSON_LOGIN_LIMIT_ADDRESS, 20, 900),
    loginSlowdown: loginSlowdown(env),
    signupPerAddress: rate('KEELSON_SIGNUP_LIMIT_ADDRESS', env.KEELSON_SIGNUP_LIMIT_ADDRESS, 10, 3600),
    loginAttemptsPerAddress: rate('KEELSON_LOGIN_ATTEMPTS_ADDRESS', env.KEELSON_LOGIN_ATTEMPTS_ADDRESS, 30, 60),
    loginAttemptsPerAccount: rate('KEELSON_LOGIN_ATTEMPTS_ACCOUNT', env.KEELSON_LOGIN_ATTEMPTS_ACCOUNT, 10, 60),
    hashConcurrency: int('KEELSON_HASH_CONCURRENCY', env.KEELSON_HASH_CONCURRENCY, 2) || 1,
    hashQueue: int('KEELSON_HASH_QUEUE', env.KEELSON_HASH_QUEUE, 32),
    sessionsPerUser: int('KEELSON_SESSIONS_PER_USER', env.KEELSON_SESSIONS_PER_USER, 10) || 1,
    mutationsPerUser: rate('KEELSON_MUTATION_LIMIT_USER', env.KEELSON_MUTATION_LIMIT_USER, 120, 60),
    mutationsPerProject: rate('KEELSON_MUTATION_LIMIT_PROJECT', env.KEELSON_MUTATION_LIMIT_PROJECT, 60, 60),
    auditRetentionDays: int('KEELSON_AUDIT_RETENTION_DAYS', env.KEELSON_AUDIT_RETENTION_DAYS, 365) || 1,
    permissionHistoryKeep: int('KEELSON_PERMISSION_HISTORY_KEEP', env.KEELSON_PERMISSION_HISTORY_KEEP, 100) || 1,
    maxRequestBytes: bytes('KEELSON_MAX_REQUEST_BYTES', env.KEELSON_MAX_REQUEST_BYTES, 512 * 1024 ** 2),
    usageCron: env.KEELSON_USAGE_CRON || '47 3 * * *',
    diskSampleCron: env.KEELSON_DISK_SAMPLE_CRON || '*/5 * * * *',
    trustProxy: trustProxy(env.KEELSON_TRUST_PROXY),
  };
}

function loginSlowdown(env: NodeJS.ProcessEnv): Config['loginSlowdown'] {
  const { max: after, windowSeconds } = rate('KEELSON_LOGIN_SLOWDOWN_ACCOUNT', env.KEELSON_LOGIN_SLOWDOWN_ACCOUNT, 10, 900);
  return { after, windowSeconds, ...delays('KEELSON_LOGIN_SLOWDOWN_DELAY', env.KEELSON_LOGIN_SLOWDOWN_DELAY, 1000, 8000) };
}

function trustProxy(v: string | undefined): boolean | number | string {
  if (!v || v === 'false' || v === '0') return false;
  if (/^[1-9]$/.test(v)) return Number(v);
  if (!/^[A-Za-z0-9.:/, ]+$/.test(v))
    throw new Error(`KEELSON_TRUST_PROXY must be a hop count, "loopback" or addresses, got ${JSON.stringify(v)}`);
  return v;
}

/** Where everything lives under the data directory. One place, so nothing guesses a path. */
export function layout(cfg: Config) {
  const d = cfg.dataDir;
  return {
    db: cfg.dbFile,
    /** The API process, running apart from the worker, touches a file here to wake it (KEELSON_API_USER). */
    wakeDir: path.join(d, 'run', 'wake'),
    svnRoot: path.join(d, 'svn'),
    tracRoot: path.join(d, 'trac'),
    /** Half-made repositories and environments; renamed into place when complete, swept at start. */
    staging: path.join(d, 'staging'),
    /** The credentials database Apache reads through mod_authn_dbd. */
    authDir: path.join(d, 'auth'),
    authDb: path.join(d, 'auth', 'credentials.db'),
    apacheDir: path.join(d, 'apache'),
    /** Post-commit hooks drop "<slug>.<rev>" files here for the worker to tell Trac. */
    commitSpool: path.join(d, 'spool', 'commits'),
    /** Each project's storage limit and usage for its pre-commit hook and Trac (src/files/quota/quota.ts). */
    quotaDir: path.join(d, 'quota'),
    cacheDir: path.join(d, 'cache'),
    /** The Trac daemon's writable scratch (Python egg cache): owned by the Trac user. */
    tracCache: path.join(d, 'cache', 'trac-run'),
    /** Keelson's Python code for Trac (guard, helper), copied here so the Trac user can read it. */
    libDir: path.join(d, 'lib'),
    tracInherit: path.join(d, 'trac-shared', 'trac.ini'),
    tracShared: path.join(d, 'trac-shared'),
  };
}
export type Layout = ReturnType<typeof layout>;

/**
 * What one request, one project and one process may take of the Trac daemon every tenant shares
 * (KEELSON_TRAC_*). Rendered into Apache's configuration (daemon groups, memory), trac.wsgi (the
 * guard's limits) and the shared trac.ini (Trac's own limits); the table in docs/configuration.md
 * lists each with its default.
 */
export interface TracLimits {
  /** Seconds a report's SQL may run before SQLite interrupts it (reports are owners' SQL). */
  reportSeconds: number;
  /** Rows and bytes one report may return, CSV and `?max=` included. */
  reportRows: number;
  reportBytes: number;
  /** Requests one signed-in user (in any project), and one project's anonymous visitors, may have in flight per daemon process. */
  userRequests: number;
  anonProjectRequests: number;
  /** Requests one user may have in flight per process of the heavy group (signed-in reports, changesets, browser, log, timeline, search). */
  heavyRequests: number;
  /** CPU budget of each payer (a user, or a project's anonymous visitors) per daemon process: seconds per second, and at once. */
  cpuShare: number;
  cpuBurst: number;
  /** Daemon processes and threads: the signed-in group, the anonymous group (nice 19) and the signed-in heavy group (nice 10). */
  processes: number;
  threads: number;
  anonProcesses: number;
  anonThreads: number;
  heavyProcesses: number;
  heavyThreads: number;
  /** Data a daemon process may allocate (RLIMIT_DATA through mod_wsgi's memory-limit): past it, allocations fail. */
  processMemoryBytes: number;
  /** A request running longer than this makes mod_wsgi restart its process (the last resort). */
  requestTimeoutSeconds: number;
  /** Seconds one syntax highlighting may take in its worker process before it is killed. */
  highlightSeconds: number;
  /** Changed files whose diffs a changeset page shows inline, and their total size ([changeset] in trac.ini). */
  maxDiffFiles: number;
  maxDiffBytes: number;
  /** Changed paths a changeset page, diff or zip lists at most (Trac lists all: 20,000 paths cost 330 MB). */
  changesetPaths: number;
  /** Entries of one folder the source browser lists, and revisions one log page shows, at most. */
  folderEntries: number;
  logEntries: number;
}

function positive(name: string, raw: string | undefined, dflt: number): number {
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, not ${JSON.stringify(raw)}`);
  return n;
}

const MiB = 1024 * 1024;

export function loadTracLimits(env: NodeJS.ProcessEnv): TracLimits {
  const int = (name: string, dflt: number) => {
    const n = Math.floor(positive(name, env[name], dflt));
    if (n < 1) throw new Error(`${name} must be a whole number of at least 1, not ${JSON.stringify(env[name])}`);
    return n;
  };
  return {
    reportSeconds: int('KEELSON_TRAC_REPORT_SECONDS', 10),
    reportRows: int('KEELSON_TRAC_REPORT_ROWS', 10_000),
    reportBytes: int('KEELSON_TRAC_REPORT_BYTES', 16 * MiB),
    userRequests: int('KEELSON_TRAC_USER_REQUESTS', 3),
    cpuShare: positive('KEELSON_TRAC_CPU_SHARE', env.KEELSON_TRAC_CPU_SHARE, 0.1),
    cpuBurst: positive('KEELSON_TRAC_CPU_BURST', env.KEELSON_TRAC_CPU_BURST, 3),
    anonProjectRequests: int('KEELSON_TRAC_ANON_PROJECT_REQUESTS', 2),
    heavyRequests: int('KEELSON_TRAC_HEAVY_REQUESTS', 2),
    processes: int('KEELSON_TRAC_PROCESSES', 2),
    threads: int('KEELSON_TRAC_THREADS', 10),
    anonProcesses: int('KEELSON_TRAC_ANON_PROCESSES', 2),
    anonThreads: int('KEELSON_TRAC_ANON_THREADS', 6),
    heavyProcesses: int('KEELSON_TRAC_HEAVY_PROCESSES', 2),
    heavyThreads: int('KEELSON_TRAC_HEAVY_THREADS', 6),
    processMemoryBytes: int('KEELSON_TRAC_PROCESS_MEMORY', 1024 * MiB),
    requestTimeoutSeconds: int('KEELSON_TRAC_REQUEST_TIMEOUT', 60),
    highlightSeconds: positive('KEELSON_TRAC_HIGHLIGHT_SECONDS', env.KEELSON_TRAC_HIGHLIGHT_SECONDS, 2),
    maxDiffFiles: int('KEELSON_TRAC_MAX_DIFF_FILES', 200),
    maxDiffBytes: int('KEELSON_TRAC_MAX_DIFF_BYTES', 2 * MiB),
    changesetPaths: int('KEELSON_TRAC_CHANGESET_PATHS', 1000),
    folderEntries: int('KEELSON_TRAC_FOLDER_ENTRIES', 1000),
    logEntries: int('KEELSON_TRAC_LOG_ENTRIES', 1000),
  };
}

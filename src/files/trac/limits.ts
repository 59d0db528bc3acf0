/**
 * What one request, one project and one process may take of the Trac daemon every tenant shares
 * (KEELSON_TRAC_*). Rendered into Apache's configuration (daemon groups, memory), trac.wsgi (the
 * guard's limits) and the shared trac.ini (Trac's own limits); the README's configuration table
 * lists each with its default.
 */
export interface TracLimits {
  /** Seconds a report's SQL may run before SQLite interrupts it (reports are owners' SQL). */
  reportSeconds: number;
  /** Rows and bytes one report may return, CSV and `?max=` included. */
  reportRows: number;
  reportBytes: number;
  /** Requests one project may have in flight per daemon process: signed-in, and anonymous. */
  projectRequests: number;
  anonProjectRequests: number;
  /** Daemon processes and threads: the signed-in group, and the anonymous group (at lower CPU priority). */
  processes: number;
  threads: number;
  anonProcesses: number;
  anonThreads: number;
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
}

function positive(name: string, raw: string | undefined, dflt: number): number {
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, not ${JSON.stringify(raw)}`);
  return n;
}

const MiB = 1024 * 1024;

export function loadTracLimits(env: NodeJS.ProcessEnv): TracLimits {
  const int = (name: string, dflt: number) => Math.floor(positive(name, env[name], dflt));
  return {
    reportSeconds: int('KEELSON_TRAC_REPORT_SECONDS', 10),
    reportRows: int('KEELSON_TRAC_REPORT_ROWS', 10_000),
    reportBytes: int('KEELSON_TRAC_REPORT_BYTES', 16 * MiB),
    projectRequests: int('KEELSON_TRAC_PROJECT_REQUESTS', 4),
    anonProjectRequests: int('KEELSON_TRAC_ANON_PROJECT_REQUESTS', 2),
    processes: int('KEELSON_TRAC_PROCESSES', 2),
    threads: int('KEELSON_TRAC_THREADS', 10),
    anonProcesses: int('KEELSON_TRAC_ANON_PROCESSES', 2),
    anonThreads: int('KEELSON_TRAC_ANON_THREADS', 6),
    processMemoryBytes: int('KEELSON_TRAC_PROCESS_MEMORY', 1024 * MiB),
    requestTimeoutSeconds: int('KEELSON_TRAC_REQUEST_TIMEOUT', 60),
    highlightSeconds: positive('KEELSON_TRAC_HIGHLIGHT_SECONDS', env.KEELSON_TRAC_HIGHLIGHT_SECONDS, 2),
    maxDiffFiles: int('KEELSON_TRAC_MAX_DIFF_FILES', 200),
    maxDiffBytes: int('KEELSON_TRAC_MAX_DIFF_BYTES', 2 * MiB),
    changesetPaths: int('KEELSON_TRAC_CHANGESET_PATHS', 1000),
  };
}

/**
 * SQLite files as files: checking a copy and copying a live database, for any SQLite file (a
 * backup's copy of trac.db or of Keelson's database), never queries of Keelson's data.
 */
import Database from 'better-sqlite3';

/** PRAGMA integrity_check on a copy; throws with SQLite's answer unless it is "ok". */
export function integrityCheck(file: string): void {
  const d = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const rows = d.pragma('integrity_check') as { integrity_check: string }[];
    const msg = rows.map((r) => r.integrity_check).join('; ');
    if (msg !== 'ok') throw new Error(`integrity_check of ${file}: ${msg.slice(0, 500)}`);
  } finally {
    d.close();
  }
}

/** SQLite's online backup API: a consistent copy while another process keeps writing. `step` may throw to stop it. */
export async function sqliteOnlineBackup(src: string, dest: string, readonly: boolean, step: () => void): Promise<void> {
  const d = new Database(src, { readonly, fileMustExist: true });
  try {
    d.pragma('busy_timeout = 5000');
    await d.backup(dest, {
      progress: () => {
        step();
        return 256;
      },
    });
  } finally {
    d.close();
  }
}

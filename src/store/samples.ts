/** Disk samples: each volume's total and free bytes over time (the operator's chart). */
import type { DB } from './db.js';

/** One sample per volume at `at`; 30 days of history is what the chart shows, older rows go. */
export function insertDiskSamples(
  db: DB,
  at: number,
  samples: { volume: 'data' | 'backup'; path: string; totalBytes: number; freeBytes: number }[],
): void {
  const ins = db.prepare(`INSERT OR REPLACE INTO disk_samples (at, volume, path, total_bytes, free_bytes) VALUES (?, ?, ?, ?, ?)`);
  db.transaction(() => {
    for (const x of samples) ins.run(at, x.volume, x.path, x.totalBytes, x.freeBytes);
    db.prepare(`DELETE FROM disk_samples WHERE at < ?`).run(at - 30 * 86_400_000);
  })();
}

export interface DiskSample {
  at: number;
  volume: 'data' | 'backup';
  path: string;
  total_bytes: number;
  free_bytes: number;
}
export function diskSamples(db: DB, sinceMs: number): DiskSample[] {
  return db.prepare(`SELECT * FROM disk_samples WHERE at >= ? ORDER BY at`).all(sinceMs) as DiskSample[];
}

import fs from 'node:fs';
import path from 'node:path';

/** Bytes under a directory (files' allocated size), 0 if it does not exist. */
export async function du(dir: string): Promise<number> {
  let total = 0;
  const walk = async (d: string): Promise<void> => {
    let entries: fs.Dirent[];
    try {
      entries = await fs.promises.readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) {
        const st = await fs.promises.lstat(p).catch(() => undefined);
        if (st) total += st.blocks * 512;
      }
    }
  };
  await walk(dir);
  return total;
}

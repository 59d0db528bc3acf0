/**
 * A second API process on the same database: `node limits-child.js '<json>'` with {dataDir, owner,
 * prefix, attempts, startAt}. Waits until startAt (ms since the epoch) so its sibling processes
 * start together, then creates projects for `owner` through the domain as that user would, one
 * after another, and prints {created, refused: {code: n}, began, ended} as JSON.
 */
import { loadConfig, layout } from '../../src/config.js';
import { openDatabase } from '../../src/store/db.js';
import { noEffects, type Actor, type Ctx } from '../../src/domain/context.js';
import { backupPort } from '../../src/main/ports.js';
import { createProject } from '../../src/domain/projects.js';
import { DomainError } from '../../src/errors.js';

const o = JSON.parse(process.argv[2] ?? '{}') as { dataDir: string; owner: string; prefix: string; attempts: number; startAt: number };
const cfg = loadConfig({ ...process.env, KEELSON_DATA_DIR: o.dataDir });
const db = openDatabase(layout(cfg).db);
const ctx: Ctx = { db, cfg, fx: noEffects, backups: backupPort(db, cfg) };
const actor: Actor = { kind: 'user', label: `user:${o.owner}`, user: o.owner, admin: false };
const created: string[] = [];
const refused: Record<string, number> = {};
// Busy-wait the last stretch: a timer alone may wake the siblings tens of milliseconds apart.
while (Date.now() < o.startAt - 20) await new Promise((r) => setTimeout(r, 5));
while (Date.now() < o.startAt);
const began = Date.now();
for (let i = 0; i < o.attempts; i++) {
  try {
    created.push(createProject(ctx, actor, { slug: `${o.prefix}-${i}`, visibility: 'private' }).slug);
  } catch (e) {
    if (!(e instanceof DomainError)) throw e;
    refused[e.code] = (refused[e.code] ?? 0) + 1;
  }
}
db.close();
process.stdout.write(JSON.stringify({ created, refused, began, ended: Date.now() }) + '\n');

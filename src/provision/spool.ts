import fs from 'node:fs';
import path from 'node:path';
import type { Layout } from '../config.js';
import type { DB } from '../store/db.js';
import { setProjectErrorOfKind } from '../store/projects.js';
import type { TracHelper } from './trac.js';
import { HelperBusyError } from '../sys/json-lines.js';
import type { Usage } from './usage.js';
import { envDir, repoDir } from './dirs.js';
import { log } from '../sys/log.js';

/** A commit-feed failure in a project's lastError starts with this (cleared when the feed recovers). */
const SPOOL_ERROR = 'Trac did not take new commits: ';
/** One project's Trac may hold the commit feed this long at most. */
const SPOOL_CALL_TIMEOUT_MS = 20_000;

/** 0 for a file another drain already removed. */
function mtimeMs(file: string): number {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

interface Spooled {
  revs: number[];
  files: string[];
}

/** The spool's files by project; a file that is not a commit (nor one being written) is removed. */
function readSpool(spool: string): Map<string, Spooled> {
  const bySlug = new Map<string, Spooled>();
  for (const f of fs.readdirSync(spool)) {
    const m = f.match(/^([a-z][a-z0-9-]{1,38}[a-z0-9])\.(\d+)$/);
    const full = path.join(spool, f);
    if (!m) {
      if (!f.includes('.tmp.')) fs.rmSync(full, { force: true });
      continue;
    }
    const e = bySlug.get(m[1]!) ?? { revs: [], files: [] };
    e.revs.push(Number(m[2]));
    e.files.push(full);
    bySlug.set(m[1]!, e);
  }
  return bySlug;
}

/**
 * The commit spool the post-commit hooks write to, and the projects whose Trac failed to take
 * their commits: when to try each again (the spool keeps their files until then).
 */
export class CommitSpool {
  private retry = new Map<string, { at: number; delayMs: number }>();

  constructor(
    private readonly l: Layout,
    private readonly db: DB,
    /** The feed's own helper (the reconciler's feedTrac), so provisioning calls never hold up commits. */
    private readonly trac: TracHelper,
    /** Each commit is measured against the project's storage limit as it is fed. */
    private readonly usage?: Usage,
  ) {}

  /**
   * Tells Trac about commits the post-commit hooks dropped in the spool. Each project on its own:
   * one whose environment fails (or hangs: the call times out) keeps its files in the spool, gets
   * the error as its lastError and is tried again later with backoff; the others go on.
   */
  private readonly delivering = new Set<string>();
  private readonly again = new Set<string>();

  async drain(): Promise<number> {
    // Projects are delivered side by side (the feed's helper pool bounds how many at once), so
    // one whose Trac hangs until its call times out holds one helper process, not the others.
    const done = await Promise.all(
      [...readSpool(this.l.commitSpool)].map(async ([slug, e]) => {
        // A project already being delivered (by an earlier drain) is left to that one: a hung
        // project must never take a second helper process.
        if (this.delivering.has(slug)) {
          this.again.add(slug);
          return 0;
        }
        this.delivering.add(slug);
        try {
          // The commits' bytes counted first, whatever Trac does with them (the hook adds the
          // revisions since, so a late measure is never a hole, only more work for the hook).
          await this.usage?.refresh(slug).catch((err: Error) => log.warn('storage measure failed', { slug, error: err.message }));
          if (!(await this.deliver(slug, e))) return 0;
        } finally {
          this.delivering.delete(slug);
          // Commits that arrived while it was being delivered: looked at again now.
          if (this.again.delete(slug)) setImmediate(() => void this.drain().catch(() => {}));
        }
        for (const f of e.files) fs.rmSync(f, { force: true });
        return e.revs.length;
      }),
    );
    return done.reduce((a, b) => a + b, 0);
  }

  /** Whether the project's spooled files are done with (delivered, or of a project that is gone). */
  private async deliver(slug: string, e: Spooled): Promise<boolean> {
    const retry = this.retry.get(slug);
    if (retry && Date.now() < retry.at) return false;
    const env = envDir(this.l, slug);
    if (fs.existsSync(path.join(env, 'VERSION'))) {
      try {
        // changeset_added also catches up on any earlier revisions Trac has not seen.
        await this.trac.call('changeset_added', { path: env, revs: e.revs.sort((a, b) => a - b) }, SPOOL_CALL_TIMEOUT_MS);
      } catch (err) {
        if (err instanceof HelperBusyError) {
          // Never attempted (other projects' deliveries held every helper): not this project's
          // failure; the next drain takes it.
          this.again.add(slug);
          return false;
        }
        const delayMs = Math.min((retry?.delayMs ?? 500) * 2, 300_000);
        this.retry.set(slug, { at: Date.now() + delayMs, delayMs });
        const message = (err as Error).message;
        setProjectErrorOfKind(this.db, slug, SPOOL_ERROR, message);
        log.warn('commits not delivered to Trac; kept in the spool', { slug, revs: e.revs, retryInMs: delayMs, error: message });
        return false;
      }
      if (retry) {
        this.retry.delete(slug);
        setProjectErrorOfKind(this.db, slug, SPOOL_ERROR, null);
      }
    } else if (fs.existsSync(repoDir(this.l, slug)) || e.files.some((f) => Date.now() - mtimeMs(f) < 3_600_000)) {
      // A project still being provisioned: its first commit waits for its environment.
      return false;
    }
    return true;
  }
}

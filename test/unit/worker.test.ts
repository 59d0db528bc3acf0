import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { migrate } from '../../src/store/db.js';
import { enqueue } from '../../src/store/jobs.js';
import { Worker } from '../../src/jobs/worker.js';

function db() {
  const d = new Database(':memory:');
  migrate(d);
  d.prepare(
    `INSERT INTO projects (id, slug, title, visibility, state, repo_uuid, created_at, updated_at) VALUES (1,'alpha','a','private','active','u','t','t')`,
  ).run();
  return d;
}
const job = (d: Database.Database) =>
  d.prepare(`SELECT state, attempts, last_error FROM jobs ORDER BY id DESC LIMIT 1`).get() as {
    state: string;
    attempts: number;
    last_error: string | null;
  };
const until = async (fn: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
};

process.env.KEELSON_LOG = 'silent';

/** Every job kind has a timeout: its run is aborted through an AbortSignal and retried with backoff. */
describe('job worker', () => {
  it('a run past its kind timeout is aborted through its signal and recorded as a failed attempt to retry', async () => {
    const d = db();
    let sawAbort = false;
    const w = new Worker(
      d,
      {
        slow: {
          timeoutMs: 100,
          run: (_job, signal) =>
            new Promise<void>((resolve) =>
              signal.addEventListener('abort', () => {
                sawAbort = true;
                resolve();
              }),
            ),
        },
      },
      { concurrency: 1, pollMs: 20 },
    );
    enqueue(d, 'slow', 1);
    w.start();
    try {
      await until(() => job(d).last_error !== null);
      assert.ok(sawAbort);
      assert.equal(job(d).state, 'pending');
      assert.equal(job(d).last_error, 'slow timed out after 100 ms');
    } finally {
      await w.stop();
    }
  });

  it('a handler that ignores its signal is still waited for (a project never runs two jobs at once), then failed', async () => {
    const d = db();
    let finished = 0;
    let nextStarted = 0;
    // Two slots: only the project rule keeps the second job of project 1 from running beside the first.
    const w = new Worker(
      d,
      {
        stubborn: { timeoutMs: 50, run: () => new Promise<void>((r) => setTimeout(() => ((finished = Date.now()), r()), 300)) },
        next: { timeoutMs: 1000, run: async () => void (nextStarted ||= Date.now()) },
      },
      { concurrency: 2, pollMs: 20 },
    );
    enqueue(d, 'stubborn', 1);
    const stubborn = d.prepare(`SELECT max(id) FROM jobs`).pluck().get() as number;
    enqueue(d, 'next', 1);
    const t0 = Date.now();
    w.start();
    try {
      await until(() => (d.prepare(`SELECT last_error FROM jobs WHERE id = ?`).pluck().get(stubborn) as string | null) !== null);
      assert.ok(finished > 0 && finished - t0 >= 250, 'the failure was recorded before the handler returned');
      assert.match(d.prepare(`SELECT last_error FROM jobs WHERE id = ?`).pluck().get(stubborn) as string, /timed out/);
      await until(() => nextStarted > 0);
      assert.ok(nextStarted >= finished, `the project's next job started ${finished - nextStarted} ms before the timed-out one returned`);
    } finally {
      await w.stop();
    }
  });

  it('a run within its time completes', async () => {
    const d = db();
    const w = new Worker(d, { quick: { timeoutMs: 1000, run: async () => {} } }, { concurrency: 1, pollMs: 20 });
    enqueue(d, 'quick', 1);
    w.start();
    try {
      await until(() => job(d).state === 'done');
      assert.equal(job(d).last_error, null);
    } finally {
      await w.stop();
    }
  });
});

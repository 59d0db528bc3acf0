/**
 * Issue 17, "Keelson's event loop stays free": password hashes run off the event loop in a bounded
 * pool (503 beyond its queue, one hash per account at a time), every sign-in attempt counts
 * against the per-address limits (a right password too), and sessions per user are capped. Real
 * use cases over a real (in-memory) database.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import Database from 'better-sqlite3';
import { migrate } from '../../src/store/db.js';
import { createUser } from '../helpers/seed.js';
import { getUser } from '../../src/store/users.js';
import { loadConfig } from '../../src/config.js';
import { noEffects, type Ctx } from '../../src/domain/context.js';
import { backupPort } from '../../src/main/ports.js';
import { login, slowdownMs, throttleAddress } from '../../src/domain/signin.js';
import { endSession, sessionFor, startSession } from '../../src/domain/sessions.js';
import { BusyError, hashPassword as pooledHash, hashPool, withHashSlot } from '../../src/domain/passwords.js';
import { KeyedPool, PoolBusyError } from '../../src/sys/keyed-pool.js';
import { hashPassword, verifyPassword } from '../../src/sys/password.js';
import { ThrottledError } from '../../src/errors.js';
import { sha256 } from '../../src/sys/hash.js';

const PW = 'correct horse battery';
const PW_HASH = await hashPassword(PW);

function setup(env: Record<string, string> = {}): Ctx {
  const db = new Database(':memory:');
  migrate(db);
  const cfg = loadConfig({ KEELSON_DATA_DIR: '/var/tmp/keelson-unused', KEELSON_LOG: 'silent', ...env });
  for (const name of ['alice', 'bob']) createUser(db, 'test', { name, email: `${name}@example.com`, passwordHash: PW_HASH });
  return { db, cfg, fx: noEffects, backups: backupPort(db, cfg) };
}

/** A task that runs until `release()`; `started` resolves when the pool starts it. */
function gate() {
  let release!: () => void;
  let started!: () => void;
  const done = new Promise<void>((r) => (release = r));
  const startedP = new Promise<void>((r) => (started = r));
  return {
    fn: () => {
      started();
      return done;
    },
    release,
    started: startedP,
  };
}
const tick = () => new Promise((r) => setImmediate(r));

describe('password hashes off the event loop', () => {
  it('keeps the stored format, checks in constant time, and verifies hashes made by the old scryptSync', async () => {
    assert.match(PW_HASH, /^scrypt\$16384\$8\$1\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=$/);
    assert.equal(await verifyPassword(PW, PW_HASH), true);
    assert.equal(await verifyPassword('correct horse batterY', PW_HASH), false);
    // What the store kept before hashing moved off the event loop.
    const salt = crypto.randomBytes(16);
    const key = crypto.scryptSync(PW, salt, 32, { N: 16384, r: 8, p: 1 });
    const old = `scrypt$16384$8$1$${salt.toString('base64')}$${key.toString('base64')}`;
    assert.equal(await verifyPassword(PW, old), true);
    assert.equal(await verifyPassword('nope', old), false);
    // Malformed, foreign, or a cost the stored row would choose: refused without hashing.
    for (const bad of ['', 'bcrypt$x', 'scrypt$16384$8$1$$', old.replace('$16384$', '$1048576$')])
      assert.equal(await verifyPassword(PW, bad), false, bad);
  });

  it('the event loop keeps turning while hashes run', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 4 }, () => hashPassword(PW)));
    const ms = performance.now() - t0;
    clearInterval(timer);
    // 4 hashes of ~50 ms each; with scryptSync not one tick would have run meanwhile.
    assert.ok(ticks >= Math.floor(ms / 5 / 4), `${ticks} ticks in ${ms.toFixed(0)} ms`);
  });
});

describe('the bounded hash pool', () => {
  it('runs at most `concurrency` tasks, queues at most `queue`, and refuses beyond with PoolBusyError("full")', async () => {
    const pool = new KeyedPool({ concurrency: 2, queue: 3, perKey: 8 });
    const gates = Array.from({ length: 5 }, () => gate());
    const runs = gates.map((g, i) => pool.run(`k${i}`, g.fn));
    await tick();
    assert.deepEqual(pool.stats(), { running: 2, queued: 3, laned: 0 });
    await assert.rejects(
      pool.run('k5', async () => 1),
      (e) => e instanceof PoolBusyError && e.reason === 'full',
    );
    gates[0]!.release();
    await gates[2]!.started;
    assert.deepEqual(pool.stats(), { running: 2, queued: 2, laned: 0 });
    for (const g of gates) g.release();
    await Promise.all(runs);
    assert.deepEqual(pool.stats(), { running: 0, queued: 0, laned: 0 });
  });

  it("one account's flood holds one slot: its attempts run one at a time and another account's starts at once", async () => {
    const pool = new KeyedPool({ concurrency: 2, queue: 2, perKey: 16 });
    let inFlight = 0;
    let most = 0;
    const order: string[] = [];
    const aliceGates = Array.from({ length: 10 }, () => gate());
    const alice = aliceGates.map((g, i) =>
      pool.run('alice', async () => {
        inFlight++;
        most = Math.max(most, inFlight);
        order.push(`alice${i}`);
        await g.fn();
        inFlight--;
      }),
    );
    await tick();
    assert.deepEqual(pool.stats(), { running: 1, queued: 0, laned: 9 });
    // Bob is not behind alice's nine: he takes the second slot at once.
    const bob = gate();
    const bobRun = pool.run('bob', bob.fn);
    await bob.started;
    // A third account waits in the queue (both slots are taken), not refused.
    const carol = gate();
    const carolRun = pool.run('carol', carol.fn);
    await tick();
    assert.deepEqual(pool.stats(), { running: 2, queued: 1, laned: 9 });
    // Alice's next attempt goes behind carol, who was waiting before it.
    aliceGates[0]!.release();
    await carol.started;
    for (const g of aliceGates) g.release();
    bob.release();
    carol.release();
    await Promise.all([...alice, bobRun, carolRun]);
    assert.equal(most, 1, "two of alice's hashes ran at once");
    assert.deepEqual(
      order,
      Array.from({ length: 10 }, (_, i) => `alice${i}`),
    );
  });

  it("an account's lane is bounded: beyond it PoolBusyError('key')", async () => {
    const pool = new KeyedPool({ concurrency: 1, queue: 1, perKey: 2 });
    const g = gate();
    const runs = [pool.run('alice', g.fn), pool.run('alice', async () => {}), pool.run('alice', async () => {})];
    await assert.rejects(
      pool.run('alice', async () => {}),
      (e) => e instanceof PoolBusyError && e.reason === 'key',
    );
    g.release();
    await Promise.all(runs);
  });

  it('the use cases get 503 (busy, Retry-After) when the pool is full and 429 when the account has too many waiting', async () => {
    const ctx = setup({ KEELSON_HASH_CONCURRENCY: '1', KEELSON_HASH_QUEUE: '1' });
    const a = gate();
    const b = gate();
    const held = [withHashSlot(ctx, 'one', a.fn), withHashSlot(ctx, 'two', b.fn)];
    await a.started;
    await assert.rejects(
      pooledHash(ctx, 'three', PW),
      (e) => e instanceof BusyError && e.status === 503 && e.code === 'busy' && e.retryAfter > 0,
    );
    // 'one' has one waiting behind it already (lane of KEELSON_HASH_QUEUE = 1): the next is 429.
    const behind = withHashSlot(ctx, 'ONE', async () => 'ran');
    await assert.rejects(
      withHashSlot(ctx, 'one', async () => {}),
      (e) => e instanceof ThrottledError && e.status === 429,
    );
    a.release();
    b.release();
    await Promise.all(held);
    assert.equal(await behind, 'ran');
    assert.deepEqual(hashPool(ctx.cfg).stats(), { running: 0, queued: 0, laned: 0 });
    // A sign-in refused by a full pool is a 503 too.
    const c = gate();
    const d = gate();
    const held2 = [withHashSlot(ctx, 'x', c.fn), withHashSlot(ctx, 'y', d.fn)];
    await assert.rejects(login(ctx, 'alice', PW, '192.0.2.1'), (e) => e instanceof BusyError && e.status === 503);
    c.release();
    d.release();
    await Promise.all(held2);
  });
});

describe('every sign-in attempt counts', () => {
  it('a right password over the per-(account, address) limit gets 429; another address and another account are not held', async () => {
    const ctx = setup({ KEELSON_LOGIN_ATTEMPTS_ACCOUNT: '3/60', KEELSON_LOGIN_ATTEMPTS_ADDRESS: '30/60' });
    for (let i = 0; i < 3; i++) assert.equal((await login(ctx, 'alice', PW, '203.0.113.1')).name, 'alice');
    await assert.rejects(
      login(ctx, 'alice', PW, '203.0.113.1'),
      (e) => e instanceof ThrottledError && e.retryAfter > 0 && e.retryAfter <= 60,
    );
    // The refused attempt ran no hash: no failure was counted for it.
    assert.equal(ctx.db.prepare(`SELECT count(*) FROM throttles WHERE key LIKE 'login:acct%'`).pluck().get(), 0);
    assert.equal((await login(ctx, 'alice', PW, '203.0.113.2')).name, 'alice', 'no account-wide lock');
    assert.equal((await login(ctx, 'bob', PW, '203.0.113.1')).name, 'bob');
  });

  it('a right password over the per-address limit (any accounts) gets 429 for that address only', async () => {
    const ctx = setup({ KEELSON_LOGIN_ATTEMPTS_ACCOUNT: '10/60', KEELSON_LOGIN_ATTEMPTS_ADDRESS: '4/60' });
    for (const name of ['alice', 'bob', 'alice', 'bob']) await login(ctx, name, PW, '203.0.113.7');
    await assert.rejects(login(ctx, 'bob', PW, '203.0.113.7'), ThrottledError);
    await assert.rejects(login(ctx, 'nobody', 'a wrong one', '203.0.113.7'), ThrottledError);
    assert.equal((await login(ctx, 'bob', PW, '203.0.113.8')).name, 'bob');
  });

  it('a wrong password is a 401 and still counts as an attempt', async () => {
    const ctx = setup({ KEELSON_LOGIN_ATTEMPTS_ACCOUNT: '2/60' });
    await assert.rejects(login(ctx, 'alice', 'wrong', '203.0.113.9'), (e) => (e as { status?: number }).status === 401);
    await login(ctx, 'alice', PW, '203.0.113.9');
    await assert.rejects(login(ctx, 'alice', PW, '203.0.113.9'), ThrottledError);
  });
});

describe('sessions per user', () => {
  it('a new session ends the oldest beyond KEELSON_SESSIONS_PER_USER; other users keep theirs', () => {
    const ctx = setup({ KEELSON_SESSIONS_PER_USER: '3' });
    const alice = getUser(ctx.db, 'alice')!.id;
    const bob = getUser(ctx.db, 'bob')!.id;
    const bobs = startSession(ctx, bob);
    const tokens = Array.from({ length: 5 }, () => startSession(ctx, alice));
    assert.deepEqual(
      tokens.map((t) => !!sessionFor(ctx, t)),
      [false, false, true, true, true],
    );
    const rows = (id: number) => ctx.db.prepare(`SELECT count(*) FROM sessions WHERE user_id = ?`).pluck().get(id);
    assert.equal(rows(alice), 3);
    assert.equal(rows(bob), 1);
    assert.ok(sessionFor(ctx, bobs));
    // Ending one leaves room: the next sign-in drops nobody.
    endSession(ctx, tokens[2]!);
    const next = startSession(ctx, alice);
    assert.deepEqual(
      [tokens[3], tokens[4], next].map((t) => !!sessionFor(ctx, t!)),
      [true, true, true],
    );
  });

  it('an expired session does not hold a place under the cap', () => {
    const ctx = setup({ KEELSON_SESSIONS_PER_USER: '2' });
    const alice = getUser(ctx.db, 'alice')!.id;
    const live = startSession(ctx, alice);
    const stale = startSession(ctx, alice);
    ctx.db.prepare(`UPDATE sessions SET expires_at = 1 WHERE id_hash = ?`).run(sha256(stale));
    const fresh = startSession(ctx, alice);
    assert.ok(sessionFor(ctx, live), 'the older live session stays');
    assert.ok(sessionFor(ctx, fresh));
    assert.equal(sessionFor(ctx, stale), undefined);
  });
});

describe('per-address throttles count an IPv6 client by its /64', () => {
  it('IPv4 (also mapped into IPv6) as it is; IPv6 addresses of one /64 as one', () => {
    assert.equal(throttleAddress('192.0.2.7'), '192.0.2.7');
    assert.equal(throttleAddress('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(throttleAddress('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
    assert.equal(throttleAddress('2001:db8:1:2:ffff::9'), '2001:db8:1:2::/64');
    assert.equal(throttleAddress('2001:0db8:0001:0002::'), '2001:db8:1:2::/64');
    assert.equal(throttleAddress('2001:db8::1'), '2001:db8:0:0::/64');
    assert.notEqual(throttleAddress('2001:db8:1:3::1'), throttleAddress('2001:db8:1:2::1'));
  });
});

describe('the account-wide slow-down (slowdownMs)', () => {
  it('nothing below the threshold, then the first delay doubling with each failure, capped (the settings of test/integration/throttle.test.ts)', () => {
    // KEELSON_LOGIN_SLOWDOWN_ACCOUNT=4/900, KEELSON_LOGIN_SLOWDOWN_DELAY=150/600, read as Keelson reads them.
    const s = loadConfig({
      KEELSON_DATA_DIR: '/var/tmp/keelson-unused',
      KEELSON_LOGIN_SLOWDOWN_ACCOUNT: '4/900',
      KEELSON_LOGIN_SLOWDOWN_DELAY: '150/600',
    }).loginSlowdown;
    assert.deepEqual(s, { after: 4, windowSeconds: 900, firstDelayMs: 150, maxDelayMs: 600 });
    const failures = [0, 3, 4, 5, 6, 7, 8, 9, 40, 10_000];
    assert.deepEqual(
      failures.map((n) => slowdownMs(n, s)),
      [0, 0, 150, 300, 600, 600, 600, 600, 600, 600],
    );
    // Growing before the cap: each further failure doubles the delay.
    const big = { ...s, maxDelayMs: 1_000_000 };
    assert.deepEqual(
      [4, 5, 6, 7, 8, 9].map((n) => slowdownMs(n, big)),
      [150, 300, 600, 1200, 2400, 4800],
    );
    // A cap of 0 turns the slow-down off.
    assert.equal(slowdownMs(9, { ...s, maxDelayMs: 0 }), 0);
  });
});

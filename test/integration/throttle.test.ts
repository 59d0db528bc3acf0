import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import request from 'supertest';
import { createUser } from '../helpers/seed.js';
import { startHost, type TestHost } from '../helpers/host.js';
import { hashPassword } from '../../src/sys/password.js';

/**
 * Sign-in throttling that cannot be turned into a lockout, over HTTP against a real server (API and
 * web UI only: no Apache or worker is needed). Behind a trusted proxy (loopback), X-Forwarded-For
 * names the client, so each "address" below is a different client to the throttles.
 */
const PW = 'correct horse battery';
const PW_HASH = await hashPassword(PW);

async function withHost(tag: string, env: Record<string, string>, fn: (h: TestHost) => Promise<void>): Promise<void> {
  const h = await startHost(tag, { worker: false, apache: false }, { KEELSON_TRUST_PROXY: 'loopback', ...env });
  try {
    await fn(h);
  } finally {
    await h.stop();
  }
}

/** A browser at one client address: its own cookies, every request forwarded for that address. */
function client(h: TestHost, address: string) {
  const agent = request.agent(h.run.url!);
  const csrf = async () => (await agent.get('/api/v1/session').set('x-forwarded-for', address)).body.csrfToken as string;
  return {
    address,
    /** POST /api/v1/session; `ms` is how long the sign-in itself took to be answered. */
    async signIn(username: string, password: string) {
      const token = await csrf();
      const t0 = performance.now();
      const r = await agent.post('/api/v1/session').set('x-forwarded-for', address).set('x-csrf-token', token).send({ username, password });
      return Object.assign(r, { ms: performance.now() - t0 });
    },
    /** The web form, which answers 429 with Retry-After. */
    async signInForm(username: string, password: string) {
      const page = await agent.get('/login').set('x-forwarded-for', address);
      const token = /<meta name="csrf-token" content="([^"]+)">/.exec(page.text)![1]!;
      return agent.post('/login').set('x-forwarded-for', address).type('form').send({ _csrf: token, username, password });
    },
    async whoami() {
      return (await agent.get('/api/v1/session').set('x-forwarded-for', address)).body.user?.name as string | undefined;
    },
  };
}

const count = (h: TestHost, key: string) =>
  (h.run.db.prepare(`SELECT count FROM throttles WHERE key = ?`).pluck().get(key) as number | undefined) ?? 0;

describe('sign-in throttling without lockout', () => {
  it('an attacker failing over and over from one address does not keep the victim (an operator) from signing in elsewhere', async () => {
    await withHost('thr-a', { KEELSON_LOGIN_LIMIT_ACCOUNT: '5/900', KEELSON_LOGIN_LIMIT_ADDRESS: '20/900' }, async (h) => {
      createUser(h.run.db, 'test', { name: 'olga', email: 'olga@example.com', passwordHash: PW_HASH, isAdmin: true });
      const attacker = client(h, '203.0.113.66');
      const statuses: number[] = [];
      for (let i = 0; i < 12; i++) statuses.push((await attacker.signIn('olga', `guess number ${i}`)).status);
      assert.deepEqual(statuses, [...Array(5).fill(401), ...Array(7).fill(429)]);
      // Under the old per-account limit this was a 429 for everyone; now only the attacker's address is held.
      const victim = client(h, '198.51.100.7');
      const r = await victim.signIn('olga', PW);
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.deepEqual(r.body.user, { name: 'olga', admin: true });
      assert.equal(await victim.whoami(), 'olga');
      // A typo of the victim's own, from her address, is an ordinary 401, not a 429.
      assert.equal((await client(h, '198.51.100.7').signIn('olga', 'a typo of hers')).status, 401);
    });
  });

  it('after the per-(account, address) limit, that address gets 429 with Retry-After for that account, even with the right password', async () => {
    await withHost('thr-b', { KEELSON_LOGIN_LIMIT_ACCOUNT: '3/900', KEELSON_LOGIN_LIMIT_ADDRESS: '20/900' }, async (h) => {
      createUser(h.run.db, 'test', { name: 'victim', email: 'victim@example.com', passwordHash: PW_HASH });
      createUser(h.run.db, 'test', { name: 'bob', email: 'bob@example.com', passwordHash: PW_HASH });
      const a = client(h, '203.0.113.1');
      for (let i = 0; i < 3; i++) assert.equal((await a.signIn('victim', `wrong password ${i}`)).status, 401);
      const api = await a.signIn('victim', PW);
      assert.equal(api.status, 429);
      assert.equal(api.body.error.code, 'throttled');
      const form = await a.signInForm('victim', PW);
      assert.equal(form.status, 429);
      assert.ok(Number(form.headers['retry-after']) > 0, 'Retry-After is set');
      assert.ok(Number(form.headers['retry-after']) <= 900);
      assert.match(form.text, /Too many failed sign-ins/);
      // Only that pair is held: another account from the same address, and the same account from another address, sign in.
      assert.equal((await a.signIn('bob', PW)).status, 201);
      assert.equal((await client(h, '203.0.113.2').signIn('victim', PW)).status, 201);

      // A success clears that (account, address) count, not the account-wide one.
      const c = client(h, '203.0.113.3');
      for (let i = 0; i < 2; i++) assert.equal((await c.signIn('victim', `wrong again ${i}`)).status, 401);
      assert.equal(count(h, 'login:acct-addr:["victim","203.0.113.3"]'), 2);
      const accountWide = count(h, 'login:acct:victim');
      assert.equal(accountWide, 5);
      assert.equal((await c.signIn('victim', PW)).status, 201);
      assert.equal(count(h, 'login:acct-addr:["victim","203.0.113.3"]'), 0);
      assert.equal(count(h, 'login:acct:victim'), accountWide);
      // So two more failures from c are 401 (2 of 3), where without the reset the second would be over the limit.
      for (let i = 0; i < 2; i++) assert.equal((await c.signIn('victim', `and again ${i}`)).status, 401);
      assert.equal((await c.signIn('victim', PW)).status, 201);
    });
  });

  it('past the account-wide threshold every attempt is delayed (growing, capped), and the right password still succeeds', async () => {
    const env = {
      KEELSON_LOGIN_LIMIT_ACCOUNT: '3/900',
      KEELSON_LOGIN_LIMIT_ADDRESS: '20/900',
      KEELSON_LOGIN_SLOWDOWN_ACCOUNT: '4/900',
      KEELSON_LOGIN_SLOWDOWN_DELAY: '150/600',
    };
    await withHost('thr-c', env, async (h) => {
      createUser(h.run.db, 'test', { name: 'victim', email: 'victim@example.com', passwordHash: PW_HASH });
      // A distributed attack: each address stays under its own per-(account, address) limit.
      const bots = ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4'].map((a) => client(h, a));
      for (const b of bots) assert.equal((await b.signIn('victim', 'botnet guess one')).status, 401);
      // 4 failures: at the threshold, the first delay (150 ms) for any attempt, right or wrong.
      // (The delay for each count, growing and capped, is test/unit/signin-limits.test.ts's slowdownMs.)
      assert.equal(count(h, 'login:acct:victim'), 4);
      const first = await client(h, '198.51.100.1').signIn('victim', PW);
      assert.equal(first.status, 201);
      assert.ok(first.ms >= 150, `delayed by the first delay (took ${first.ms.toFixed(0)} ms)`);
      for (const b of bots) assert.equal((await b.signIn('victim', 'botnet guess two')).status, 401);
      // 8 failures: 150 * 2^4 = 2400 ms, capped at 600 ms.
      const wrong = await client(h, '198.51.100.2').signIn('victim', 'not it either');
      assert.equal(wrong.status, 401);
      assert.ok(wrong.ms >= 600, `a wrong password waits too (took ${wrong.ms.toFixed(0)} ms)`);
      // 9 failures: 150 * 2^5 = 4800 ms uncapped, 600 ms capped.
      assert.equal(count(h, 'login:acct:victim'), 9);
      const right = await client(h, '198.51.100.3').signIn('victim', PW);
      assert.equal(right.status, 201, JSON.stringify(right.body));
      assert.ok(right.ms >= 600, `delayed by the cap (took ${right.ms.toFixed(0)} ms)`);
      assert.ok(right.ms < 600 + 4000, `never much more than the cap (took ${right.ms.toFixed(0)} ms)`);
      // A success does not end the slow-down: the account-wide failures still count.
      const again = await client(h, '198.51.100.4').signIn('victim', PW);
      assert.equal(again.status, 201);
      assert.ok(again.ms >= 600, `still delayed after a success (took ${again.ms.toFixed(0)} ms)`);
      // Another account is not slowed by the victim's failures.
      createUser(h.run.db, 'test', { name: 'bob', email: 'bob@example.com', passwordHash: PW_HASH });
      const bob = await client(h, '198.51.100.5').signIn('bob', PW);
      assert.equal(bob.status, 201);
      // No failure is counted against bob, so slowdownMs gives him no delay (the timing below is a wall clock).
      assert.equal(count(h, 'login:acct:bob'), 0);
      assert.ok(bob.ms < 600, `bob is not slowed (took ${bob.ms.toFixed(0)} ms)`);
    });
  });

  it('parallel attempts from one address while the account is slowed cannot overrun its per-(account, address) limit', async () => {
    const env = {
      KEELSON_LOGIN_LIMIT_ACCOUNT: '3/900',
      KEELSON_LOGIN_LIMIT_ADDRESS: '50/900',
      KEELSON_LOGIN_SLOWDOWN_ACCOUNT: '2/900',
      KEELSON_LOGIN_SLOWDOWN_DELAY: '300/300',
    };
    await withHost('thr-p', env, async (h) => {
      createUser(h.run.db, 'test', { name: 'victim', email: 'victim@example.com', passwordHash: PW_HASH });
      for (const a of ['192.0.2.1', '192.0.2.2']) assert.equal((await client(h, a).signIn('victim', 'warm up guess')).status, 401);
      const burst = await Promise.all(Array.from({ length: 8 }, (_, i) => client(h, '203.0.113.9').signIn('victim', `burst guess ${i}`)));
      const statuses = burst.map((r) => r.status).sort();
      assert.deepEqual(statuses, [401, 401, 401, 429, 429, 429, 429, 429]);
      assert.equal(count(h, 'login:acct-addr:["victim","203.0.113.9"]'), 3);
    });
  });

  it('the per-address limit still holds across many account names', async () => {
    await withHost('thr-d', { KEELSON_LOGIN_LIMIT_ACCOUNT: '3/900', KEELSON_LOGIN_LIMIT_ADDRESS: '6/900' }, async (h) => {
      createUser(h.run.db, 'test', { name: 'bob', email: 'bob@example.com', passwordHash: PW_HASH });
      const a = client(h, '203.0.113.5');
      // One failure each for six names (real or not): no pair is near its limit, the address is at its.
      for (const name of ['alice', 'carol', 'dave', 'erin', 'frank', 'bob'])
        assert.equal((await a.signIn(name, 'spraying one password')).status, 401);
      assert.equal((await a.signIn('bob', PW)).status, 429);
      assert.equal((await a.signIn('someone-new', 'spraying one password')).status, 429);
      const form = await a.signInForm('bob', PW);
      assert.equal(form.status, 429);
      assert.ok(Number(form.headers['retry-after']) > 0);
      // Other addresses are not held by it.
      assert.equal((await client(h, '203.0.113.6').signIn('bob', PW)).status, 201);
    });
  });
});

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { layout, startHost, svn, until, type TestHost } from '../helpers/host.js';
import { fixtures } from '../helpers/fixtures.js';
import request from 'supertest';
import { execFileSync } from 'node:child_process';
import { removeStaleTransactions } from '../../src/provision/usage.js';
import { FORM_TOKEN, formCookie, req } from '../helpers/trac-attacks.js';

const MiB = 1024 * 1024;

/**
 * Project storage limits on the real stack: the pre-commit hook refuses a commit that would take
 * the project over its limit, with a message the svn client prints; deletes and reads still work;
 * commits racing for the last bytes cannot all pass; Trac refuses an attachment the same way;
 * Apache refuses a body over its limit.
 */
describe('project storage limits', () => {
  let h: TestHost;
  let f: ReturnType<typeof fixtures>;
  const creds = (u: string) => f.creds(u);

  before(async () => {
    h = await startHost('quota', {}, { KEELSON_MAX_REQUEST_BYTES: '6M' });
    f = fixtures(h);
    await f.user('quinn');
    await f.user('rae');
    await f.project('qproj', 'quinn');
    await f.project('race', 'rae');
  });
  after(async () => {
    await h?.stop();
  });

  const storage = async (slug: string) => (await h.api.get(`/api/v1/projects/${slug}`)).body.storage;
  const quotaLine = (slug: string) => fs.readFileSync(path.join(layout(h.cfg).quotaDir, slug), 'utf8');
  async function settled() {
    await until('queue empty', async () => (await h.api.get('/api/v1/health')).body.jobsQueued === 0);
  }
  /** Sets the project's own limit to what it uses now plus `room`, and waits for its quota file. */
  async function limitTo(slug: string, room: number): Promise<number> {
    await settled();
    const st = await storage(slug);
    const limit = Math.max(MiB, st.usedBytes + room);
    const r = await h.api.patch(`/api/v1/projects/${slug}`).send({ storageLimitBytes: limit });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.storage.limitBytes, limit);
    await until(`${slug} quota file`, () => quotaLine(slug).startsWith(`${limit} `));
    return limit;
  }
  /** A file of random (incompressible) bytes in a new working copy, committed. */
  async function commitRandom(slug: string, u: string, name: string, bytes: number) {
    const wc = fs.mkdtempSync(path.join(os.tmpdir(), 'wc-'));
    try {
      const co = await svn(['checkout', '--depth', 'empty', `${h.svnUrl(slug)}/trunk`, wc], creds(u));
      assert.equal(co.code, 0, co.stderr);
      fs.writeFileSync(path.join(wc, name), crypto.randomBytes(bytes));
      assert.equal((await svn(['add', path.join(wc, name)])).code, 0);
      return await svn(['commit', '-m', `add ${name}`, wc], creds(u));
    } finally {
      fs.rmSync(wc, { recursive: true, force: true });
    }
  }

  it('a new project is measured and shows its usage against the default limit', async () => {
    const st = await until('measured', async () => {
      const s = await storage('qproj');
      return s?.measuredAt ? s : undefined;
    });
    assert.ok(st.usedBytes > 0, JSON.stringify(st));
    assert.equal(st.limitBytes, 2 * 1024 ** 3, 'the operator default (2 GiB)');
    assert.equal(st.ownLimitBytes, null);
    assert.equal(st.warning, null);
    assert.match(quotaLine('qproj'), /^default \d+ \d+ \d+\n$/);
  });

  it('only an operator changes a limit; an owner is refused and nothing changes', async () => {
    const owner = request.agent(h.run.url!);
    const csrf = (await owner.get('/api/v1/session')).body.csrfToken as string;
    const signin = await owner
      .post('/api/v1/session')
      .set('x-csrf-token', csrf)
      .send({ username: 'quinn', password: 'a long enough password' });
    assert.equal(signin.status, 201, JSON.stringify(signin.body));
    // Signing in starts a new session, with its own CSRF token.
    const csrf2 = (await owner.get('/api/v1/session')).body.csrfToken as string;
    const r = await owner
      .patch('/api/v1/projects/qproj')
      .set('x-csrf-token', csrf2)
      .send({ storageLimitBytes: 100 * MiB, title: 'Renamed' });
    assert.equal(r.status, 403, JSON.stringify(r.body));
    assert.match(r.body.error.message, /only an operator/);
    assert.equal((await owner.get('/api/v1/projects/qproj')).body.title, 'Project qproj', 'the rest of a refused PATCH was applied');
    // A public project's storage is its members' business: a signed-in stranger sees none of it.
    await f.project('pubq', 'rae', 'public');
    const stranger = await owner.get('/api/v1/projects/pubq');
    assert.equal(stranger.status, 200);
    assert.equal(stranger.body.storage, null);
    assert.ok((await h.api.get('/api/v1/projects/pubq')).body.storage.limitBytes > 0);
    // The owner sees the project's storage (their own project's numbers, nobody else's).
    assert.equal((await owner.get('/api/v1/projects/qproj')).body.storage.limitBytes, 2 * 1024 ** 3);
    const bad = await h.api.patch('/api/v1/projects/qproj').send({ storageLimitBytes: 1000 });
    assert.equal(bad.status, 400);
    assert.match(JSON.stringify(bad.body), /at least 1 MiB/);
    assert.equal((await storage('qproj')).ownLimitBytes, null);
  });

  it('a commit over the limit is refused before it is accepted, with the numbers in what svn prints', async () => {
    const limit = await limitTo('qproj', 3 * MiB);
    const ok = await commitRandom('qproj', 'quinn', 'one.bin', 1 * MiB);
    assert.equal(ok.code, 0, ok.stderr);
    const youngest = async () => Number((await svn(['info', '--show-item', 'revision', h.svnUrl('qproj')], creds('quinn'))).stdout.trim());
    const before = await youngest();
    const big = await commitRandom('qproj', 'quinn', 'two.bin', 3 * MiB);
    assert.notEqual(big.code, 0, 'the commit over the limit passed');
    assert.match(big.stderr, /pre-commit hook/);
    const gib = (limit / 1024 ** 2).toFixed(1);
    assert.match(
      big.stderr,
      new RegExp(`project qproj is over its ${gib.replace('.', '\\.')} MiB storage limit: [0-9.]+ MiB used with this commit`),
    );
    assert.equal(await youngest(), before, 'a refused commit made a revision');
    // The refused transaction is gone: it no longer counts against the project.
    const repo = path.join(layout(h.cfg).svnRoot, 'qproj');
    assert.deepEqual(
      fs.readdirSync(path.join(repo, 'db', 'txn-protorevs')).filter((n) => n.endsWith('.rev')),
      [],
    );
  });

  it('over the limit, reads and a commit that only deletes still work; the owner sees the warning', async () => {
    await settled();
    const used = (await storage('qproj')).usedBytes;
    // The operator lowers the limit under what the project holds.
    const r = await h.api.patch('/api/v1/projects/qproj').send({ storageLimitBytes: Math.max(MiB, used - 256 * 1024) });
    assert.equal(r.status, 200);
    await until('quota file', () => quotaLine('qproj').startsWith(`${Math.max(MiB, used - 256 * 1024)} `));
    const st = await storage('qproj');
    assert.equal(st.warning, 'over');
    const small = await commitRandom('qproj', 'quinn', 'small.txt', 100);
    assert.notEqual(small.code, 0, 'an adding commit passed over the limit');
    assert.match(small.stderr, /storage limit/);
    // Trac takes no new ticket either (a read still works).
    const ticket = await req('POST', `${h.tracUrl('qproj')}/newticket`, {
      creds: creds('quinn'),
      cookie: formCookie,
      form: { __FORM_TOKEN: FORM_TOKEN, field_summary: 'one more', field_description: 'text', submit: 'Create ticket' },
    });
    assert.match(ticket.body, /Project qproj is over its [0-9.]+ MiB storage limit/);
    assert.equal((await req('GET', `${h.tracUrl('qproj')}/report`, { creds: creds('quinn') })).status, 200);
    const cat = await svn(['cat', `${h.svnUrl('qproj')}/trunk/one.bin`], creds('quinn'));
    assert.equal(cat.code, 0, cat.stderr);
    // No new locks either (a lock is stored outside any revision).
    const lock = await svn(['lock', '-m', 'mine', `${h.svnUrl('qproj')}/trunk/one.bin`], creds('quinn'));
    assert.notEqual(lock.code, 0, 'a lock was taken over the limit');
    assert.match(lock.stderr, /over its [0-9.]+ MiB storage limit: [0-9.]+ MiB used; no new locks/);
    // A delete that carries a large log message is no delete-only commit: refused.
    const msg = path.join(os.tmpdir(), `msg-${process.pid}`);
    fs.writeFileSync(msg, 'x'.repeat(300 * 1024));
    const fat = await svn(['rm', '-F', msg, `${h.svnUrl('qproj')}/trunk/one.bin`], creds('quinn'));
    fs.rmSync(msg);
    assert.notEqual(fat.code, 0, 'a delete carrying 300 KiB of message passed over the limit');
    const rm = await svn(['rm', '-m', 'make room', `${h.svnUrl('qproj')}/trunk/one.bin`], creds('quinn'));
    assert.equal(rm.code, 0, rm.stderr);
    // Back to the default: commits are taken again.
    const back = await h.api.patch('/api/v1/projects/qproj').send({ storageLimitBytes: null });
    assert.equal(back.status, 200);
    assert.equal(back.body.storage.ownLimitBytes, null);
    await until('quota file back to default', () => quotaLine('qproj').startsWith('default '));
    const again = await commitRandom('qproj', 'quinn', 'again.txt', 100);
    assert.equal(again.code, 0, again.stderr);
  });

  it('commits racing for the last bytes cannot take the project past its limit; racing commits that fit all pass', async () => {
    const size = 1536 * 1024;
    const limit = await limitTo('race', 3 * MiB);
    // Four commits of 1.5 MiB for 3 MiB of room. Each hook counts every transaction in flight, so
    // whichever runs while the others' data is uploaded refuses itself: none can pass unseen.
    const results = await Promise.all([1, 2, 3, 4].map((n) => commitRandom('race', 'rae', `r${n}.bin`, size)));
    const passed = results.filter((r) => r.code === 0).length;
    for (const r of results) if (r.code !== 0) assert.match(r.stderr, /project race is over its [0-9.]+ MiB storage limit/, r.stderr);
    assert.ok(passed <= 2, `${passed} of 4 commits of 1.5 MiB passed with 3 MiB of room`);
    await settled();
    const used = await until('measured after the race', async () => {
      const s = await storage('race');
      return s.measuredAt ? s.usedBytes : undefined;
    });
    assert.ok(used <= limit + size, `used ${used} with a limit of ${limit}: over by more than one commit (${size})`);
    // Two commits that fit together both pass, racing or not.
    await limitTo('race', 3 * MiB);
    const fit = await Promise.all([5, 6].map((n) => commitRandom('race', 'rae', `r${n}.bin`, 1 * MiB)));
    for (const r of fit) assert.equal(r.code, 0, r.stderr);
    // The full measure agrees with the incremental one within a little.
    await settled();
    const incremental = await until('measured after the fitting commits', async () => {
      const s = await storage('race');
      return s.usedBytes >= used + 2 * MiB ? s.usedBytes : undefined;
    });
    const full = (await h.run.reconciler.usage.refresh('race', { full: true }))!;
    assert.ok(
      Math.abs(full.repo_bytes + full.trac_bytes - incremental) < 256 * 1024,
      `${full.repo_bytes + full.trac_bytes} vs ${incremental}`,
    );
  });

  it('Trac refuses an attachment that would take the project over its limit, and takes one that fits', async () => {
    await limitTo('qproj', 512 * 1024);
    const url = `${h.tracUrl('qproj')}/attachment/wiki/WikiStart/?action=new`;
    const upload = async (name: string, bytes: number) => {
      const form = new FormData();
      form.set('__FORM_TOKEN', FORM_TOKEN);
      form.set('action', 'new');
      form.set('realm', 'wiki');
      form.set('id', 'WikiStart');
      form.set('description', '');
      form.set('attachment', new Blob([crypto.randomBytes(bytes)]), name);
      const c = creds('quinn');
      const r = await fetch(url, {
        method: 'POST',
        body: form,
        redirect: 'manual',
        headers: { cookie: formCookie, authorization: 'Basic ' + Buffer.from(`${c.user}:${c.password}`).toString('base64') },
      });
      return { status: r.status, body: await r.text() };
    };
    const big = await upload('big.bin', 1 * MiB);
    assert.match(big.body, /Project qproj is over its [0-9.]+ MiB storage limit: [0-9.]+ (MiB|KiB) used, and this change adds 1\.0 MiB/);
    const attachments = path.join(layout(h.cfg).tracRoot, 'qproj', 'files', 'attachments');
    const stored = fs.existsSync(attachments) ? fs.readdirSync(attachments, { recursive: true }).map(String) : [];
    assert.ok(!stored.some((p) => p.endsWith('big.bin')), `the refused file was stored: ${stored}`);
    const small = await upload('small.txt', 10 * 1024);
    assert.equal(small.status, 303, small.body.slice(0, 500));
  });

  it('abandoned uploads are removed: untouched for a day by the nightly measure, idle for 10 minutes when they take the project over its limit', async () => {
    const repo = path.join(layout(h.cfg).svnRoot, 'race');
    const begin = () =>
      execFileSync('/usr/bin/python3', [
        '-c',
        'import sys, svn.repos, svn.fs; f = svn.repos.fs(svn.repos.open(sys.argv[1])); print(svn.fs.txn_name(svn.fs.begin_txn(f, svn.fs.youngest_rev(f))).decode())',
        repo,
      ])
        .toString()
        .trim();
    const old = begin();
    const fresh = begin();
    const day = new Date(Date.now() - 25 * 3_600_000);
    fs.utimesSync(path.join(repo, 'db', 'transactions', `${old}.txn`), day, day);
    fs.utimesSync(path.join(repo, 'db', 'txn-protorevs', `${old}.rev`), day, day);
    assert.deepEqual(await removeStaleTransactions(repo), [old]);
    const left = execFileSync('svnadmin', ['lstxns', repo]).toString().split('\n').filter(Boolean);
    assert.deepEqual(left, [fresh]);
    // Over its limit with its uploads counted, a project loses those idle for 10 minutes within a
    // minute (the upload sweep); the same upload still being written stays.
    const parked = begin();
    fs.appendFileSync(path.join(repo, 'db', 'txn-protorevs', `${parked}.rev`), crypto.randomBytes(2 * MiB));
    fs.appendFileSync(path.join(repo, 'db', 'txn-protorevs', `${fresh}.rev`), crypto.randomBytes(2 * MiB));
    const idle = new Date(Date.now() - 11 * 60_000);
    fs.utimesSync(path.join(repo, 'db', 'transactions', `${parked}.txn`), idle, idle);
    fs.utimesSync(path.join(repo, 'db', 'txn-protorevs', `${parked}.rev`), idle, idle);
    await limitTo('race', MiB);
    assert.deepEqual(await h.run.reconciler.usage.sweepUploads(), ['race']);
    assert.deepEqual(execFileSync('svnadmin', ['lstxns', repo]).toString().split('\n').filter(Boolean), [fresh]);
    // Under its limit nothing is swept, however idle.
    await h.api.patch('/api/v1/projects/race').send({ storageLimitBytes: null });
    fs.utimesSync(path.join(repo, 'db', 'transactions', `${fresh}.txn`), idle, idle);
    fs.utimesSync(path.join(repo, 'db', 'txn-protorevs', `${fresh}.rev`), idle, idle);
    assert.deepEqual(await h.run.reconciler.usage.sweepUploads(), []);
    execFileSync('svnadmin', ['rmtxns', repo, fresh]);
  });

  it('a lock comment (stored outside any revision) is held to 4096 bytes; an ordinary lock works', async () => {
    const url = `${h.svnUrl('qproj')}/trunk/again.txt`;
    const long = await svn(['lock', '-m', 'x'.repeat(5000), url], creds('quinn'));
    assert.notEqual(long.code, 0, 'a 5000-byte lock comment was stored');
    assert.match(long.stderr, /a lock comment may be at most 4096 bytes/);
    const ok = await svn(['lock', '-m', 'editing', url], creds('quinn'));
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal((await svn(['unlock', url], creds('quinn'))).code, 0);
  });

  it('Apache refuses a request body over its limit (KEELSON_MAX_REQUEST_BYTES)', async () => {
    await h.api.patch('/api/v1/projects/race').send({ storageLimitBytes: null });
    await until('quota file back to default', () => quotaLine('race').startsWith('default '));
    const r = await commitRandom('race', 'rae', 'huge.bin', 7 * MiB);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /413|Request Entity Too Large|too large/i);
  });
});

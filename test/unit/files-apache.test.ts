import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { layout, loadConfig } from '../../src/config.js';
import {
  apachePaths,
  publishApacheConfig,
  remoteIpProxies,
  renderApacheConfig,
  renderPublicOrigin,
} from '../../src/files/apache/config.js';
import { publishTracWsgi, renderTracWsgi } from '../../src/files/apache/wsgi.js';
import { freePort, tempDataDir } from '../helpers/host.js';

/**
 * Apache's httpd.conf and trac.wsgi have one writer each (src/files/apache/), which has the real
 * tool check a rendering first (`apache2 -t -f <temporary file>`; Python's compiler): a refused
 * rendering leaves the live file byte for byte as it was.
 */
describe('generated files: Apache configuration (apache2 -t) and trac.wsgi (Python) checked before publishing', () => {
  async function setup() {
    const dataDir = tempDataDir('files-apache');
    const cfg = loadConfig({ KEELSON_DATA_DIR: dataDir, KEELSON_APACHE_PORT: String(await freePort()) });
    const l = layout(cfg);
    for (const d of ['run', 'logs', 'htdocs']) fs.mkdirSync(path.join(l.apacheDir, d), { recursive: true });
    return { dataDir, cfg, l, p: apachePaths(l) };
  }
  const leftovers = (dir: string, keep: string[]) => fs.readdirSync(dir).filter((f) => !keep.includes(f));

  it('httpd.conf: the rendering passes apache2 -t and is published; unchanged bytes are not rewritten', async () => {
    const { dataDir, cfg, l, p } = await setup();
    try {
      const text = renderApacheConfig(cfg, l, { runAsUser: process.getuid?.() === 0 });
      assert.equal(await publishApacheConfig(p.conf, text), true);
      assert.equal(fs.readFileSync(p.conf, 'utf8'), text);
      assert.equal(fs.statSync(p.conf).mode & 0o777, 0o644);
      assert.equal(await publishApacheConfig(p.conf, text), false);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('httpd.conf: a rendering apache2 -t refuses is not published and the live file stays', async () => {
    const { dataDir, cfg, l, p } = await setup();
    try {
      const good = renderApacheConfig(cfg, l, { runAsUser: process.getuid?.() === 0 });
      await publishApacheConfig(p.conf, good);
      const before = fs.readFileSync(p.conf);
      for (const [bad, why] of [
        [good + 'NoSuchDirective on\n', /Invalid command 'NoSuchDirective'/],
        [good.replace('<Location /svn>', '<Location /svn'), /Location/],
        [good.replace('/usr/lib/apache2/modules/mod_dav_svn.so', '/nonexistent/mod_nothing.so'), /mod_nothing/],
      ] as const) {
        await assert.rejects(publishApacheConfig(p.conf, bad), why);
        assert.ok(fs.readFileSync(p.conf).equals(before), 'the live httpd.conf changed');
      }
      assert.deepEqual(leftovers(l.apacheDir, ['httpd.conf', 'run', 'logs', 'htdocs']), [], 'a temporary file was left behind');
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('trac.wsgi: published when Python compiles it; a rendering with a syntax error is refused and the live file stays', async () => {
    const { dataDir, cfg, l, p } = await setup();
    try {
      const good = renderTracWsgi(l, cfg.trac);
      assert.equal(await publishTracWsgi(p.wsgi, good, cfg.python), true);
      assert.equal(fs.readFileSync(p.wsgi, 'utf8'), good);
      assert.equal(await publishTracWsgi(p.wsgi, good, cfg.python), false);
      const before = fs.readFileSync(p.wsgi);
      await assert.rejects(publishTracWsgi(p.wsgi, good + '\ndef broken(:\n', cfg.python), /SyntaxError/);
      assert.ok(fs.readFileSync(p.wsgi).equals(before), 'the live trac.wsgi changed');
      assert.deepEqual(leftovers(l.apacheDir, ['trac.wsgi', 'run', 'logs', 'htdocs']), [], 'a temporary file was left behind');
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('behind a proxy: only the configured public origin is rewritten, the rendering passes apache2 -t, and a public URL that could break out of it is refused', async () => {
    const dataDir = tempDataDir('files-apache-public');
    try {
      const port = await freePort();
      const base = { KEELSON_DATA_DIR: dataDir, KEELSON_APACHE_PORT: String(port) };
      assert.equal(renderPublicOrigin(loadConfig(base)), '', 'no proxy: nothing to rewrite');
      const cfg = loadConfig({ ...base, KEELSON_PUBLIC_URL: 'https://code.example.org/' });
      const text = renderPublicOrigin(cfg);
      const expected =
        String.raw`RequestHeader edit Destination "(?i)^https://code\.example\.org(:443)?/" "http://127.0.0.1:` + `${port}/"`;
      assert.ok(text.split('\n').includes(expected), text);
      const l = layout(cfg);
      for (const d of ['run', 'logs', 'htdocs']) fs.mkdirSync(path.join(l.apacheDir, d), { recursive: true });
      assert.equal(await publishApacheConfig(apachePaths(l).conf, renderApacheConfig(cfg, l, { runAsUser: false })), true);
      for (const bad of [
        'https://a"b.org',
        'https://code.example.org/x y',
        'ftp://code.example.org',
        'https://code.example.org/$1',
        'https://[::1]',
      ])
        assert.throws(() => loadConfig({ ...base, KEELSON_PUBLIC_URL: bad }), /KEELSON_PUBLIC_URL must look like/, bad);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it("behind a proxy Keelson trusts: Apache takes the client's address from X-Forwarded-For of those proxies only, and the rendering passes apache2 -t", async () => {
    const dataDir = tempDataDir('files-apache-remoteip');
    try {
      const base = { KEELSON_DATA_DIR: dataDir, KEELSON_APACHE_PORT: String(await freePort()) };
      assert.equal(remoteIpProxies(loadConfig(base)), null, 'no proxy trusted: the connection is the client');
      assert.equal(remoteIpProxies(loadConfig({ ...base, KEELSON_TRUST_PROXY: '2' })), null, 'a hop count names no address');
      assert.deepEqual(remoteIpProxies(loadConfig({ ...base, KEELSON_TRUST_PROXY: 'loopback, 10.1.2.3' })), [
        '127.0.0.0/8',
        '::1',
        '10.1.2.3',
      ]);
      const cfg = loadConfig({ ...base, KEELSON_TRUST_PROXY: 'loopback' });
      const l = layout(cfg);
      const text = renderApacheConfig(cfg, l, { runAsUser: false });
      assert.ok(text.split('\n').includes('RemoteIPHeader X-Forwarded-For'), text);
      assert.ok(text.split('\n').includes('RemoteIPInternalProxy 127.0.0.0/8 ::1'), text);
      assert.match(text, /^LogFormat ".* %D %\{c\}a" keelson$/m, 'the peer itself is logged too');
      for (const d of ['run', 'logs', 'htdocs']) fs.mkdirSync(path.join(l.apacheDir, d), { recursive: true });
      assert.equal(await publishApacheConfig(apachePaths(l).conf, text), true);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

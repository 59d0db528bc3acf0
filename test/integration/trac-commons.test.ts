import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { layout, startHost, type TestHost } from '../helpers/host.js';
import { pageP50, p50Under, timedGet } from '../helpers/flood.js';
import {
  daemonPids,
  floods,
  freshDaemons as freshDaemonsOf,
  FORM_TOKEN,
  formCookie,
  plantAttacks,
  req,
  rssBytes,
  type Planted,
} from '../helpers/trac-attacks.js';

/**
 * The Trac daemon every tenant shares, attacked as in the issue: an owner's report that makes
 * Python hold gigabytes, an anonymous flood of one project's slow report, a 57-byte wiki page that
 * holds a Pygments regex for half a minute, a huge changeset, anonymous session writes, downloads
 * without the sandbox. Each replays the attack on the real stack and measures what another
 * tenant's own page (a signed-in member of a private project) costs meanwhile, against the same
 * page idle in the same run.
 */

/** How far another tenant's page may slow down: 2x its idle p50 (plus 25 ms of timer noise). */
const within2x = (idle: number, under: number) => under <= 2 * idle + 25;

describe('the shared Trac daemon: no request takes more than its share', () => {
  let h: TestHost;
  let p: Planted;
  let idle = 0;
  let idleAnon = 0;
  const victim = () => p.victim;
  const evil = (u: string) => p.evil(u);
  const flood = (name: string) => floods(p).find((x) => x.name === name)!;

  const freshDaemons = () => freshDaemonsOf(h, p);

  before(async () => {
    // Reports may run 3 s here (10 by default), so a flood of them is quick to set up.
    h = await startHost('trac-commons', {}, { KEELSON_TRAC_REPORT_SECONDS: '3' });
    p = await plantAttacks(h, { paths: 5000 });
    // The victim's page, idle, in this same run (warmed up first).
    await pageP50(victim().url, victim().creds, 5);
    idle = await pageP50(victim().url, victim().creds, 20);
    await pageP50(p.bystander.url, undefined, 5);
    idleAnon = await pageP50(p.bystander.url, undefined, 20);
  });

  after(async () => {
    await h?.stop();
    p?.cleanup();
  });

  it("a report of huge values cannot make a daemon process hold them, and the daemons' memory has a ceiling", async (t) => {
    const pids = daemonPids(h);
    assert.ok(pids.length >= 4, `daemon processes: ${pids.join(',')}`);
    for (const pid of pids) {
      const limits = fs.readFileSync(`/proc/${pid}/limits`, 'utf8');
      assert.match(limits, new RegExp(`Max data size\\s+${h.cfg.trac.processMemoryBytes}\\s+${h.cfg.trac.processMemoryBytes}`));
    }
    const before = Math.max(...pids.map(rssBytes));
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, ...daemonPids(h).map(rssBytes))), 50);
    try {
      for (const [name, fmt] of [
        ['blobs', 'csv'],
        ['many', 'csv'],
        ['many', 'tab'],
        ['blobs', 'html'],
      ] as const) {
        const r = await req('GET', evil(`/report/${p.reports[name]}?format=${fmt}&max=100000`));
        // Trac reports the refusal on the page; the values themselves never arrive.
        assert.ok(r.body.length < 1_000_000, `${name} as ${fmt} returned ${r.body.length} bytes`);
        assert.match(r.body, /string or blob too big|more than Keelson allows/, `${name} ${fmt}: ${r.body.slice(0, 300)}`);
      }
    } finally {
      clearInterval(sampler);
    }
    t.diagnostic(`daemon RSS: ${Math.round(before / 1048576)} MB before, ${Math.round(peak / 1048576)} MB at most while the reports ran`);
    // Unbounded, one such report took a process from 70 MB to 1.8 GB.
    assert.ok(peak < 300 * 1048576, `a daemon process reached ${Math.round(peak / 1048576)} MB`);
  });

  it('the 57-byte highlighter input answers within the highlight limit, and at once the second time', async (t) => {
    const one = await timedGet(evil('/wiki/ReDos'));
    assert.equal(one.status, 200);
    t.diagnostic(`one GET of the wiki page: ${one.ms.toFixed(0)} ms (34 s in-process before)`);
    assert.ok(one.ms < (h.cfg.trac.highlightSeconds + 3) * 1000, `the page took ${one.ms.toFixed(0)} ms`);
    // Each of the two anonymous daemon processes runs out of time on it at most once; after that
    // the input is shown plain at once, one request after another.
    const times: number[] = [];
    for (let i = 0; i < 8; i++) {
      const r = await timedGet(evil('/wiki/ReDos'));
      assert.equal(r.status, 200);
      times.push(r.ms);
    }
    t.diagnostic(`the same page again: ${times.map((x) => x.toFixed(0)).join(', ')} ms`);
    assert.ok(times.filter((x) => x > 1000).length <= 1, `the remembered input took ${times.join(', ')} ms`);
    assert.ok(
      times.slice(-4).every((x) => x < 500),
      `the remembered input took ${times.join(', ')} ms`,
    );
    const file = await req('GET', evil('/browser/trunk/evil.scala'));
    assert.equal(file.status, 200);
    assert.ok(file.body.includes('\\\\'), 'the file is shown (as plain text)');
  });

  it('a 5,000-path changeset lists 1,000 paths', async () => {
    const page = await req('GET', evil(`/changeset/${p.hugeRev}`));
    assert.equal(page.status, 200);
    assert.match(page.body, /only the first 1000 are shown/);
    const listed = new Set(page.body.match(/f\d+\.txt/g) ?? []);
    assert.ok(listed.size > 100 && listed.size <= 1000, `the page lists ${listed.size} of the 5,000 files`);
  });

  /**
   * Each flood from its own process against fresh daemons (a graceful restart: the payers' budgets
   * start empty), measured after its first 4 s, at about a thousand requests a second from a client
   * on the same two cores. Trac turns nearly all of them away, but Apache and the daemons must still
   * read and answer each: that cost is HTTP's (per-address limits at the front are the next
   * issue's), so the flood is run twice, at the attacker's pages and at a URL Trac answers without
   * any work, and another tenant's page (a signed-in member of a private project) is held within 2x
   * of the second: what the attacker gets of Trac costs it at most as much again. Against idle it
   * is printed and held to 4x (before the bounds: 9.4 s against 0.1 s for the report flood). The
   * anonymous view of another public project, which shares the anonymous daemons, is printed.
   */
  for (const name of ['slow report', 'highlighted pages', 'huge changeset', 'signed-in, three projects']) {
    it(`flood of the attacker's ${name}: another tenant's page within 2x of the flood's own HTTP cost`, async (t) => {
      const f = flood(name);
      const victims = [victim(), p.bystander];
      await freshDaemons();
      let peak = 0;
      const sampler = setInterval(() => (peak = Math.max(peak, ...daemonPids(h).map(rssBytes))), 100);
      const under = await p50Under(victims, f, { samples: 30 }).finally(() => clearInterval(sampler));
      await freshDaemons();
      const nul = await p50Under(victims, { ...f, urls: [h.tracUrl('no-such-project') + '/wiki'] }, { samples: 30 });
      const ms = (x: number) => `${x.toFixed(1)} ms`;
      t.diagnostic(
        `member: idle ${ms(idle)}, under the flood ${ms(under.p50s[0]!)} (${(under.p50s[0]! / idle).toFixed(2)}x idle), ` +
          `under the same flood of a URL Trac answers without work ${ms(nul.p50s[0]!)}; anonymous bystander: idle ${ms(idleAnon)}, ` +
          `under the flood ${ms(under.p50s[1]!)}, null flood ${ms(nul.p50s[1]!)}; flood answers ${JSON.stringify([...under.counts])}; ` +
          `daemon RSS at most ${Math.round(peak / 1048576)} MB`,
      );
      const baseline = Math.max(idle, nul.p50s[0]!);
      assert.ok(within2x(baseline, under.p50s[0]!), `member: ${ms(under.p50s[0]!)} under the flood, ${ms(baseline)} baseline`);
      assert.ok(under.p50s[0]! <= 4 * idle + 50, `member: ${ms(under.p50s[0]!)} under the flood, ${ms(idle)} idle`);
      assert.ok((under.counts.get(503) ?? 0) > 0, 'the flood was never turned away');
      // Listing every path, one GET of a 20,000-path changeset took a daemon process from 56 to 385 MB.
      assert.ok(peak < 300 * 1048576, `a daemon process reached ${Math.round(peak / 1048576)} MB`);
    });
  }

  it('anonymous visitors never write into trac.db; signed-in session values are bounded', async () => {
    const db = () => new Database(path.join(layout(h.cfg).tracRoot, 'evil', 'db', 'trac.db'), { readonly: true });
    const count = (sql: string) => {
      const d = db();
      try {
        return d.prepare(sql).pluck().get() as number;
      } finally {
        d.close();
      }
    };
    for (let i = 0; i < 5; i++) {
      // A fresh visitor each time (no trac_session cookie): stock Trac stores a session per POST.
      const r = await req('POST', evil('/prefs'), {
        cookie: formCookie,
        form: { __FORM_TOKEN: FORM_TOKEN, action: 'save', name: 'x'.repeat(100_000), email: 'a@example.com' },
      });
      assert.ok(r.status === 303 || r.status === 302, `prefs answered ${r.status}`);
    }
    assert.equal(count(`SELECT count(*) FROM session WHERE authenticated = 0`), 0);
    assert.equal(count(`SELECT count(*) FROM session_attribute WHERE authenticated = 0`), 0);
    const r = await req('POST', evil('/prefs'), {
      creds: p.f.creds('mal'),
      cookie: formCookie,
      form: { __FORM_TOKEN: FORM_TOKEN, action: 'save', name: 'y'.repeat(100_000), email: 'mal@example.com' },
    });
    assert.ok(r.status === 303 || r.status === 302, `prefs answered ${r.status}`);
    // The small value is kept (the save happened), the 100 kB one is not.
    assert.equal(count(`SELECT count(*) FROM session_attribute WHERE sid = 'mal' AND name = 'email' AND value = 'mal@example.com'`), 1);
    assert.ok(count(`SELECT coalesce(max(length(value)), 0) FROM session_attribute`) <= 16 * 1024);
  });

  it('every download under /trac/ is sandboxed, whatever its URL spelling', async () => {
    const urls = [
      '/attachment/wiki/WikiStart/x.html?format=raw',
      '/attachment/wiki/WikiStart/x.html?form%61t=raw',
      '/attachment/wiki/WikiStart/x.html?%66ormat=raw',
      '/raw-attachment/wiki/WikiStart/x.html',
      '/zip-attachment/wiki/WikiStart/',
      '/browser/trunk/x.html?format=raw',
      '/browser/trunk/x.html?form%61t=raw',
      '/browser/trunk/x.html?format=txt',
      '/export/HEAD/trunk/x.html',
      `/changeset/${p.hugeRev}?format=diff`,
      '/report/1?format=csv',
      '/timeline?format=rss',
    ];
    for (const u of urls) {
      const r = await req('GET', evil(u));
      assert.equal(r.status, 200, `${u}: ${r.status}`);
      const type = String(r.headers['content-type'] ?? '');
      assert.ok(!type.startsWith('text/html') || r.headers['content-disposition'], `${u} is an HTML page: ${type}`);
      assert.match(String(r.headers['content-security-policy'] ?? ''), /sandbox/, `${u} (${type}) without the sandbox`);
    }
    // Trac's own pages are not sandboxed (their forms and scripts work).
    const page = await req('GET', evil('/wiki/WikiStart'));
    assert.equal(page.status, 200);
    assert.equal(page.headers['content-security-policy'], undefined);
  });
});

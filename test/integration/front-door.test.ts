import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { execFileSync } from 'node:child_process';
import { http, startHost, svn, type TestHost } from '../helpers/host.js';
import { fixtures } from '../helpers/fixtures.js';
import { median } from '../helpers/flood.js';
import { webhook } from '../helpers/webhook.js';
import { apacheCheck } from '../../src/main/serve.js';
import { apachePaths } from '../../src/files/apache/config.js';
import { layout } from '../../src/config.js';

/**
 * Apache's front door (issue 17, first part), attacked as reproduced: 150 anonymous connections
 * that send a request line and then one header every 10 s held all 100 request workers (Timeout
 * 300, no mod_reqtimeout), every tenant's `svn info` and Trac page timed out, and the health check
 * then ran a graceful restart of the busy Apache that could not get scoreboard slots.
 */
describe("Apache's front door: slow clients hold no worker for long; a busy Apache is reported, never restarted", () => {
  let h: TestHost;
  let f: ReturnType<typeof fixtures>;
  let hook: Awaited<ReturnType<typeof webhook>>;

  before(async () => {
    hook = await webhook();
    h = await startHost('front-door', {}, { KEELSON_ALERT_WEBHOOK: hook.url });
    f = fixtures(h);
    await f.user('alice');
    await f.project('victim', 'alice');
  });
  after(async () => {
    await h?.stop();
    hook?.close();
  });

  /** One slow client: a request line, then a header every `everyMs`; resolves when Apache closes it. */
  const slowClient = (everyMs: number) => {
    const t0 = Date.now();
    const s = net.connect(h.cfg.apachePort, h.cfg.apacheHost);
    let timer: NodeJS.Timeout | undefined;
    const closed = new Promise<number>((resolve) => {
      s.on('close', () => {
        clearInterval(timer);
        resolve(Date.now() - t0);
      });
      s.on('error', () => {});
    });
    // Read what Apache sends (its 408), so its closing the connection is seen when it happens.
    s.resume();
    s.on('connect', () => {
      s.write('GET /trac/victim/wiki HTTP/1.1\r\nHost: x\r\n');
      timer = setInterval(() => s.write('X-Slow: 1\r\n'), everyMs);
    });
    return { closed, destroy: () => (clearInterval(timer), s.destroy()) };
  };

  const victimTimes = async (n: number) => {
    const svnMs: number[] = [];
    const tracMs: number[] = [];
    for (let i = 0; i < n; i++) {
      let t0 = Date.now();
      const r = await svn(['info', '--depth', 'empty', h.svnUrl('victim')], f.creds('alice'));
      assert.equal(r.code, 0, r.stderr);
      svnMs.push(Date.now() - t0);
      t0 = Date.now();
      assert.equal((await http(`${h.tracUrl('victim')}/wiki`, f.creds('alice'))).status, 200);
      tracMs.push(Date.now() - t0);
    }
    return { svn: median(svnMs), trac: median(tracMs), worst: Math.max(...svnMs, ...tracMs) };
  };

  it('150 slow connections: another tenant keeps working, each slow connection is closed within 25 s, the health check leaves Apache alone', async (t) => {
    const idle = await victimTimes(5);
    const pid = h.run.apache.mainPid();
    const clients = Array.from({ length: 150 }, () => slowClient(10_000));
    try {
      await new Promise((r) => setTimeout(r, 2000));
      const under = await victimTimes(5);
      await apacheCheck(h.run.apache, hook.url)();
      t.diagnostic(
        `victim idle: svn info ${idle.svn} ms, Trac ${idle.trac} ms; with 150 slow connections: svn info ${under.svn} ms, Trac ${under.trac} ms (worst ${under.worst} ms)`,
      );
      // Before: every request timed out (all 100 workers held for as long as the headers kept coming).
      assert.ok(under.worst < 5000, `a victim request took ${under.worst} ms`);
      const closedAfter = await Promise.all(clients.map((c) => c.closed));
      t.diagnostic(`slow connections closed by Apache after ${Math.min(...closedAfter)}-${Math.max(...closedAfter)} ms`);
      assert.ok(Math.max(...closedAfter) < 25_000, `a slow connection lasted ${Math.max(...closedAfter)} ms`);
    } finally {
      for (const c of clients) c.destroy();
    }
    assert.equal(h.run.apache.mainPid(), pid, 'Apache was restarted');
    const errors = fs.readFileSync(apachePaths(layout(h.cfg)).errorLog, 'utf8');
    assert.doesNotMatch(errors, /scoreboard is full/);
  });

  it('a running Apache that does not answer is an alert, not a restart; one whose process is gone is started again', async () => {
    const pid = h.run.apache.mainPid()!;
    // Every process of this Apache stopped: running, not answering.
    const pids = [
      pid,
      ...execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
        .trim()
        .split('\n')
        .map(Number),
    ];
    for (const p of pids) process.kill(p, 'SIGSTOP');
    try {
      await apacheCheck(h.run.apache, hook.url)();
    } finally {
      for (const p of pids) process.kill(p, 'SIGCONT');
    }
    assert.equal(h.run.apache.mainPid(), pid, 'a busy Apache was restarted');
    assert.ok(
      hook.alerts.some((a) => a.event === 'apache.unresponsive'),
      JSON.stringify(hook.alerts),
    );
    assert.equal((await http(`${h.tracUrl('victim')}/wiki`, f.creds('alice'))).status, 200);
    // Gone: the check starts it again.
    await h.run.apache.stop();
    assert.equal(h.run.apache.mainPid(), undefined);
    await apacheCheck(h.run.apache, hook.url)();
    assert.ok(h.run.apache.mainPid());
    const r = await svn(['info', '--depth', 'empty', h.svnUrl('victim')], f.creds('alice'));
    assert.equal(r.code, 0, r.stderr);
  });
});

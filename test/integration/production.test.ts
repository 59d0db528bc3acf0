/**
 * Issue 19, the production install: the README's Production section run as written, by root, on a
 * Debian whose PID 1 is systemd (test/helpers/systemd-box.ts: an overlay of this machine with its
 * own loopback), with two host names (hosting.test for the web UI and API, code.test for
 * Subversion and Trac) and certificates from a CA the test makes. Then everything an operator
 * relies on: the install run twice changes nothing; systemd's verifier passes the unit; the web UI
 * on one name links to the other; svn move and copy, a moved working copy, lock and Trac over
 * https://code.test; Keelson bounded to its capabilities; a restart while projects are being
 * provisioned loses none; logrotate; a port in use and a closed data directory refused at start
 * with one line; stop; uninstall keeps the data and a new install serves the same projects.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PROJECT_ROOT } from '../../src/paths.js';
import { makeCa } from '../helpers/tls.js';
import { bootBox, type Box } from '../helpers/systemd-box.js';

const WEB = 'hosting.test';
const CODE = 'code.test';
const INSTALL = [
  '/opt/keelson/scripts/production/install.sh',
  '--web-host',
  WEB,
  '--code-host',
  CODE,
  '--web-cert',
  '/srv/keelson-test/server.pem',
  '--web-key',
  '/srv/keelson-test/server.key',
  '--code-cert',
  '/srv/keelson-test/server.pem',
  '--code-key',
  '/srv/keelson-test/server.key',
  '--backups',
  '/var/backups/keelson',
];
const MANAGED = [
  '/etc/systemd/system/keelson.service',
  '/etc/systemd/system/keelson-web.service',
  '/etc/keelson/keelson.env',
  '/etc/logrotate.d/keelson',
  '/etc/apache2/sites-available/keelson.conf',
];
const ALICE = { user: 'alice', password: 'correct-horse-battery-9137', accessToken: '' };
// CAP_CHOWN 0, CAP_DAC_OVERRIDE 1, CAP_DAC_READ_SEARCH 2, CAP_FOWNER 3, CAP_KILL 5, CAP_SETGID 6, CAP_SETUID 7
const CAPS = (1n << 0n) | (1n << 1n) | (1n << 2n) | (1n << 3n) | (1n << 5n) | (1n << 6n) | (1n << 7n);

describe('production install on systemd, two host names behind TLS', () => {
  let box: Box;
  let share: string;
  let token: string;
  let firstInstall: string;

  const sh = (script: string, o?: { input?: string; timeoutMs?: number }) => box.ok(['bash', '-c', script], o);
  const mainPid = async (unit = 'keelson') => Number((await box.ok(['systemctl', 'show', '-p', 'MainPID', '--value', unit])).trim());
  /** curl inside the box, the test CA trusted system-wide as an operator's real CA would be. */
  /** A request's status and where it redirects to, from inside the box. */
  const answer = (args: string[]) => box.ok(['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code} %{redirect_url}', ...args]);
  const curl = (args: string[]) => box.exec(['curl', '-sS', '--max-time', '30', ...args]);
  const api = async (method: string, p: string, body?: unknown) => {
    const r = await curl([
      '-X',
      method,
      '-H',
      `authorization: Bearer ${token}`,
      '-H',
      'content-type: application/json',
      ...(body ? ['--data-binary', JSON.stringify(body)] : []),
      '-w',
      '\n%{http_code}',
      `https://${WEB}/api/v1${p}`,
    ]);
    const i = r.stdout.lastIndexOf('\n');
    return { status: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i) };
  };
  const svn = (args: string[], cwd = '/root') =>
    box.exec(
      ['bash', '-c', 'cd "$0" && exec svn --non-interactive --no-auth-cache --username alice --password-from-stdin "$@"', cwd, ...args],
      {
        input: ALICE.accessToken + '\n',
      },
    );
  const svnOk = async (args: string[], cwd?: string) => {
    const r = await svn(args, cwd);
    assert.equal(r.code, 0, `svn ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  // While the web unit restarts, the proxy in front answers with its own error page: not yet.
  const projectState = async (slug: string) => {
    const r = await api('GET', `/projects/${slug}`);
    return r.status === 200 ? (JSON.parse(r.body) as { state: string }).state : `HTTP ${r.status}`;
  };
  const waitActive = async (slugs: string[]) => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const states = await Promise.all(slugs.map(projectState));
      if (states.every((s) => s === 'active')) return;
      if (Date.now() > deadline) throw new Error(`not active: ${slugs.map((s, i) => `${s}=${states[i]}`).join(' ')}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };

  before(async () => {
    share = fs.mkdtempSync(path.join(os.tmpdir(), 'keelson-prod-'));
    makeCa(share, [WEB, CODE]);
    for (const f of fs.readdirSync(share)) fs.chmodSync(path.join(share, f), 0o644);
    box = await bootBox({ app: PROJECT_ROOT, share, hosts: [WEB, CODE] });
    await sh('cp /srv/keelson-test/ca.pem /usr/local/share/ca-certificates/keelson-test.crt && update-ca-certificates >/dev/null 2>&1');
    const r = await box.exec(INSTALL, { timeoutMs: 300_000 });
    firstInstall = r.stdout + r.stderr;
    if (r.code !== 0)
      firstInstall += (await box.exec(['journalctl', '-u', 'keelson', '-u', 'keelson-web', '--no-pager', '-n', '60'])).stdout;
    assert.equal(r.code, 0, firstInstall);
    // The README's next step: the first admin token, printed once.
    token = (
      await sh('cd /opt/keelson && set -a && . /etc/keelson/keelson.env && set +a && node dist/src/cli/main.js token create --name admin')
    )
      .trim()
      .split('\n')[0]!;
    assert.match(token, /^kt_/);
  });
  after(() => {
    box?.stop();
    if (share) fs.rmSync(share, { recursive: true, force: true });
  });

  it('installs a unit systemd verifies, waits until it answers, and a second run changes nothing', async () => {
    assert.match(firstInstall, /wrote \/etc\/systemd\/system\/keelson\.service/);
    assert.match(firstInstall, /wrote \/etc\/systemd\/system\/keelson-web\.service/);
    assert.match(firstInstall, /starting keelson\.service and keelson-web\.service/);
    assert.equal((await box.ok(['systemctl', 'is-active', 'keelson', 'keelson-web'])).trim(), 'active\nactive');
    const verify = await box.exec([
      'systemd-analyze',
      'verify',
      '/etc/systemd/system/keelson.service',
      '/etc/systemd/system/keelson-web.service',
    ]);
    assert.equal(verify.code, 0, verify.stderr);
    assert.equal(verify.stderr.trim(), '', 'systemd-analyze verify: no warning');
    // Started means ready: the readiness check (ExecStartPost) passed before `systemctl start` returned.
    const health = JSON.parse((await box.ok(['curl', '-sS', `https://${WEB}/api/v1/health`])).trim()) as { ok: boolean };
    assert.equal(health.ok, true);

    const before = { pids: [await mainPid(), await mainPid('keelson-web')], files: await box.ok(['sha256sum', ...MANAGED]) };
    const again = await box.exec(INSTALL, { timeoutMs: 300_000 });
    assert.equal(again.code, 0, again.stderr);
    const lines = again.stdout.trim().split('\n');
    assert.deepEqual(
      lines.filter(
        (l) =>
          !/^keelson install: (unchanged |keelson\.service and keelson-web\.service running|apache2\.service running|done:|first admin token)/.test(
            l,
          ),
      ),
      [],
      'the second run only finds everything as it was',
    );
    assert.deepEqual([await mainPid(), await mainPid('keelson-web')], before.pids, 'neither unit was restarted');
    assert.equal(await box.ok(['sha256sum', ...MANAGED]), before.files);
  });

  it('serves the web UI on one host name and Subversion and Trac on the other, links and cookies as the security model says', async () => {
    const created = await api('POST', '/users', { name: 'alice', email: 'alice@example.org', password: ALICE.password });
    assert.equal(created.status, 201, created.body);
    // Subversion and Trac take the access token (shown once), the web UI the password.
    ALICE.accessToken = (JSON.parse(created.body) as { accessToken: string }).accessToken;
    assert.equal((await api('POST', '/projects', { slug: 'alpha', owner: 'alice', visibility: 'private' })).status, 201);
    await waitActive(['alpha']);

    // Sign in as a browser does, through https://hosting.test.
    const jar = '/root/jar';
    const session = JSON.parse((await box.ok(['curl', '-sS', '-c', jar, '-b', jar, `https://${WEB}/api/v1/session`])).trim()) as {
      csrfToken: string;
    };
    const signin = await box.exec([
      'curl',
      '-sS',
      '-D',
      '-',
      '-o',
      '/dev/null',
      '-c',
      jar,
      '-b',
      jar,
      '-H',
      'content-type: application/json',
      '-H',
      `x-csrf-token: ${session.csrfToken}`,
      '--data-binary',
      JSON.stringify({ username: 'alice', password: ALICE.password }),
      `https://${WEB}/api/v1/session`,
    ]);
    const setCookie = signin.stdout.split('\r\n').filter((l) => /^set-cookie:/i.test(l));
    const sessionCookie = setCookie.find((c) => /__Host-keelson_session=/.test(c));
    assert.ok(sessionCookie, `a __Host- session cookie: ${signin.stdout}`);
    assert.match(sessionCookie, /; Secure/);
    assert.doesNotMatch(sessionCookie, /domain=/i, 'host-only: never sent to the code host');

    const dashboard = await box.ok(['curl', '-sS', '-b', jar, `https://${WEB}/dashboard`]);
    assert.match(dashboard, new RegExp(`https://${CODE}/svn/alpha`), 'the checkout URL names the code host');
    assert.match(dashboard, new RegExp(`https://${CODE}/trac/alpha`), 'the Trac link names the code host');

    // Each host serves only its own part; plain HTTP is redirected; both send HSTS.
    const status = async (args: string[]) => (await box.ok(['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', ...args])).trim();
    assert.equal(await status([`https://${CODE}/api/v1/health`]), '404');
    assert.equal(await status([`https://${WEB}/svn/alpha/`]), '404');
    const redirect = await answer([`http://${CODE}/svn/alpha/?p=1`]);
    assert.equal(redirect, `301 https://${CODE}/svn/alpha/?p=1`);
    for (const h of [WEB, CODE])
      assert.match(await box.ok(['curl', '-sS', '-I', `https://${h}/`]), /strict-transport-security: max-age=31536000/i);
  });

  it('keeps svn move, svn copy, a moved working copy, lock and Trac on https://code.test', async () => {
    const url = `https://${CODE}/svn/alpha`;
    await svnOk(['checkout', url, '/root/wc']);
    await sh('mkdir -p /root/wc/trunk && echo one > /root/wc/trunk/a.txt');
    await svnOk(['add', 'trunk/a.txt'], '/root/wc');
    const ci = await svn(['commit', '-m', 'first'], '/root/wc');
    assert.equal(ci.code, 0, ci.stderr);
    for (const args of [
      ['copy', '-m', 'copy', `${url}/trunk/a.txt`, `${url}/trunk/b.txt`],
      ['move', '-m', 'move', `${url}/trunk/b.txt`, `${url}/trunk/c.txt`],
    ]) {
      const r = await svn(args);
      assert.equal(r.code, 0, `${args[0]}: ${r.stderr}`);
    }
    await svnOk(['update'], '/root/wc');
    await svnOk(['move', 'trunk/c.txt', 'trunk/d.txt'], '/root/wc');
    const mv = await svn(['commit', '-m', 'working-copy move'], '/root/wc');
    assert.equal(mv.code, 0, mv.stderr);
    const lock = await svn(['lock', '-m', 'mine', 'trunk/a.txt'], '/root/wc');
    assert.equal(lock.code, 0, lock.stderr);
    await svnOk(['unlock', 'trunk/a.txt'], '/root/wc');
    const log = await svn(['log', '-v', url]);
    assert.match(log.stdout, /A \/trunk\/d\.txt \(from \/trunk\/c\.txt:\d+\)/);

    // Trac: its sign-in redirects stay on https and the code host.
    const login = await answer(['-u', `alice:${ALICE.accessToken}`, `https://${CODE}/trac/alpha/login`]);
    assert.match(login, new RegExp(`^30[23] https://${CODE}/trac/alpha/?$`));
  });

  it('runs the API and web UI as an unprivileged user with no capability, away from tenant data', async () => {
    const pid = await mainPid('keelson-web');
    const status = await box.ok(['cat', `/proc/${pid}/status`]);
    const uid = (await box.ok(['id', '-u', 'keelson'])).trim();
    const gid = (await box.ok(['id', '-g', 'keelson'])).trim();
    assert.match(status, new RegExp(`^Uid:\\s+${uid}\\s+${uid}\\s+${uid}\\s+${uid}$`, 'm'), 'every uid is keelson');
    assert.equal(BigInt('0x' + status.match(/^CapBnd:\s*([0-9a-f]+)/m)![1]), 0n);
    assert.equal(BigInt('0x' + status.match(/^CapEff:\s*([0-9a-f]+)/m)![1]), 0n);
    assert.match(status, /^NoNewPrivs:\s*1$/m);
    // In its own view of the file system, as its user: the database's directory writable, the data
    // directory read-only, repositories and Trac environments not there at all.
    const asWeb = (script: string) => box.exec(['nsenter', '-t', String(pid), '-m', '-r', '-S', uid, '-G', gid, 'sh', '-c', script]);
    assert.equal((await asWeb('test -w /var/lib/keelson/db/keelson.db')).code, 0, 'the database is writable to it');
    assert.match((await asWeb('touch /var/lib/keelson/quota/probe')).stderr, /Read-only file system|Permission denied/);
    for (const d of ['/var/lib/keelson/svn/alpha', '/var/lib/keelson/trac/alpha'])
      assert.match((await asWeb(`ls ${d}`)).stderr, /Permission denied|No such file/, d);
    for (const d of ['/var/lib/keelson/auth', '/var/lib/keelson/apache/logs', '/var/lib/keelson/spool/commits', '/var/backups/keelson'])
      assert.match((await asWeb(`ls ${d}`)).stderr, /Permission denied|No such file/, d);
    // The database is its to write through the file's group, in a directory root keeps: it can
    // create, rename or replace nothing there (so root never follows a link it planted).
    assert.match((await asWeb('touch /var/lib/keelson/db/probe')).stderr, /Permission denied/);
    // Its wake-up files it may touch, and create nothing beside them.
    assert.equal((await asWeb('touch /var/lib/keelson/run/wake/wake /var/lib/keelson/run/wake/credentials')).code, 0);
    assert.match((await asWeb('mkdir /var/lib/keelson/run/wake/tree')).stderr, /Permission denied/);
    assert.match((await asWeb('ln -s /etc/shadow /var/lib/keelson/db/keelson.db-journal')).stderr, /Permission denied/);
    assert.match((await asWeb('mv /var/lib/keelson/db/keelson.db /var/lib/keelson/db/x')).stderr, /Permission denied/);
    const owners = await box.ok([
      'stat',
      '-c',
      '%U:%G %a %n',
      '/var/lib/keelson/db',
      '/var/lib/keelson/db/keelson.db',
      '/var/lib/keelson/auth',
      '/var/lib/keelson/auth/credentials.db',
      '/var/backups/keelson',
    ]);
    assert.deepEqual(owners.trim().split('\n'), [
      'root:keelson 750 /var/lib/keelson/db',
      'root:keelson 660 /var/lib/keelson/db/keelson.db',
      'root:www-data 750 /var/lib/keelson/auth',
      'root:www-data 640 /var/lib/keelson/auth/credentials.db',
      'root:root 700 /var/backups/keelson',
    ]);
    assert.equal(
      await box.ok(['stat', '-c', '%U:%G %a', '/var/lib/keelson/run/wake', '/var/lib/keelson/run/wake/wake']),
      'root:root 755\nkeelson:keelson 600\n',
    );
  });

  it('applies a credential change the API queues within moments, and restores a backup the API cannot read', async () => {
    // The API writes no credential itself: it tells the worker, which syncs at once (ahead of any
    // queued job). A rotated token stops working, through the code host, this long after the API answered.
    const old = ALICE.accessToken;
    const rotated = await api('POST', '/users/alice/access-token');
    assert.equal(rotated.status, 201, rotated.body);
    const t0 = Date.now();
    ALICE.accessToken = (JSON.parse(rotated.body) as { accessToken: string }).accessToken;
    const status = (token: string) =>
      box.ok(['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', '-u', `alice:${token}`, `https://${CODE}/svn/alpha/`]);
    let ms = -1;
    while (Date.now() - t0 < 5000) {
      if ((await status(old)) === '401') {
        ms = Date.now() - t0;
        break;
      }
    }
    assert.ok(ms >= 0, 'the old token is refused within 5 s');
    assert.equal(await status(ALICE.accessToken), '200');
    console.log(`# the old token refused ${ms} ms after the API answered (each probe a new HTTPS request through the front)`);

    // A full backup, then a restore into a new project through the API, which cannot read the backup.
    assert.equal((await api('POST', '/backups', { project: 'alpha', kind: 'full' })).status, 202);
    let id = 0;
    for (const deadline = Date.now() + 60_000; !id && Date.now() < deadline; await new Promise((r) => setTimeout(r, 300))) {
      const list = (JSON.parse((await api('GET', '/backups?project=alpha')).body) as { backups: { id: number; state: string }[] }).backups;
      id = list.find((b) => b.state === 'verified')?.id ?? 0;
    }
    assert.ok(id, 'a verified backup of alpha');
    const restore = await api('POST', `/backups/${id}/restore`, { to: 'alpha-copy', owner: 'alice' });
    assert.equal(restore.status, 202, restore.body);
    const jobUrl = (JSON.parse(restore.body) as { status: string }).status.replace('/api/v1', '');
    let job: { state: string; lastError?: string | null } = { state: '' };
    for (const deadline = Date.now() + 60_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 300))) {
      job = JSON.parse((await api('GET', jobUrl)).body) as { state: string; lastError?: string | null };
      if (job.state === 'done' || job.state === 'failed') break;
    }
    assert.equal(job.state, 'done', JSON.stringify(job));
    await waitActive(['alpha-copy']);
    assert.match(await svnOk(['log', `https://${CODE}/svn/alpha-copy`]), /working-copy move/);
  });

  it('runs the worker and its Apache bounded: its capabilities only, no new privileges, a read-only system, Apache and Trac as their own users', async () => {
    const pid = await mainPid();
    const status = await box.ok(['cat', `/proc/${pid}/status`]);
    assert.equal(BigInt('0x' + status.match(/^CapBnd:\s*([0-9a-f]+)/m)![1]), CAPS);
    assert.match(status, /^NoNewPrivs:\s*1$/m);
    // Its view of the file system (its own mount namespace): the system read-only, the data writable.
    const sys = await box.exec(['nsenter', '-t', String(pid), '-m', '-r', 'touch', '/usr/lib/keelson-probe']);
    assert.notEqual(sys.code, 0);
    assert.match(sys.stderr, /Read-only file system/);
    const etc = await box.exec(['nsenter', '-t', String(pid), '-m', '-r', 'touch', '/etc/keelson-probe']);
    assert.match(etc.stderr, /Read-only file system/);
    await box.ok(['nsenter', '-t', String(pid), '-m', '-r', 'sh', '-c', 'touch /var/lib/keelson/probe && rm /var/lib/keelson/probe']);
    // Keelson's Apache: its master root (it binds the port and drops to the users), its workers
    // Apache's user, its Trac daemons (mod_wsgi) and the Trac helper the Trac user.
    const ps = (await box.ok(['ps', '-e', '-o', 'user:32=,args='])).split('\n').map((l) => l.trim().split(/\s+/));
    const users = (re: RegExp) => [...new Set(ps.filter((f) => re.test(f.slice(1).join(' '))).map((f) => f[0]))].sort();
    assert.deepEqual(users(/^apache2 -f \/var\/lib\/keelson\/apache\/httpd\.conf/), ['root', 'www-data']);
    assert.equal(
      ps.filter((f) => f[0] === 'root' && /^apache2 -f \/var\/lib\/keelson/.test(f.slice(1).join(' '))).length,
      1,
      'one root process: the master',
    );
    assert.deepEqual(
      users(/-f \/var\/lib\/keelson\/apache\/httpd\.conf/).filter((u) => u !== 'root' && u !== 'www-data'),
      ['keelson-trac'],
    );
    assert.deepEqual(users(/trac_helper\.py/), ['keelson-trac']);
  });

  it('loses neither a project nor a backup when it is restarted while they are being made', async () => {
    const slugs = ['re-1', 're-2', 're-3', 're-4', 're-5', 're-6'];
    assert.equal((await api('POST', '/backups', { project: 'alpha', kind: 'full' })).status, 202);
    for (const slug of slugs) assert.equal((await api('POST', '/projects', { slug, owner: 'alice' })).status, 201);
    const pidBefore = await mainPid();
    await box.ok(['systemctl', 'restart', 'keelson'], { timeoutMs: 300_000 });
    assert.notEqual(await mainPid(), pidBefore);
    await waitActive(slugs);
    for (const slug of slugs) await svnOk(['info', `https://${CODE}/svn/${slug}`]);
    // The backup finished before the restart, or was taken up again after it: one verified, none left half-done.
    const deadline = Date.now() + 120_000;
    for (;;) {
      const res = await api('GET', '/backups?project=alpha');
      const rows = res.status === 200 ? (JSON.parse(res.body) as { backups: { state: string; reason: string | null }[] }).backups : [];
      const list = rows.map((b) => b.state);
      if (list.includes('verified') && !list.some((st) => st === 'running' || st === 'verifying')) break;
      if (Date.now() > deadline || list.some((st) => st === 'refused' || st === 'failed'))
        assert.fail(`alpha's backups: ${JSON.stringify(rows)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  });

  it("rotates Apache's logs with logrotate, and Apache writes the new file with the client's address", async () => {
    await box.ok(['logrotate', '-f', '/etc/logrotate.d/keelson']);
    const logs = '/var/lib/keelson/apache/logs';
    assert.ok((await box.ok(['ls', logs])).split('\n').includes('access.log.1'));
    // The client as the front saw it (X-Forwarded-For from a trusted proxy), not the front itself.
    await box.ok(['curl', '-sS', '-o', '/dev/null', '-H', 'X-Forwarded-For: 203.0.113.9', `https://${CODE}/svn/alpha/?after-rotation`]);
    let text = '';
    for (let i = 0; i < 40 && !/\/svn\/alpha\//.test(text); i++) {
      await new Promise((r) => setTimeout(r, 100));
      text = (await box.exec(['cat', `${logs}/access.log`])).stdout;
    }
    // ... and, last, the connection's own peer (the front), which no client can forge.
    assert.match(text, / 203\.0\.113\.9 - "GET \/svn\/alpha\/ HTTP\/1\.1" 401 \d+ \d+ 127\.0\.0\.1$/m);
  });

  it('stops gracefully, and refuses to start with one line for a port in use and for a data directory Apache cannot traverse', async () => {
    await box.ok(['systemctl', 'stop', 'keelson'], { timeoutMs: 320_000 });
    assert.equal((await box.exec(['systemctl', 'is-active', 'keelson-web'])).stdout.trim(), 'inactive', 'the web unit stops with it');
    const journal = await box.ok(['journalctl', '-u', 'keelson', '-o', 'cat', '--no-pager']);
    assert.match(journal, /stopping: finishing the work in hand, claiming nothing new/);
    assert.equal((await box.exec(['pgrep', '-f', '/var/lib/keelson/apache/httpd.conf'])).code, 1, "Keelson's Apache stopped with it");

    const refused = async (unit: string, expect: RegExp) => {
      const cursor = (await box.ok(['journalctl', '-n', '0', '--show-cursor', '--no-pager'])).match(/cursor: (\S+)/)![1]!;
      const start = await box.exec(['systemctl', 'start', unit], { timeoutMs: 120_000 });
      assert.notEqual(start.code, 0, 'the start fails');
      // Restart=on-failure would try again by itself: stopped here, so the next case starts afresh.
      await box.ok(['systemctl', 'stop', 'keelson', 'keelson-web']);
      await box.exec(['systemctl', 'reset-failed', 'keelson', 'keelson-web']);
      // The whole journal since: journald may not attribute the line of a process that exits at once to its unit.
      const j = await box.ok(['journalctl', '-o', 'cat', '--no-pager', '--after-cursor', cursor]);
      const line = j.split('\n').find((l) => expect.test(l));
      assert.ok(line, `one line naming the cause in the journal:\n${j}`);
      assert.equal((await box.exec(['pgrep', '-f', '/var/lib/keelson/apache/httpd.conf'])).code, 1, 'nothing left running');
    };
    // Another program on the API's port.
    await box.ok(['systemd-run', '--unit', 'squatter', '--', 'python3', '-m', 'http.server', '8480', '--bind', '127.0.0.1']);
    await new Promise((r) => setTimeout(r, 500));
    await refused('keelson-web', /cannot listen on 127\.0\.0\.1:8480 \(KEELSON_HTTP_PORT\): another program holds the port/);
    await box.ok(['systemctl', 'stop', 'squatter']);
    // A data directory closed to Apache's user.
    await box.ok(['chmod', '0700', '/var/lib/keelson']);
    await refused(
      'keelson',
      /www-data \(Apache's user\) cannot reach \/var\/lib\/keelson\/svn: \/var\/lib\/keelson \(mode 0700\) is closed to it/,
    );
    await box.ok(['chmod', '0755', '/var/lib/keelson']);
    await box.ok(['systemctl', 'start', 'keelson'], { timeoutMs: 180_000 });
  });

  it('uninstalls keeping the data, and a new install, cut short and run again, serves the same projects', async () => {
    const out = await box.ok(['/opt/keelson/scripts/production/uninstall.sh'], { timeoutMs: 320_000 });
    assert.match(out, /kept the data and settings/);
    for (const f of [
      '/etc/systemd/system/keelson.service',
      '/etc/systemd/system/keelson-web.service',
      '/etc/apache2/sites-available/keelson.conf',
      '/etc/logrotate.d/keelson',
    ])
      assert.equal((await box.exec(['test', '-e', f])).code, 1, `${f} removed`);
    assert.equal((await box.exec(['systemctl', 'is-active', 'keelson'])).stdout.trim(), 'inactive');
    await box.ok(['test', '-f', '/var/lib/keelson/db/keelson.db']);
    await box.ok(['test', '-f', '/etc/keelson/keelson.env']);
    // An install killed part-way (2 s in: past the packages, somewhere in the units, the site or the
    // start), then run again, finishes.
    const cut = await box.exec(['timeout', '-s', 'KILL', '2', ...INSTALL]);
    assert.notEqual(cut.code, 0);
    assert.doesNotMatch(cut.stdout, /keelson install: done/, 'the first run was cut short');
    const again = await box.exec(INSTALL, { timeoutMs: 300_000 });
    const journal = again.code ? (await box.exec(['journalctl', '--no-pager', '-n', '80'])).stdout : '';
    assert.equal(again.code, 0, again.stderr + journal);
    assert.match(again.stdout, /unchanged \/etc\/keelson\/keelson\.env/);
    const log = await svn(['log', `https://${CODE}/svn/alpha`]);
    assert.equal(log.code, 0, log.stderr);
    assert.match(log.stdout, /working-copy move/);
  });
});

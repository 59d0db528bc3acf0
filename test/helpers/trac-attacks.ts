import assert from 'node:assert/strict';
import fs from 'node:fs';
import nodeHttp from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { http, layout, until, type TestHost } from './host.js';
import { fixtures } from './fixtures.js';

/**
 * The attacks on the shared Trac daemon from the isolation issue, planted on a real host: a
 * victim (alice, private project `victim`) and an attacker (mal, public project `evil`) with a
 * slow report, reports of huge values, the 57-byte Pygments input as a wiki page and as a
 * committed Scala file, an HTML file and attachment, and a revision with many changed paths.
 * Shared by test/integration/trac-commons.test.ts and bench/provision.ts.
 */

/** The Scala input from the issue: a quote and 40 backslashes (bookworm's Pygments backtracks on it). */
export const REDOS = '{{{#!scala\n"' + '\\'.repeat(40) + '\n}}}\n';

export interface Reply {
  status: number;
  headers: nodeHttp.IncomingHttpHeaders;
  body: string;
}

/** One request on a fresh connection, with optional Basic credentials, cookie and form body. */
export function req(
  method: string,
  url: string,
  o: { creds?: { user: string; password: string }; cookie?: string; form?: Record<string, string> } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { connection: 'close' };
  if (o.creds) headers.authorization = 'Basic ' + Buffer.from(`${o.creds.user}:${o.creds.password}`).toString('base64');
  if (o.cookie) headers.cookie = o.cookie;
  let body: string | undefined;
  if (o.form) {
    body = new URLSearchParams(o.form).toString();
    headers['content-type'] = 'application/x-www-form-urlencoded';
    headers['content-length'] = String(Buffer.byteLength(body));
  }
  return new Promise((resolve, reject) => {
    const r = nodeHttp.request(url, { method, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('latin1');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    r.on('error', reject);
    r.end(body);
  });
}

/** Trac wants a form's __FORM_TOKEN equal to its trac_form_token cookie. */
export const FORM_TOKEN = 'keelsontest0123456789';
export const formCookie = `trac_form_token=${FORM_TOKEN}`;

/** This host's Trac daemon processes: children of its Apache that run as the Trac user (Keelson's helpers are python3). */
export function daemonPids(h: TestHost): number[] {
  const apache = Number(fs.readFileSync(path.join(layout(h.cfg).apacheDir, 'run', 'httpd.pid'), 'utf8').trim());
  const out = execFileSync('ps', ['-u', h.cfg.tracUser, '-o', 'pid=,ppid=,comm='], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter(([, ppid, comm]) => comm === 'apache2' && Number(ppid) === apache)
    .map(([pid]) => Number(pid));
}

export function rssBytes(pid: number): number {
  try {
    const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

export interface Planted {
  f: ReturnType<typeof fixtures>;
  /** Report ids by title: slow, blobs, many. */
  reports: Record<string, string>;
  /** The revision with `paths` changed paths. */
  hugeRev: number;
  /** Another tenant's page: a signed-in member of a private project. */
  victim: { url: string; creds: { user: string; password: string } };
  /** Another tenant's page as its anonymous visitors see it (a public project). */
  bystander: { url: string };
  evil: (p: string) => string;
  /** A Trac URL of any project. */
  trac: (slug: string, p: string) => string;
  cleanup(): void;
}

export async function plantAttacks(h: TestHost, o: { paths: number }): Promise<Planted> {
  const f = fixtures(h);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'keelson-attacks-'));
  fs.chmodSync(work, 0o755);
  const evil = (p: string) => `${h.tracUrl('evil')}${p}`;
  const envDir = path.join(layout(h.cfg).tracRoot, 'evil');
  const asTrac = (args: string[]) => execFileSync('runuser', ['-u', h.cfg.tracUser, '--', ...args], { cwd: '/', stdio: 'pipe' });
  for (const u of ['alice', 'mal']) await f.user(u);
  await f.project('victim', 'alice');
  // Another public project, whose anonymous visitors share the anonymous daemons with the flood.
  await f.project('bystander', 'alice', 'public');
  // Anyone may sign up and own several projects: the attacker has three.
  for (const slug of ['evil', 'evil2', 'evil3']) await f.project(slug, 'mal', 'public');

  const reports: Record<string, string> = {};
  const newReport = async (title: string, query: string, slug = 'evil') => {
    const r = await req('POST', `${h.tracUrl(slug)}/report`, {
      creds: f.creds('mal'),
      cookie: formCookie,
      form: { __FORM_TOKEN: FORM_TOKEN, action: 'new', title, query, description: '' },
    });
    const id = String(r.headers.location ?? '').match(/\/report\/(\d+)/)?.[1];
    assert.ok(id, `report not created: ${r.status} ${r.headers.location}`);
    reports[title] = id;
  };
  const SLOW = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) AS x FROM c';
  await newReport('slow', SLOW);
  await newReport('slow2', SLOW, 'evil2');
  await newReport('slow3', SLOW, 'evil3');
  await newReport('blobs', 'SELECT zeroblob(33000000) AS a FROM (SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4) AS t');
  await newReport(
    'many',
    'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000) SELECT x, zeroblob(900000) AS pad FROM c',
  );

  const file = (name: string, content: string) => {
    fs.writeFileSync(path.join(work, name), content, { mode: 0o644 });
    return path.join(work, name);
  };
  asTrac(['trac-admin', envDir, 'wiki', 'import', 'ReDos', file('redos.txt', REDOS)]);
  asTrac(['trac-admin', envDir, 'attachment', 'add', 'wiki:WikiStart', file('x.html', '<script>alert(1)</script>\n')]);
  // The same input committed as a Scala file, shown highlighted by the source browser.
  const c = await f.commit('evil', 'mal', { 'evil.scala': '"' + '\\'.repeat(40) + '\n', 'x.html': '<script>alert(1)</script>\n' });
  assert.equal(c.code, 0, c.stderr);

  // A revision with many changed paths, committed through the repository's own hooks.
  const big = path.join(work, 'big');
  for (let i = 0; i < o.paths; i++) {
    const dir = path.join(big, `d${Math.floor(i / 500)}`);
    if (i % 500 === 0) fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, `f${i}.txt`), `${i}\n`);
  }
  execFileSync('chmod', ['-R', 'a+rX', work]);
  const cfgDir = fs.mkdtempSync('/tmp/svncfg-');
  fs.chmodSync(cfgDir, 0o777);
  const repo = path.join(layout(h.cfg).svnRoot, 'evil');
  const out = execFileSync(
    'runuser',
    ['-u', h.cfg.apacheUser, '--', 'svn', 'import', '--config-dir', cfgDir, '-m', 'many paths', big, `file://${repo}/trunk/big`],
    { cwd: '/', encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 },
  );
  fs.rmSync(cfgDir, { recursive: true, force: true });
  const hugeRev = Number(out.match(/Committed revision (\d+)/)?.[1]);
  assert.ok(hugeRev > 0, out.slice(-200));
  await until('the huge changeset in Trac', async () => (await http(evil(`/changeset/${hugeRev}`))).status === 200, 120_000);

  return {
    f,
    reports,
    hugeRev,
    victim: { url: `${h.tracUrl('victim')}/wiki/WikiStart`, creds: f.creds('alice') },
    bystander: { url: `${h.tracUrl('bystander')}/wiki/WikiStart` },
    evil,
    trac: (slug: string, u: string) => `${h.tracUrl(slug)}${u}`,
    cleanup: () => fs.rmSync(work, { recursive: true, force: true }),
  };
}

/**
 * The floods of the issue: URLs an attacker repeats, how many at once, and as whom (anonymous
 * unless creds are given: anyone may sign up, and then owns several projects).
 */
export function floods(p: Planted): { name: string; urls: string[]; concurrency: number; creds?: { user: string; password: string } }[] {
  return [
    { name: 'slow report', urls: [p.evil(`/report/${p.reports.slow}?format=csv`)], concurrency: 22 },
    {
      name: 'highlighted pages',
      urls: [p.evil('/wiki/ReDos'), p.evil('/browser/trunk/evil.scala'), p.evil('/wiki/ReDos?action=diff&version=1')],
      concurrency: 12,
    },
    {
      name: 'huge changeset',
      urls: [p.evil(`/changeset/${p.hugeRev}`), p.evil(`/changeset/${p.hugeRev}?format=diff`), p.evil('/log/?verbose=on&limit=50')],
      concurrency: 12,
    },
    {
      name: 'signed-in, three projects',
      urls: [
        p.evil(`/report/${p.reports.slow}`),
        p.evil(`/changeset/${p.hugeRev}`),
        p.trac('evil2', `/report/${p.reports.slow2}`),
        p.trac('evil3', `/report/${p.reports.slow3}`),
        p.evil('/wiki/ReDos'),
      ],
      concurrency: 24,
      creds: p.f.creds('mal'),
    },
  ];
}

/** New Trac daemon processes (Apache's graceful restart: every payer's budget starts empty), answering again. */
export async function freshDaemons(h: TestHost, p: Planted): Promise<void> {
  execFileSync('apache2', ['-f', path.join(layout(h.cfg).apacheDir, 'httpd.conf'), '-k', 'graceful']);
  await new Promise((r) => setTimeout(r, 1000));
  await until(
    'Trac answers',
    async () => (await http(p.victim.url, p.victim.creds)).status === 200 && (await http(p.bystander.url)).status === 200,
  );
  for (let i = 0; i < 3; i++) await http(p.victim.url, p.victim.creds);
}

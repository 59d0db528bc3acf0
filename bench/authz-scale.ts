/**
 * bench/authz-scale (issue 3): a host with 10,000 projects (repository + per-repository authz; no
 * Trac) and 100,000 users, measured through the real stack:
 *
 *   - `keelson reconcile --all --files-only` (authz files, hooks, credentials database) on the
 *     fresh host and again with nothing to change;
 *   - SVN request latency through Keelson's Apache (PROPFIND Depth 0 on /svn/<slug>/, Basic auth
 *     with the user's access token, a new connection per request) for random members and
 *     non-members, against a tiny host (10 projects, 100 users) in the same run;
 *   - the single-global-file layout the PHP admin tools generate (one AuthzSVNAccessFile, a
 *     `[<slug>:/]` section and a group per project) at 1,000 and 2,000 projects, on the same
 *     repositories and credentials, plus `svnauthz validate` of that file;
 *   - time from a membership API call returning to Apache enforcing it (add, then remove), and
 *     Apache reloads during the run (main PID, restart lines in its error log).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/authz-scale.js [--projects 10000] [--users 100000]
 *     [--requests 300] [--changes 20] [--global 1000,2000] [--keep]
 *
 * Users, tokens, projects and memberships go straight into Keelson's database in one transaction
 * (one scrypt hash shared by every user); repositories are copies of one `svnadmin create` with
 * the standard layout. Everything after that goes through Keelson's own CLI, API and Apache.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import Database from 'better-sqlite3';
import { loadConfig, layout, type Config, type Layout } from '../src/config.js';
import { openDatabase, nowIso, type DB } from '../src/store/db.js';
import { createApiToken } from '../src/domain/sessions.js';
import { noEffects } from '../src/domain/context.js';
import { hashPassword } from '../src/sys/password.js';
import { apacheHash, newAccessToken } from '../src/domain/tokens.js';
import { Apache } from '../src/provision/apache.js';
import { run } from '../src/sys/process.js';
import { PROJECT_ROOT } from '../src/paths.js';
import { freePort, tempDataDir } from '../test/helpers/host.js';

// ---------- arguments ----------

const argv = process.argv.slice(2);
function opt(name: string, fallback: number): number {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const n = Number(argv[i + 1]);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} needs a positive whole number`);
  return n;
}
const N_PROJECTS = opt('projects', 10_000);
const N_USERS = opt('users', 100_000);
const N_REQUESTS = opt('requests', 300);
const N_CHANGES = opt('changes', 20);
const KEEP = argv.includes('--keep');
const globalArg = argv.includes('--global') ? argv[argv.indexOf('--global') + 1] : undefined;
/** Project counts of the global-file baseline; a size above --projects is cut to it. */
const GLOBAL_SIZES = [
  ...new Set(
    (globalArg ?? '1000,2000')
      .split(',')
      .map((s) => Math.min(N_PROJECTS, Number(s)))
      .filter((n) => Number.isInteger(n) && n > 0),
  ),
];
if (N_USERS < 10) throw new Error('--users must be at least 10');

process.env.KEELSON_LOG ??= 'silent';
const CLI = path.join(PROJECT_ROOT, 'dist', 'src', 'cli', 'main.js');
const T0 = performance.now();
const elapsed = () => `${((performance.now() - T0) / 1000).toFixed(1).padStart(6)} s`;
const say = (msg: string) => process.stderr.write(`[authz-scale ${elapsed()}] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------- statistics and formatting ----------

/** Nearest-rank percentile. */
function pct(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
const ms = (x: number) => (Number.isNaN(x) ? 'n/a' : x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(1)} ms`);
const secs = (x: number) => `${(x / 1000).toFixed(2)} s`;

/** Deterministic, so two runs build the same host. */
function mulberry32(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = mulberry32(20261123);
const pick = (n: number) => Math.floor(rand() * n);

// ---------- HTTP ----------

interface Creds {
  user: string;
  password: string;
}

/**
 * One request on its own connection (mod_authz_svn keeps a repository's parsed authz for the
 * life of a connection, so a kept-alive connection would not see a changed file).
 */
function request(
  port: number,
  method: string,
  urlPath: string,
  creds?: Creds,
  timeoutMs = 120_000,
): Promise<{ status: number; ms: number; end: number }> {
  const headers: Record<string, string> = { connection: 'close' };
  if (method === 'PROPFIND') headers.depth = '0';
  if (creds) headers.authorization = 'Basic ' + Buffer.from(`${creds.user}:${creds.password}`).toString('base64');
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, headers, agent: false, timeout: timeoutMs }, (res) => {
      res.on('data', () => {});
      res.on('end', () => {
        const end = performance.now();
        resolve({ status: res.statusCode ?? 0, ms: end - t, end });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}
const svnRequest = (port: number, slug: string, creds: Creds, timeoutMs?: number) =>
  request(port, 'PROPFIND', `/svn/${slug}/`, creds, timeoutMs);

// ---------- building a host ----------

interface Project {
  id: number;
  slug: string;
  /** User indexes, owner first. */
  members: number[];
}
interface Host {
  tag: string;
  cfg: Config;
  l: Layout;
  env: NodeJS.ProcessEnv;
  db: DB;
  users: string[];
  tokens: string[];
  projects: Project[];
  memberships: number;
}

const userName = (i: number) => `u${String(i + 1).padStart(6, '0')}`;
const slugOf = (i: number) => `p${String(i + 1).padStart(5, '0')}`;

/** The one password hash every generated user shares (scrypt costs ~50 ms per hash). */
let sharedHash: string | undefined;

async function buildHost(root: string, tag: string, nProjects: number, nUsers: number, template: Template): Promise<Host> {
  const dataDir = path.join(root, tag);
  fs.mkdirSync(dataDir, { mode: 0o755 });
  const env = {
    ...process.env,
    KEELSON_DATA_DIR: dataDir,
    KEELSON_HTTP_PORT: String(await freePort()),
    KEELSON_APACHE_PORT: String(await freePort()),
    KEELSON_LOG: 'warn',
  };
  const cfg = loadConfig(env);
  const l = layout(cfg);
  const db = openDatabase(l.db);
  sharedHash ??= await hashPassword('bench password, shared by every generated user');
  const now = nowIso();

  say(`${tag}: ${nUsers} users and tokens`);
  const users: string[] = [];
  const tokens: string[] = [];
  for (let i = 0; i < nUsers; i++) {
    users.push(userName(i));
    tokens.push(newAccessToken());
  }
  const projects: Project[] = [];
  let memberships = 0;
  for (let i = 0; i < nProjects; i++) {
    const set = new Set<number>();
    const want = 3 + pick(4); // owner + 2-5 developers/viewers
    while (set.size < Math.min(want, nUsers)) set.add(pick(nUsers));
    projects.push({ id: i + 1, slug: slugOf(i), members: [...set] });
    memberships += set.size;
  }
  const uuid = template.uuid;
  db.transaction(() => {
    const insU = db.prepare(`INSERT INTO users (id, name, email, password_hash, is_admin, created_at) VALUES (?, ?, ?, ?, 0, ?)`);
    const insT = db.prepare(`INSERT INTO access_tokens (user_id, apache_hash, created_at) VALUES (?, ?, ?)`);
    for (let i = 0; i < nUsers; i++) {
      insU.run(i + 1, users[i], `${users[i]}@example.com`, sharedHash, now);
      insT.run(i + 1, apacheHash(tokens[i]!), now);
    }
    const insP = db.prepare(
      `INSERT INTO projects (id, slug, title, visibility, state, repo_uuid, created_at, updated_at) VALUES (?, ?, ?, 'private', 'active', ?, ?, ?)`,
    );
    const insM = db.prepare(`INSERT INTO memberships (project_id, user_id, role) VALUES (?, ?, ?)`);
    for (const p of projects) {
      insP.run(p.id, p.slug, `Project ${p.slug}`, uuid, now, now);
      p.members.forEach((u, k) => insM.run(p.id, u + 1, k === 0 ? 'owner' : k % 2 ? 'developer' : 'viewer'));
    }
    // Version 1 of each project's permission state, as a project created through the API has
    // (the same snapshot migration 2 takes of projects that predate it).
    db.prepare(
      `INSERT INTO permission_history (project_id, version, at, actor, action, summary, snapshot)
       SELECT p.id, 1, p.updated_at, 'bench', 'project.create', 'generated by bench/authz-scale',
         json_object('visibility', p.visibility, 'suspended', json('false'),
           'members', (SELECT json_group_array(json_object('user', u.name, 'role', m.role))
                         FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.project_id = p.id),
           'rules', json('[]'))
       FROM projects p`,
    ).run();
  })();
  say(`${tag}: ${nProjects} projects, ${memberships} memberships in the database; copying repositories`);

  fs.mkdirSync(l.svnRoot, { recursive: true, mode: 0o755 });
  for (const p of projects) {
    copyTemplate(template, path.join(l.svnRoot, p.slug));
    if (p.id % 1000 === 0) say(`${tag}: ${p.id}/${nProjects} repositories`);
  }
  // Keelson hands every repository to Apache's user (reconciler chownTree); do the same at once.
  if (process.getuid?.() === 0) await run('chown', ['-R', `${cfg.apacheUser}:${cfg.apacheGroup}`, l.svnRoot]);
  say(`${tag}: ${nProjects} repositories in place`);
  return { tag, cfg, l, env, db, users, tokens, projects, memberships };
}

interface Template {
  uuid: string;
  dirs: { rel: string; mode: number }[];
  files: { rel: string; mode: number; data: Buffer }[];
}

/**
 * One repository with the standard layout, read into memory once; each project gets a copy
 * written from memory (fs.cpSync took ~16 ms per repository here, this ~2 ms). The sample
 * conf/authz that `svnadmin create` writes is left out: a fresh host has no authz files.
 */
async function makeTemplate(dir: string): Promise<Template> {
  const repo = path.join(dir, 'repo');
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  await run('svnadmin', ['create', '--fs-type', 'fsfs', repo]);
  const url = `file://${repo}`;
  await run('svn', [
    'mkdir',
    '--config-dir',
    path.join(dir, 'svn-config'),
    '--non-interactive',
    '-q',
    '-m',
    'Standard layout',
    `${url}/trunk`,
    `${url}/branches`,
    `${url}/tags`,
  ]);
  fs.rmSync(path.join(repo, 'conf', 'authz'));
  const t: Template = {
    uuid: fs
      .readFileSync(path.join(repo, 'db', 'uuid'), 'utf8')
      .split('\n')[0]!
      .trim(),
    dirs: [],
    files: [],
  };
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const st = fs.statSync(p);
      if (e.isDirectory()) {
        t.dirs.push({ rel: path.relative(repo, p), mode: st.mode & 0o7777 });
        walk(p);
      } else if (e.isFile()) t.files.push({ rel: path.relative(repo, p), mode: st.mode & 0o7777, data: fs.readFileSync(p) });
      else throw new Error(`unexpected entry in the template repository: ${p}`);
    }
  };
  walk(repo);
  return t;
}

function copyTemplate(t: Template, target: string): void {
  fs.mkdirSync(target, { mode: 0o755 });
  for (const d of t.dirs) fs.mkdirSync(path.join(target, d.rel), { mode: d.mode });
  for (const f of t.files) fs.writeFileSync(path.join(target, f.rel), f.data, { mode: f.mode });
}

// ---------- keelson CLI ----------

/** Runs `keelson <args>` as its own process; wall time from spawn to exit. */
async function keelson(h: Host, args: string[], timeoutMs: number): Promise<{ ms: number; code: number | null; stderr: string }> {
  const logFile = path.join(h.cfg.dataDir, '..', `${h.tag}-cli.log`);
  const t = performance.now();
  const child = spawn(process.execPath, [CLI, ...args], { env: h.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => fs.appendFileSync(logFile, b));
  child.stderr.on('data', (b: Buffer) => {
    stderr += b.toString();
    fs.appendFileSync(logFile, b);
  });
  const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  clearTimeout(timer);
  return { ms: performance.now() - t, code, stderr };
}

/** The on-disk contract of a rebuild: every repository has conf/authz, the credentials table has every user. */
function checkRebuilt(h: Host): { authzFiles: number; credentials: number } {
  let authzFiles = 0;
  for (const p of h.projects) if (fs.existsSync(path.join(h.l.svnRoot, p.slug, 'conf', 'authz'))) authzFiles++;
  let credentials = 0;
  if (fs.existsSync(h.l.authDb)) {
    const adb = new Database(h.l.authDb, { readonly: true });
    credentials = adb.prepare(`SELECT count(*) FROM credentials`).pluck().get() as number;
    adb.close();
  }
  return { authzFiles, credentials };
}

interface Rebuild {
  ms: number;
  code: number | null;
  /** What the CLI itself printed for the files phase, and its phase timings if it prints them. */
  summary: string;
  phases: string;
  authzFiles: number;
  credentials: number;
}

async function rebuild(h: Host, what: string, timeoutMs: number): Promise<Rebuild> {
  say(`${h.tag}: keelson reconcile --all --files-only (${what})`);
  const r = await keelson(h, ['reconcile', '--all', '--files-only'], timeoutMs);
  const summary =
    r.stderr
      .split(/[\r\n]/)
      .map((s) => s.trim())
      .find((s) => s.startsWith('authz + hooks')) ?? '';
  const phases =
    r.stderr
      .split(/[\r\n]/)
      .map((s) => s.trim())
      .find((s) => s.startsWith('phases')) ?? '';
  const c = checkRebuilt(h);
  say(`${h.tag}: reconcile exited ${r.code} after ${secs(r.ms)}: ${summary || r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return { ms: r.ms, code: r.code, summary, phases, ...c };
}

// ---------- SVN request latency ----------

interface Latency {
  member: number[];
  nonMember: number[];
  unexpected: string[];
}

function credsOf(h: Host, u: number): Creds {
  return { user: h.users[u]!, password: h.tokens[u]! };
}

function nonMemberOf(h: Host, p: Project): number {
  for (;;) {
    const u = pick(h.users.length);
    if (!p.members.includes(u)) return u;
  }
}

/**
 * Sequential PROPFIND Depth 0 on /svn/<slug>/, each on a new connection: random projects, a
 * random member (expects 207) or, one request in six, a random non-member (expects 403). The
 * hosts take turns request by request, so a burst of load from elsewhere on the machine falls
 * on all of them alike.
 */
async function latency(hosts: Host[], n: number, warmup: number): Promise<Latency[]> {
  const out: Latency[] = hosts.map(() => ({ member: [], nonMember: [], unexpected: [] }));
  for (let i = 0; i < warmup + n; i++) {
    for (const [k, h] of hosts.entries()) {
      const p = h.projects[pick(h.projects.length)]!;
      const member = i % 6 !== 5;
      const u = member ? p.members[pick(p.members.length)]! : nonMemberOf(h, p);
      const r = await svnRequest(h.cfg.apachePort, p.slug, credsOf(h, u));
      const want = member ? 207 : 403;
      if (r.status !== want) out[k]!.unexpected.push(`${p.slug} ${h.users[u]}: ${r.status} (want ${want})`);
      if (i >= warmup) (member ? out[k]!.member : out[k]!.nonMember).push(r.ms);
    }
  }
  return out;
}

// ---------- the single-global-file baseline ----------

/** What USVN, iF.SVNAdmin, SVNManager and Subversion Edge generate: one file, a group and a `[repo:/]` section per project. */
function renderGlobalAuthz(h: Host, projects: Project[]): string {
  const lines = ['[groups]'];
  for (const p of projects) lines.push(`${p.slug}_members = ${p.members.map((u) => h.users[u]).join(', ')}`);
  for (const p of projects) lines.push('', `[${p.slug}:/]`, `@${p.slug}_members = rw`);
  return lines.join('\n') + '\n';
}

/** Keelson's Apache configuration (renderApacheConfig) for /svn only, with the one global file. */
function renderGlobalApacheConfig(dir: string, port: number, h: Host, authzFile: string): string {
  const q = (s: string) => `"${s.replace(/["\\]/g, '\\$&')}"`;
  const modules = ['mpm_event', 'authn_core', 'authn_dbd', 'dbd', 'authz_core', 'authz_user', 'auth_basic', 'access_compat'];
  modules.push('dav', 'dav_svn', 'authz_svn');
  const asRoot = process.getuid?.() === 0;
  return `ServerRoot ${q(dir)}
ServerName 127.0.0.1
Listen 127.0.0.1:${port}
PidFile ${q(path.join(dir, 'run', 'httpd.pid'))}
DefaultRuntimeDir ${q(path.join(dir, 'run'))}
ErrorLog ${q(path.join(dir, 'logs', 'error.log'))}
LogLevel warn
${modules.map((m) => `LoadModule ${m}_module /usr/lib/apache2/modules/mod_${m}.so`).join('\n')}
${asRoot ? `User ${h.cfg.apacheUser}\nGroup ${h.cfg.apacheGroup}` : ''}
Timeout 300
KeepAlive On
StartServers 2
ServerLimit 4
ThreadsPerChild 25
MaxRequestWorkers 100

DBDriver sqlite3
DBDParams ${q(h.l.authDb)}
DBDMin 1
DBDKeep 4
DBDMax 16
DBDExptime 300

DocumentRoot ${q(path.join(dir, 'htdocs'))}
<Directory />
    Require all denied
    AllowOverride None
</Directory>
<Directory ${q(path.join(dir, 'htdocs'))}>
    Require all granted
</Directory>

<Location /svn>
    DAV svn
    SVNParentPath ${q(h.l.svnRoot)}
    SVNListParentPath Off
    AuthzSVNAccessFile ${q(authzFile)}
    AuthType Basic
    AuthName "Keelson"
    AuthBasicProvider dbd
    AuthDBDUserPWQuery "SELECT hash FROM credentials WHERE username = %s"
    Satisfy Any
    Require valid-user
</Location>
`;
}

async function waitHealthy(port: number, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const ok = await request(port, 'GET', '/health.txt', undefined, 2000).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what} did not answer on port ${port}`);
    await sleep(50);
  }
}

interface GlobalResult {
  projects: number;
  validateMs: number;
  validateOk: boolean;
  /** The first request Apache served with this file. */
  first: number;
  lat: number[];
  /** A membership change written into the file (temp + rename) until the next request grants it. */
  afterChange: number[];
  /** Largest peak RSS of Apache's worker processes. */
  rssMb: number;
  unexpected: string[];
}

/** Peak RSS (VmHWM) of the largest child of Apache's main process, in MB. */
function workersPeakRssMb(mainPid: number | undefined): number {
  if (!mainPid) return NaN;
  let max = 0;
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      // mod_wsgi's Trac daemons are children too; only the processes that serve /svn count.
      if (!fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').startsWith('apache2')) continue;
      const status = fs.readFileSync(`/proc/${e}/status`, 'utf8');
      if (Number(/^PPid:\s+(\d+)/m.exec(status)?.[1]) !== mainPid) continue;
      max = Math.max(max, Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) / 1024);
    } catch {
      // the process ended while we looked
    }
  }
  return max;
}

function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, text, { mode: 0o644 });
  fs.renameSync(tmp, file);
}

async function globalBaseline(root: string, h: Host, n: number, samples: number, changes: number): Promise<GlobalResult> {
  const dir = path.join(root, `global-${n}`);
  for (const d of ['run', 'logs', 'htdocs']) fs.mkdirSync(path.join(dir, d), { recursive: true, mode: 0o755 });
  fs.writeFileSync(path.join(dir, 'htdocs', 'health.txt'), 'ok\n');
  // A copy: the changes below must not touch the host's own membership lists.
  const projects = h.projects.slice(0, n).map((p) => ({ ...p, members: [...p.members] }));
  const authz = path.join(dir, 'authz');
  writeAtomic(authz, renderGlobalAuthz(h, projects));
  say(`global file, ${n} projects: svnauthz validate`);
  let t = performance.now();
  const v = await run('svnauthz', ['validate', authz]).then(
    () => true,
    () => false,
  );
  const validateMs = performance.now() - t;
  const port = await freePort();
  const conf = path.join(dir, 'httpd.conf');
  const pidFile = path.join(dir, 'run', 'httpd.pid');
  fs.writeFileSync(conf, renderGlobalApacheConfig(dir, port, h, authz));
  await run('apache2', ['-f', conf, '-k', 'start']);
  const out: GlobalResult = { projects: n, validateMs, validateOk: v, first: NaN, lat: [], afterChange: [], rssMb: NaN, unexpected: [] };
  try {
    await waitHealthy(port, 'the global-file Apache');
    say(`global file, ${n} projects: 1 first + ${samples} requests, then ${changes} changes (validate took ${secs(validateMs)})`);
    for (let i = 0; i <= samples; i++) {
      const p = projects[pick(projects.length)]!;
      const u = p.members[pick(p.members.length)]!;
      const r = await svnRequest(port, p.slug, credsOf(h, u), 300_000);
      if (r.status !== 207) out.unexpected.push(`${p.slug} ${h.users[u]}: ${r.status}`);
      if (i === 0) out.first = r.ms;
      else out.lat.push(r.ms);
    }
    for (let i = 0; i < changes; i++) {
      const p = projects[pick(projects.length)]!;
      const u = nonMemberOf(h, p);
      p.members.push(u);
      writeAtomic(authz, renderGlobalAuthz(h, projects));
      t = performance.now();
      for (;;) {
        const r = await svnRequest(port, p.slug, credsOf(h, u), 300_000);
        if (r.status === 207) {
          out.afterChange.push(r.end - t);
          break;
        }
        if (r.end - t > 300_000) {
          out.unexpected.push(`${p.slug} ${h.users[u]}: still ${r.status} 300 s after the change`);
          break;
        }
      }
      say(`global file, ${n} projects: change ${i + 1}/${changes} enforced after ${ms(out.afterChange.at(-1) ?? NaN)}`);
    }
    out.rssMb = workersPeakRssMb(Number(fs.readFileSync(pidFile, 'utf8').trim()));
  } finally {
    await run('apache2', ['-f', conf, '-k', 'stop']).catch(() => undefined);
    const deadline = Date.now() + 15_000;
    while (fs.existsSync(pidFile) && Date.now() < deadline) await sleep(50);
  }
  return out;
}

// ---------- change to enforced ----------

interface Changes {
  /** First change of a project with no Trac environment yet: the reconcile creates it first. */
  first: number[];
  add: number[];
  remove: number[];
  api: number[];
  timeouts: number;
  idleWaits: number[];
}

async function waitIdle(db: DB): Promise<number> {
  const t = performance.now();
  const q = db.prepare(`SELECT count(*) FROM jobs WHERE state IN ('pending', 'running')`).pluck();
  while ((q.get() as number) > 0 && performance.now() - t < 60_000) await sleep(20);
  return performance.now() - t;
}

/** Polls (each request a new connection) until Apache answers `want`; ms from `since`. */
async function untilEnforced(port: number, slug: string, creds: Creds, want: number, since: number): Promise<number | undefined> {
  for (;;) {
    const r = await svnRequest(port, slug, creds, 10_000);
    if (r.status === want) return r.end - since;
    if (r.end - since > 30_000) return undefined;
  }
}

async function api(base: string, token: string, method: string, p: string, body?: object): Promise<number> {
  const res = await fetch(base + p, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  await res.arrayBuffer();
  if (!res.ok) throw new Error(`${method} ${p}: HTTP ${res.status}`);
  return performance.now();
}

async function changeToEnforced(h: Host, base: string, token: string, n: number): Promise<Changes> {
  const out: Changes = { first: [], add: [], remove: [], api: [], timeouts: 0, idleWaits: [] };
  const port = h.cfg.apachePort;
  const chosen = new Set<number>();
  while (chosen.size < Math.min(n, h.projects.length)) chosen.add(pick(h.projects.length));
  for (const i of chosen) {
    const p = h.projects[i]!;
    const a = nonMemberOf(h, p);
    let b = nonMemberOf(h, p);
    while (b === a) b = nonMemberOf(h, p);
    const ca = credsOf(h, a);
    const cb = credsOf(h, b);
    if ((await svnRequest(port, p.slug, cb)).status !== 403) throw new Error(`${cb.user} already has access to ${p.slug}`);

    // Warm-up change: the project has no Trac environment (the bench makes none), so its first
    // reconcile builds one before it publishes; reported apart.
    out.idleWaits.push(await waitIdle(h.db));
    let since = await api(base, token, 'PUT', `/api/v1/projects/${p.slug}/members/${ca.user}`, { role: 'developer' });
    const f = await untilEnforced(port, p.slug, ca, 207, since);
    if (f === undefined) out.timeouts++;
    else out.first.push(f);

    out.idleWaits.push(await waitIdle(h.db));
    let t = performance.now();
    since = await api(base, token, 'PUT', `/api/v1/projects/${p.slug}/members/${cb.user}`, { role: 'developer' });
    out.api.push(since - t);
    const add = await untilEnforced(port, p.slug, cb, 207, since);
    if (add === undefined) out.timeouts++;
    else out.add.push(add);

    out.idleWaits.push(await waitIdle(h.db));
    t = performance.now();
    since = await api(base, token, 'DELETE', `/api/v1/projects/${p.slug}/members/${cb.user}`);
    out.api.push(since - t);
    const rm = await untilEnforced(port, p.slug, cb, 403, since);
    if (rm === undefined) out.timeouts++;
    else out.remove.push(rm);
    say(`change ${out.add.length}/${chosen.size} (${p.slug}): first ${ms(f ?? NaN)}, add ${ms(add ?? NaN)}, remove ${ms(rm ?? NaN)}`);
  }
  return out;
}

// ---------- keelson serve ----------

/** Starts `keelson serve` as its own process; `ready` settles when it says it is up (or fails). */
function startServe(h: Host): { child: ChildProcess; ready: Promise<void> } {
  const logFile = path.join(h.cfg.dataDir, '..', `${h.tag}-serve.log`);
  const child = spawn(process.execPath, [CLI, 'serve', '--no-scheduler'], { env: h.env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr!.on('data', (b: Buffer) => fs.appendFileSync(logFile, b));
  let out = '';
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`keelson serve did not come up in 180 s; see ${logFile}`)), 180_000);
    child.stdout!.on('data', (b: Buffer) => {
      fs.appendFileSync(logFile, b);
      out += b.toString();
      if (out.includes('Keelson is up')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`keelson serve exited ${code}; see ${logFile}`));
    });
  });
  return { child, ready };
}

async function stopServe(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const done = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  await Promise.race([done, sleep(30_000)]);
}

/** Lines Apache writes when it (re)starts or is told to reload. */
const RESTART_LINE = /resuming normal operations|SIGHUP|SIGUSR1|SIGWINCH|graceful/i;

function logTail(file: string, from: number): string {
  try {
    const fd = fs.openSync(file, 'r');
    const size = fs.fstatSync(fd).size;
    const buf = Buffer.alloc(Math.max(0, size - from));
    fs.readSync(fd, buf, 0, buf.length, from);
    fs.closeSync(fd);
    return buf.toString();
  } catch {
    return '';
  }
}
const fileSize = (f: string) => (fs.existsSync(f) ? fs.statSync(f).size : 0);

// ---------- main ----------

async function main(): Promise<void> {
  const started = new Date();
  const load = os.loadavg();
  const cores = os.availableParallelism();
  say(`host of ${N_PROJECTS} projects and ${N_USERS} users; tiny host 10/100; global file at ${GLOBAL_SIZES.join(', ')} projects`);
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run npx tsc -p tsconfig.json first`);
  const root = tempDataDir('authz-scale');
  const hosts: Host[] = [];
  let serveChild: ChildProcess | undefined;
  let tinyApache: Apache | undefined;
  try {
    const template = await makeTemplate(path.join(root, 'template'));
    const tBuild = performance.now();
    const big = await buildHost(root, 'big', N_PROJECTS, N_USERS, template);
    hosts.push(big);
    const buildMs = performance.now() - tBuild;
    const tiny = await buildHost(root, 'tiny', Math.min(10, N_PROJECTS), Math.min(100, N_USERS), template);
    hosts.push(tiny);

    // 1. The rebuild: fresh (no authz files, no credentials database), then with nothing to change.
    //    The copies made above are flushed first, so the rebuild's syncfs pays only for its own files.
    say('flushing the host build to disk');
    await run('sync', []);
    const fresh = await rebuild(big, 'fresh host', 900_000);
    if (fresh.authzFiles !== N_PROJECTS || fresh.credentials !== N_USERS) {
      throw new Error(
        `after reconcile: ${fresh.authzFiles}/${N_PROJECTS} authz files, ${fresh.credentials}/${N_USERS} credentials rows; see ${root}/big-cli.log`,
      );
    }
    const tinyFresh = await rebuild(tiny, 'fresh tiny host', 300_000);

    // 2. The big host's API, worker and Apache (its own process), and the tiny host's Apache.
    say('big: keelson serve --no-scheduler');
    const served = startServe(big);
    serveChild = served.child;
    await served.ready;
    const bigApache = new Apache(big.cfg, big.l);
    const pidAtStart = bigApache.mainPid();
    const logFrom = fileSize(bigApache.errorLog);
    const again = await rebuild(big, 'nothing to change, Apache serving', 900_000);
    tinyApache = new Apache(tiny.cfg, tiny.l);
    await tinyApache.start();

    // 3. Request latency, the two hosts taking turns; the tiny host's mod_wsgi daemons import
    // Trac when Apache starts, so give them a moment first.
    await sleep(3000);
    say(`latency: ${N_REQUESTS} requests each on the tiny and the big host, taking turns (after 30 warm-up)`);
    const [latTiny, latBig] = (await latency([tiny, big], N_REQUESTS, 30)) as [Latency, Latency];
    await tinyApache.stop();
    tinyApache = undefined;

    // 4. Change to enforced, through the API.
    const token = createApiToken({ db: big.db, fx: noEffects }, `bench-${process.pid}`);
    say(`changes: ${N_CHANGES} projects, each: warm-up add, measured add, measured remove`);
    const ch = await changeToEnforced(big, `http://${big.cfg.httpHost}:${big.cfg.httpPort}`, token, N_CHANGES);
    const pidAtEnd = bigApache.mainPid();
    const bigRssMb = workersPeakRssMb(pidAtEnd);
    const restartLines = logTail(bigApache.errorLog, logFrom)
      .split('\n')
      .filter((s) => RESTART_LINE.test(s));
    await stopServe(serveChild);
    serveChild = undefined;
    await bigApache.stop();

    // 5. The single global file, on the big host's repositories and credentials.
    const globals: GlobalResult[] = [];
    for (const n of GLOBAL_SIZES) globals.push(await globalBaseline(root, big, n, n >= 1500 ? 10 : 20, 3));
    const t = performance.now();
    await run('svnauthz', ['validate', path.join(big.l.svnRoot, big.projects[0]!.slug, 'conf', 'authz')]);
    const validateOneMs = performance.now() - t;

    // 6. The table.
    const loadEnd = os.loadavg();
    const g = (f: (r: GlobalResult) => string) => globals.map((r) => `global file ${r.projects} projects: ${f(r)}`).join('; ');
    const rows: [string, string, string, string][] = [
      [
        `SVN request p50 (member, 207), ${N_PROJECTS} projects / ${N_USERS} users`,
        ms(pct(latBig.member, 50)),
        '<= 10 ms',
        `tiny host (${tiny.projects.length}/${tiny.users.length}): ${ms(pct(latTiny.member, 50))}; ${g((r) => ms(pct(r.lat, 50)))}`,
      ],
      [
        'SVN request p99 (member, 207)',
        ms(pct(latBig.member, 99)),
        '-',
        `tiny host: ${ms(pct(latTiny.member, 99))}; ${g((r) => `${ms(pct(r.lat, 99))} (max of ${r.lat.length})`)}`,
      ],
      ['first SVN request after Apache starts', '-', '-', g((r) => ms(r.first))],
      [
        'SVN request p50 / p99 (non-member, 403)',
        `${ms(pct(latBig.nonMember, 50))} / ${ms(pct(latBig.nonMember, 99))}`,
        '-',
        `tiny host: ${ms(pct(latTiny.nonMember, 50))} / ${ms(pct(latTiny.nonMember, 99))}`,
      ],
      [
        `reconcile --all --files-only, fresh (${N_PROJECTS} authz + ${N_USERS} credentials)`,
        secs(fresh.ms),
        '<= 10 s',
        `tiny host fresh: ${secs(tinyFresh.ms)}; CLI's own figure: ${fresh.summary.replace(/^.* in /, '') || 'n/a'}`,
      ],
      [
        'reconcile --all --files-only, nothing changes',
        secs(again.ms),
        '<= 10 s',
        `CLI's own figure: ${again.summary.replace(/^.* in /, '') || 'n/a'}`,
      ],
      [
        'svnauthz validate',
        `one per-repository file: ${secs(validateOneMs)}`,
        '-',
        g((r) => `${secs(r.validateMs)}${r.validateOk ? '' : ' (FAILED)'}`),
      ],
      [
        `member added -> access granted, p50 / max (${ch.add.length} changes)`,
        `${ms(pct(ch.add, 50))} / ${ms(Math.max(...ch.add))}`,
        '<= 100 ms',
        `first change of a project without a Trac environment: ${ms(pct(ch.first, 50))} / ${ms(Math.max(...ch.first))}; ` +
          g((r) => `file rewritten -> granted ${r.afterChange.map(ms).join(', ')}`),
      ],
      [
        `member removed -> access denied, p50 / max (${ch.remove.length} changes)`,
        `${ms(pct(ch.remove, 50))} / ${ms(Math.max(...ch.remove))}`,
        '<= 100 ms',
        `API call itself p50 ${ms(pct(ch.api, 50))}; ${ch.timeouts} changes not enforced within 30 s`,
      ],
      ['Apache worker peak RSS (largest /svn process)', `${bigRssMb.toFixed(0)} MB`, '-', g((r) => `${r.rssMb.toFixed(0)} MB`)],
      [
        'Apache reloads during the run',
        `${pidAtStart !== undefined && pidAtStart === pidAtEnd ? 0 : 'PID changed: ' + pidAtStart + ' -> ' + pidAtEnd} (PID ${pidAtStart}; ${restartLines.length} restart lines)`,
        '0',
        '',
      ],
    ];
    const w = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]!.length), ['figure', 'this run', 'target'][i]!.length));
    const line = (r: string[]) => `| ${r.map((c, i) => (i < 3 ? c.padEnd(w[i]!) : c)).join(' | ')} |`;
    const unexpected = [...latBig.unexpected, ...latTiny.unexpected, ...globals.flatMap((r) => r.unexpected)];
    console.log(
      [
        `bench/authz-scale ${started.toISOString()}: node ${process.version}, nproc ${cores}, load average at start ${load.map((x) => x.toFixed(2)).join(' ')}, at end ${loadEnd.map((x) => x.toFixed(2)).join(' ')}`,
        `host: ${N_PROJECTS} projects, ${N_USERS} users, ${big.memberships} memberships (built in ${secs(buildMs)}); ${N_REQUESTS} requests per host after 30 warm-up, 1 in 6 by a non-member; PROPFIND Depth 0, new connection each`,
        '',
        line(['figure', 'this run', 'target', 'same-run baseline']),
        line(['---', '---', '---', '---']),
        ...rows.map(line),
        '',
        unexpected.length
          ? `unexpected statuses (${unexpected.length}): ${unexpected.slice(0, 10).join('; ')}`
          : 'every request got the status its membership implies',
        restartLines.length ? `restart lines: ${restartLines.join(' | ')}` : '',
        `reconcile, fresh: ${fresh.summary}${fresh.phases ? `; ${fresh.phases}` : ''}`,
        `reconcile, nothing to change: ${again.summary}${again.phases ? `; ${again.phases}` : ''}`,
        `total ${elapsed().trim()}`,
      ].join('\n'),
    );
  } finally {
    if (serveChild) await stopServe(serveChild);
    await tinyApache?.stop().catch(() => undefined);
    for (const h of hosts) {
      await new Apache(h.cfg, h.l).stop().catch(() => undefined);
      h.db.close();
    }
    if (KEEP) say(`kept ${root}`);
    else {
      say(`removing ${root}`);
      fs.rmSync(root, { recursive: true, force: true });
      // Slow where ext4 is mounted with `discard` (here: ~4 min for 10,000 repositories).
      say('removed');
    }
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    say(`failed: ${(e as Error).stack ?? e}`);
    process.exit(1);
  },
);

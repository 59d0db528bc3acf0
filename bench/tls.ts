/**
 * bench/tls: what HTTPS costs. Two hosts run side by side on this machine, one plain HTTP, one
 * whose Apache terminates TLS itself (a CA the run makes), each with the same project of 2,000
 * files in one revision. Interleaved, ROUNDS times each: a checkout with the real `svn` client
 * (serf: keep-alive and TLS session resumption as it does them), and 200 Trac page views on one
 * kept-alive connection. Prints each median, and HTTPS over HTTP. Target: at most 1.15x.
 *
 *   npm run build && node dist/bench/tls.js [ROUNDS]      (BENCH_TLS_KEY=ec: an ECDSA P-256 server key)
 */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { freePort, startHost, svn, until, type TestHost } from '../test/helpers/host.js';
import { makeCa, type TestCa } from '../test/helpers/tls.js';

const ROUNDS = Number(process.argv[2]) || 5;
const FILES = 2000;
const VIEWS = 200;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

interface Side {
  name: string;
  h: TestHost;
  base: string;
  creds: { user: string; password: string };
  svnArgs: string[];
  agent: http.Agent;
  get: typeof http.get;
}

async function side(name: string, ca: TestCa, tls: boolean): Promise<Side> {
  const port = await freePort();
  const base = `${tls ? 'https' : 'http'}://localhost:${port}`;
  // One user's 200 views in a row would spend the per-user CPU budget of the shared Trac daemon
  // (a fairness limit, not what is measured here): both sides drain it faster.
  const env: Record<string, string> = { KEELSON_APACHE_PORT: String(port), KEELSON_PUBLIC_URL: base, KEELSON_TRAC_CPU_SHARE: '10' };
  if (tls) Object.assign(env, { KEELSON_TLS_CERT: ca.cert, KEELSON_TLS_KEY: ca.key });
  const h = await startHost(`bench-${name}`, {}, env);
  const u = await h.api.post('/api/v1/users').send({ name: 'owner', email: 'o@example.com', password: 'a long enough password' });
  const creds = { user: 'owner', password: u.body.accessToken as string };
  const p = await h.api.post('/api/v1/projects').send({ slug: 'big', owner: 'owner' });
  if (p.status !== 201) throw new Error(JSON.stringify(p.body));
  await until('big active', async () => (await h.api.get('/api/v1/projects/big')).body.state === 'active', 60_000);
  const svnArgs = tls ? ['--config-option', `servers:global:ssl-authority-files=${ca.caCert}`] : [];
  const agent = tls
    ? new https.Agent({ keepAlive: true, maxSockets: 1, ca: fs.readFileSync(ca.caCert) })
    : new http.Agent({ keepAlive: true, maxSockets: 1 });
  return { name, h, base, creds, svnArgs, agent, get: (tls ? https.get : http.get) as typeof http.get };
}

/** The same 2,000 files in one commit (svn import from a local tree). */
async function fill(s: Side, tree: string): Promise<void> {
  const r = await svn(['import', '-m', `${FILES} files`, tree, `${s.base}/svn/big/trunk/src`, ...s.svnArgs], s.creds);
  if (r.code !== 0) throw new Error(r.stderr);
}

async function checkout(s: Side): Promise<number> {
  const wc = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-tls-wc-'));
  try {
    const t0 = performance.now();
    const r = await svn(['checkout', `${s.base}/svn/big/trunk`, wc, ...s.svnArgs], s.creds);
    if (r.code !== 0) throw new Error(r.stderr);
    return performance.now() - t0;
  } finally {
    fs.rmSync(wc, { recursive: true, force: true });
  }
}

function view(s: Side, url: string): Promise<number> {
  const auth = 'Basic ' + Buffer.from(`${s.creds.user}:${s.creds.password}`).toString('base64');
  return new Promise((resolve, reject) => {
    s.get(url, { agent: s.agent, headers: { authorization: auth } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    }).on('error', reject);
  });
}

async function views(s: Side): Promise<number> {
  const pages = ['wiki', 'timeline', 'browser', 'report', 'roadmap'].map((p) => `${s.base}/trac/big/${p}`);
  const t0 = performance.now();
  for (let i = 0; i < VIEWS; i++) {
    const status = await view(s, pages[i % pages.length]!);
    if (status !== 200) throw new Error(`${pages[i % pages.length]}: ${status}`);
  }
  return performance.now() - t0;
}

process.env.KEELSON_LOG = 'silent';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-tls-'));
const ca = makeCa(path.join(dir, 'ca'), ['localhost'], { ec: process.env.BENCH_TLS_KEY === 'ec' });
const tree = path.join(dir, 'tree');
for (let i = 0; i < FILES; i++) {
  const d = path.join(tree, `d${Math.floor(i / 100)}`);
  fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(path.join(d, `f${i}.txt`), `file ${i}\n`.repeat(20));
}
const plain = await side('http', ca, false);
const secure = await side('https', ca, true);
try {
  for (const s of [plain, secure]) {
    await fill(s, tree);
    await checkout(s); // warm-up: caches, Trac's daemons, the TLS session cache
    await views(s);
  }
  const t = { http: { co: [] as number[], views: [] as number[] }, https: { co: [] as number[], views: [] as number[] } };
  for (let r = 0; r < ROUNDS; r++) {
    // Alternate which goes first: the machine's drift falls on both.
    for (const s of r % 2 ? [secure, plain] : [plain, secure]) {
      const k = s === plain ? t.http : t.https;
      k.co.push(await checkout(s));
      k.views.push(await views(s));
    }
  }
  const fmt = (ms: number) => `${(ms / 1000).toFixed(3)} s`;
  const co = median(t.https.co) / median(t.http.co);
  const vw = median(t.https.views) / median(t.http.views);
  console.log(`bench/tls: ${ROUNDS} rounds each, interleaved, same run, ${new Date().toISOString()}`);
  console.log(
    `  checkout of ${FILES} files (svn, serf): http ${fmt(median(t.http.co))}, https ${fmt(median(t.https.co))}: ${co.toFixed(2)}x`,
  );
  console.log(
    `  ${VIEWS} Trac page views (one kept-alive connection): http ${fmt(median(t.http.views))}, https ${fmt(median(t.https.views))}: ${vw.toFixed(2)}x`,
  );
  console.log(`  target: HTTPS at most 1.15x: ${co <= 1.15 && vw <= 1.15 ? 'met' : 'NOT met'}`);
} finally {
  plain.agent.destroy();
  secure.agent.destroy();
  await plain.h.stop();
  await secure.h.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}

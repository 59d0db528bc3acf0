/**
 * bench/front-floods: another tenant's API call and `svn info` while Keelson's front doors are
 * flooded (issue 17), each against its idle p50 in the same run. Target: within 2x of idle.
 *
 * - the sign-in flood: one user signing in to her own account with the right password from 64
 *   connections at once (a child process; test/helpers/signin-flood.ts);
 * - the slow-connection flood: 150 connections to Apache and 150 to the API, each sending a
 *   request line and then a header every 10 s (as test/integration/front-door.test.ts).
 *
 * Called from bench/provision.ts on its host; returns the lines to print.
 */
import net from 'node:net';
import { svn, type TestHost } from '../test/helpers/host.js';
import { median } from '../test/helpers/flood.js';
import { signinFloodProcess, timedRequest } from '../test/helpers/signin-flood.js';

export interface FrontFloodTarget {
  /** A project of the victim tenant's, and credentials that may read its repository. */
  slug: string;
  creds: { user: string; password: string };
}

const FLOODER = { username: 'flooder', password: 'the flooder signs in to her own account' };

/** One slow client: a request line, then a header every `everyMs`, until destroyed or the server closes it. */
function slowClient(port: number, host: string, everyMs: number) {
  const s = net.connect(port, host);
  let timer: NodeJS.Timeout | undefined;
  s.on('error', () => {});
  s.on('close', () => clearInterval(timer));
  s.resume();
  s.on('connect', () => {
    s.write('GET /api/v1/session HTTP/1.1\r\nHost: x\r\n');
    timer = setInterval(() => s.write('X-Slow: 1\r\n'), everyMs);
  });
  return () => (clearInterval(timer), s.destroy());
}

export async function frontFloods(h: TestHost, v: FrontFloodTarget): Promise<string[]> {
  const made = await h.api.post('/api/v1/users').send({ name: FLOODER.username, email: 'flooder@example.com', password: FLOODER.password });
  if (made.status !== 201) throw new Error(`flooder not created: ${JSON.stringify(made.body)}`);
  const apiUrl = `${h.run.url}/api/v1/projects/${v.slug}`;
  const victim = async (nApi: number, nSvn: number) => {
    const api: number[] = [];
    const svnMs: number[] = [];
    for (let i = 0; i < nApi; i++) {
      const r = await timedRequest(apiUrl, { headers: { authorization: `Bearer ${h.token}` } });
      if (r.status !== 200) throw new Error(`${apiUrl} answered ${r.status}`);
      api.push(r.ms);
      if (i % Math.ceil(nApi / nSvn) === 0) {
        const t0 = performance.now();
        const s = await svn(['info', '--depth', 'empty', h.svnUrl(v.slug)], v.creds);
        if (s.code !== 0) throw new Error(`svn info: ${s.stderr}`);
        svnMs.push(performance.now() - t0);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    return { api: median(api), svn: median(svnMs) };
  };
  const ms = (x: number) => `${x.toFixed(1)} ms`;
  let idle = { api: 0, svn: 0 };
  const line = (what: string, under: { api: number; svn: number }, extra: string) => {
    const ra = under.api / idle.api;
    const rs = under.svn / idle.svn;
    return (
      `    while ${what}: another tenant's API call ${ms(under.api)} = ${ra.toFixed(2)}x, svn info ${ms(under.svn)} = ${rs.toFixed(2)}x idle` +
      ` (target <= 2x: ${ra <= 2 && rs <= 2 ? 'met' : 'NOT met'}; ${extra})`
    );
  };

  await victim(20, 5); // warm-up, not timed
  idle = await victim(200, 30);
  const out = [
    `  Keelson's front doors: another tenant's API call (GET /api/v1/projects/${v.slug}, bearer token) and svn info, idle p50 (the baseline): API ${ms(idle.api)}, svn info ${ms(idle.svn)}`,
  ];

  const flood = signinFloodProcess({ url: h.run.url!, ...FLOODER, concurrency: 64, maxMs: 120_000 });
  let signins: { api: number; svn: number };
  let counts: Map<number, number>;
  try {
    await new Promise((r) => setTimeout(r, 2000));
    signins = await victim(200, 30);
  } finally {
    counts = await flood.stop();
  }
  const c = Object.fromEntries(counts);
  out.push(line('one user signs in to her own account from 64 connections', signins, `flood answers ${JSON.stringify(c)}`));

  const slow = [
    ...Array.from({ length: 150 }, () => slowClient(h.cfg.apachePort, h.cfg.apacheHost, 10_000)),
    ...Array.from({ length: 150 }, () => slowClient(Number(new URL(h.run.url!).port), '127.0.0.1', 10_000)),
  ];
  let slowed: { api: number; svn: number };
  try {
    await new Promise((r) => setTimeout(r, 2000));
    slowed = await victim(200, 30);
  } finally {
    for (const d of slow) d();
  }
  out.push(line('150 slow connections each hold Apache and the API (a header every 10 s)', slowed, '300 connections'));
  return out;
}

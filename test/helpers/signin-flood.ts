/**
 * The sign-in flood (issue 17): `concurrency` clients each signing in to one account over and over
 * (POST /api/v1/session, a fresh connection each time, CSRF token and browser cookie of their
 * own), from a child process (signin-flood-child.ts) so the attacker's loops never run on the
 * event loop of the server they attack. Answers are counted by status.
 */
import nodeHttp from 'node:http';
import path from 'node:path';
import { spawn } from 'node:child_process';

export interface SigninFloodOptions {
  /** The API's base URL (`http://127.0.0.1:PORT`). */
  url: string;
  username: string;
  password: string;
  concurrency: number;
  /**
   * Each connection claims an address of its own in X-Forwarded-For (198.18.0.0/15; the server
   * must trust loopback as its proxy): a distributed flood, each address under its own limits.
   */
  spread?: boolean;
  /** Stops by itself after this long (default 120 s). */
  maxMs?: number;
}

interface Answer {
  status: number;
  ms: number;
  headers: nodeHttp.IncomingHttpHeaders;
  body: string;
}

/** One request on a fresh connection; resolves with its status, time, headers and body (never rejects). */
export function timedRequest(url: string, o: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = { connection: 'close', ...o.headers };
  if (o.body !== undefined) headers['content-length'] = String(Buffer.byteLength(o.body));
  const t0 = performance.now();
  return new Promise((resolve) => {
    const fail = () => resolve({ status: -1, ms: performance.now() - t0, headers: {}, body: '' });
    const req = nodeHttp.request(url, { method: o.method ?? 'GET', headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0, headers: res.headers, body }));
      res.on('error', fail);
    });
    req.setTimeout(120_000, () => req.destroy());
    req.on('error', fail);
    req.end(o.body);
  });
}

/** A browser's cookie and CSRF token, as GET /api/v1/session hands them out. */
export async function browser(url: string, forwardedFor?: string): Promise<Browser> {
  const r = await timedRequest(`${url}/api/v1/session`, { headers: forwardedFor ? { 'x-forwarded-for': forwardedFor } : {} });
  const cookie = (r.headers['set-cookie'] ?? []).map((c) => c.split(';')[0]).join('; ');
  const csrf = (JSON.parse(r.body) as { csrfToken: string }).csrfToken;
  if (!cookie || !csrf) throw new Error(`no browser cookie or CSRF token: ${r.status} ${r.body}`);
  return { cookie, csrf, forwardedFor };
}

interface Browser {
  cookie: string;
  csrf: string;
  forwardedFor?: string;
}

/** One sign-in as a browser would send it. */
export function signIn(url: string, b: Browser, username: string, password: string): Promise<Answer> {
  const headers: Record<string, string> = { 'content-type': 'application/json', cookie: b.cookie, 'x-csrf-token': b.csrf };
  if (b.forwardedFor) headers['x-forwarded-for'] = b.forwardedFor;
  return timedRequest(`${url}/api/v1/session`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ username, password }),
  });
}

/** The flood in this process (what the child runs): `stop()` ends the loops and gives the answers by status. */
export function signinFlood(o: SigninFloodOptions) {
  const counts = new Map<number, number>();
  let running = true;
  const loops = Array.from({ length: o.concurrency }, async (_, i) => {
    const b = await browser(o.url, o.spread ? `198.18.${i >> 8}.${i & 255}` : undefined);
    while (running) {
      const r = await signIn(o.url, b, o.username, o.password);
      counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
    }
  });
  return {
    async stop(): Promise<Map<number, number>> {
      running = false;
      await Promise.all(loops);
      return counts;
    },
  };
}

/** The flood in a child process, stopped by closing its stdin; `stop()` gives its answers by status. */
export function signinFloodProcess(o: SigninFloodOptions) {
  const child = spawn(process.execPath, [path.join(import.meta.dirname, 'signin-flood-child.js'), JSON.stringify(o)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  let counts: Map<number, number> | undefined;
  return {
    /** True while the child runs (it ends on its own after maxMs). */
    alive: () => child.exitCode === null && child.signalCode === null,
    async stop(): Promise<Map<number, number>> {
      if (counts) return counts;
      child.stdin.end();
      await exited;
      const parsed = out.trim() ? (JSON.parse(out) as Record<string, number>) : {};
      return (counts = new Map(Object.entries(parsed).map(([k, v]) => [Number(k), v])));
    },
  };
}

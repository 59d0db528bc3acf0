import nodeHttp from 'node:http';
import path from 'node:path';
import { spawn } from 'node:child_process';

export interface Creds {
  user: string;
  password: string;
}

/** One GET on a fresh connection; resolves with its status and milliseconds (body read and dropped). */
export function timedGet(url: string, creds?: Creds): Promise<{ status: number; ms: number }> {
  const headers: Record<string, string> = { connection: 'close' };
  if (creds) headers.authorization = 'Basic ' + Buffer.from(`${creds.user}:${creds.password}`).toString('base64');
  const t0 = performance.now();
  return new Promise((resolve) => {
    const req = nodeHttp.get(url, { headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0 }));
      res.on('error', () => resolve({ status: -1, ms: performance.now() - t0 }));
    });
    req.setTimeout(120_000, () => req.destroy());
    req.on('error', () => resolve({ status: -1, ms: performance.now() - t0 }));
  });
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** p50 of `n` sequential GETs; every one must answer 200. */
export async function pageP50(url: string, creds: Creds | undefined, n: number): Promise<number> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = await timedGet(url, creds);
    if (r.status !== 200) throw new Error(`${url} answered ${r.status}`);
    ms.push(r.ms);
  }
  return median(ms);
}

/**
 * `concurrency` clients, each sending GETs to `urls` in turn without pause, until `stop()`: the
 * attack. Bounded in time by the caller; answers are counted by status.
 */
export function flood(urls: string[], concurrency: number, creds?: Creds) {
  const counts = new Map<number, number>();
  let running = true;
  const loops = Array.from({ length: concurrency }, async (_, k) => {
    for (let i = k; running; i++) {
      const r = await timedGet(urls[i % urls.length]!, creds);
      counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
    }
  });
  return {
    counts,
    async stop(): Promise<Map<number, number>> {
      running = false;
      await Promise.all(loops);
      return counts;
    },
  };
}

/** The attacker in a child process (test/helpers/flood-child.ts), stopped by closing its stdin. */
export function floodProcess(urls: string[], concurrency: number, o: { creds?: Creds; maxMs?: number } = {}) {
  const child = spawn(
    process.execPath,
    [path.join(import.meta.dirname, 'flood-child.js'), JSON.stringify({ urls, concurrency, creds: o.creds, maxMs: o.maxMs ?? 120_000 })],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  return {
    async stop(): Promise<Map<number, number>> {
      child.stdin.end();
      await exited;
      const parsed = out.trim() ? (JSON.parse(out) as Record<string, number>) : {};
      return new Map(Object.entries(parsed).map(([k, v]) => [Number(k), v]));
    },
  };
}

/**
 * Each victim's p50 while a flood runs in another process (measured after a ramp-up, the victims
 * one after another), with the flood's answers.
 */
export async function p50Under(
  victims: { url: string; creds?: Creds }[],
  attack: { urls: string[]; concurrency: number; creds?: Creds },
  o: { samples: number; rampMs?: number },
): Promise<{ p50s: number[]; counts: Map<number, number> }> {
  const f = floodProcess(attack.urls, attack.concurrency, { creds: attack.creds });
  let counts: Map<number, number> | undefined;
  try {
    await new Promise((r) => setTimeout(r, o.rampMs ?? 4000));
    const p50s: number[] = [];
    for (const v of victims) p50s.push(await pageP50(v.url, v.creds, o.samples));
    counts = await f.stop();
    return { p50s, counts };
  } finally {
    if (!counts) await f.stop();
  }
}

/**
 * bench/provision: time from POST /api/v1/projects to "the owner's `svn info` on the repository
 * URL succeeds and the Trac URL answers 200", for N projects, against the stock sequence
 * (svnadmin create + trac-admin initenv --inherit + repository add + permission add) for N
 * projects in the same run. Prints both medians and the ratio.
 *
 * Then, on the same host, the shared Trac daemon under attack (issue 16): one tenant's own Trac
 * page p50 idle (the baseline) and while another tenant's anonymous visitors flood its slow
 * report, its highlighted pages (the 57-byte Pygments input) and its 20,000-path changeset, each
 * flood from a separate process. Target: within 2x of idle.
 *
 * Then the storage limit's cost per commit (bench/quota.ts): commit p50 with and without the
 * pre-commit quota hook, interleaved in the same run. Target: at most 5 ms.
 *
 *   npm run build && node dist/bench/provision.js [N] [--no-floods]
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { http, startHost, svn, tempDataDir, type TestHost } from '../test/helpers/host.js';
import { pageP50, p50Under } from '../test/helpers/flood.js';
import { floods, freshDaemons, plantAttacks } from '../test/helpers/trac-attacks.js';
import { quotaCost } from './quota.js';
import { frontFloods } from './front-floods.js';

const N = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 20);
const FLOODS = !process.argv.includes('--no-floods');
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const fmt = (ms: number) => `${(ms / 1000).toFixed(3)} s`;

const split = { svn: [] as number[], trac: [] as number[] };

async function keelson(): Promise<number[]> {
  process.env.KEELSON_LOG = 'silent';
  const h = await startHost('bench');
  try {
    const u = await h.api.post('/api/v1/users').send({ name: 'owner', email: 'o@example.com', password: 'a long enough password' });
    const creds = { user: 'owner', password: u.body.accessToken as string };
    // Warm-up (not timed): the mod_wsgi daemons import Trac on their first request (~0.8 s each).
    await h.api.post('/api/v1/projects').send({ slug: 'warmup', owner: 'owner' });
    for (let i = 0; i < 40; i++) {
      if ((await http(`${h.tracUrl('warmup')}/`, creds)).status === 200 && i > 10) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const times: number[] = [];
    for (let i = 0; i < N; i++) {
      const slug = `bench${i}`;
      const t0 = performance.now();
      const r = await h.api.post('/api/v1/projects').send({ slug, owner: 'owner' });
      if (r.status !== 201) throw new Error(JSON.stringify(r.body));
      while ((await svn(['info', '--depth', 'empty', h.svnUrl(slug)], creds)).code !== 0) await new Promise((res) => setTimeout(res, 5));
      const tSvn = performance.now();
      while ((await http(`${h.tracUrl(slug)}/`, creds)).status !== 200) await new Promise((res) => setTimeout(res, 5));
      times.push(performance.now() - t0);
      split.svn.push(tSvn - t0);
      split.trac.push(performance.now() - tSvn);
    }
    if (FLOODS) await commons(h);
    // Keelson's front doors (bench/front-floods.ts): the sign-in and slow-connection floods.
    if (FLOODS) floodLines.push(...(await frontFloods(h, { slug: 'bench0', creds })));
    quotaLines.push(...(await quotaCost(h, creds)));
    return times;
  } finally {
    await h.stop();
  }
}

const floodLines: string[] = [];
const quotaLines: string[] = [];

async function commons(h: TestHost): Promise<void> {
  const p = await plantAttacks(h, { paths: 20_000 });
  const ms = (x: number) => `${x.toFixed(1)} ms`;
  try {
    await freshDaemons(h, p);
    const victims: { url: string; creds?: { user: string; password: string } }[] = [p.victim, p.bystander];
    const idle: number[] = [];
    for (const v of victims) {
      await pageP50(v.url, v.creds, 5);
      idle.push(await pageP50(v.url, v.creds, 30));
    }
    floodLines.push(
      `  other tenants' Trac pages, idle p50 (the baseline): a signed-in member of a private project ${ms(idle[0]!)}, anonymous visitors of a public one ${ms(idle[1]!)}`,
    );
    for (const f of floods(p)) {
      await freshDaemons(h, p);
      const { p50s, counts } = await p50Under(victims, f, { samples: 30 });
      const sent = [...counts.values()].reduce((a, b) => a + b, 0);
      const who = f.creds ? 'clients of one signed-in stranger flood' : 'anonymous clients flood';
      const ratios = p50s.map((x, i) => x / idle[i]!);
      floodLines.push(
        `    while ${f.concurrency} ${who} the attacker's ${f.name}: member ${ms(p50s[0]!)} = ${ratios[0]!.toFixed(2)}x, anonymous ${ms(p50s[1]!)} = ${ratios[1]!.toFixed(2)}x idle` +
          ` (target <= 2x: ${ratios.every((r) => r <= 2) ? 'met' : 'NOT met'}; flood: ${sent} requests, ${counts.get(503) ?? 0} answered 503)`,
      );
      {
        await freshDaemons(h, p);
        const nul = await p50Under(victims, { ...f, urls: [h.tracUrl('no-such-project') + '/wiki'] }, { samples: 30 });
        floodLines.push(
          `      the same clients on a URL Trac answers without work (what the HTTP requests cost): member ${ms(nul.p50s[0]!)}, anonymous ${ms(nul.p50s[1]!)}`,
        );
      }
    }
  } finally {
    p.cleanup();
  }
}

function stock(): number[] {
  const dir = tempDataDir('bench-stock');
  const inherit = path.join(dir, 'shared.ini');
  fs.writeFileSync(inherit, '[components]\ntracopt.versioncontrol.svn.* = enabled\n');
  const times: number[] = [];
  try {
    for (let i = 0; i < N; i++) {
      const repo = path.join(dir, 'svn', `p${i}`);
      const env = path.join(dir, 'trac', `p${i}`);
      fs.mkdirSync(path.dirname(repo), { recursive: true });
      fs.mkdirSync(path.dirname(env), { recursive: true });
      const t0 = performance.now();
      execFileSync('svnadmin', ['create', repo]);
      execFileSync('trac-admin', [env, 'initenv', `p${i}`, 'sqlite:db/trac.db', `--inherit=${inherit}`], { stdio: 'ignore' });
      execFileSync('trac-admin', [env, 'repository', 'add', '(default)', repo, 'svn'], { stdio: 'ignore' });
      execFileSync('trac-admin', [env, 'permission', 'add', 'owner', 'TRAC_ADMIN'], { stdio: 'ignore' });
      times.push(performance.now() - t0);
    }
    return times;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const ours = await keelson();
const base = stock();
const mo = median(ours);
const mb = median(base);
console.log(`bench/provision: ${N} projects each, same run, ${new Date().toISOString()}`);
console.log(
  `  keelson (POST -> owner's svn info ok + Trac 200): median ${fmt(mo)}  p90 ${fmt(pct(ours, 90))}  max ${fmt(Math.max(...ours))}`,
);
console.log(`    of which: until svn info succeeds ${fmt(median(split.svn))}, then Trac's first 200 ${fmt(median(split.trac))} (medians)`);
console.log(
  `  stock sequence (svnadmin create + 3 trac-admin):  median ${fmt(mb)}  p90 ${fmt(pct(base, 90))}  max ${fmt(Math.max(...base))}`,
);
console.log(
  `  ratio: keelson is ${(mb / mo).toFixed(2)}x faster (target >= 4x; target median <= 0.250 s: ${mo <= 250 ? 'met' : 'NOT met'})`,
);
for (const l of floodLines) console.log(l);
for (const l of quotaLines) console.log(l);

/**
 * The storage limit's cost per commit (part of bench/provision): commit p50 through Apache with the
 * pre-commit hook in place, with an empty one and without any, interleaved in the same run on the same repository,
 * and the hook's own run time (sh, one du) on that repository with a transaction in flight.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { layout, svn, type TestHost } from '../test/helpers/host.js';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export async function quotaCost(h: TestHost, creds: { user: string; password: string }, rounds = 30): Promise<string[]> {
  const slug = 'quotabench';
  const r = await h.api.post('/api/v1/projects').send({ slug, owner: creds.user });
  if (r.status !== 201) throw new Error(JSON.stringify(r.body));
  while ((await svn(['info', '--depth', 'empty', h.svnUrl(slug)], creds)).code !== 0) await new Promise((res) => setTimeout(res, 20));
  const repo = path.join(layout(h.cfg).svnRoot, slug);
  const hook = path.join(repo, 'hooks', 'pre-commit');
  const off = path.join(repo, 'hooks', 'pre-commit.bench-off');
  const commit = async (n: number): Promise<number> => {
    const t0 = performance.now();
    const c = await svn(['mkdir', '-m', `bench ${n}`, `${h.svnUrl(slug)}/trunk/d${n}`], creds);
    if (c.code !== 0) throw new Error(c.stderr);
    return performance.now() - t0;
  };
  const withHook: number[] = [];
  const emptyHook: number[] = [];
  const without: number[] = [];
  const real = fs.readFileSync(hook);
  // Warm-up, then interleaved so drift on a noisy machine falls on all three alike.
  for (let i = 0; i < 3; i++) await commit(1000 + i);
  try {
    for (let i = 0; i < rounds; i++) {
      fs.writeFileSync(hook, real);
      withHook.push(await commit(3 * i));
      // The same file doing nothing: what Apache's start of any hook costs.
      fs.writeFileSync(hook, '#!/bin/sh\nexit 0\n');
      emptyHook.push(await commit(3 * i + 1));
      fs.renameSync(hook, off);
      try {
        without.push(await commit(3 * i + 2));
      } finally {
        fs.renameSync(off, hook);
      }
    }
  } finally {
    fs.writeFileSync(hook, real);
  }
  // The hook alone, as Apache runs it (an empty environment), on a transaction in flight.
  let hookMs: number[] = [];
  const shMs: number[] = [];
  const made = spawnSync('/usr/bin/python3', [
    '-c',
    'import sys, svn.repos, svn.fs; r = svn.repos.open(sys.argv[1]); f = svn.repos.fs(r); t = svn.fs.begin_txn(f, svn.fs.youngest_rev(f)); print(svn.fs.txn_name(t).decode())',
    repo,
  ]);
  const name = made.stdout?.toString().trim();
  if (made.status === 0 && name) {
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      const run = spawnSync('/bin/sh', [hook, repo, name], { env: {} });
      hookMs.push(performance.now() - t0);
      if (run.status !== 0) throw new Error(`the hook refused a benchmark transaction: ${run.stderr}`);
      // The same spawn of an empty shell script: what starting any hook costs here.
      const t1 = performance.now();
      spawnSync('/bin/sh', ['-c', 'exit 0'], { env: {} });
      shMs.push(performance.now() - t1);
    }
    spawnSync('svnadmin', ['rmtxns', repo, name]);
  } else hookMs = [];
  const mw = median(withHook);
  const me = median(emptyHook);
  const mo = median(without);
  return [
    `  storage limit per commit (${rounds} commits each, interleaved, svn mkdir over HTTP):`,
    `    commit p50 with the pre-commit quota hook ${mw.toFixed(1)} ms, with an empty pre-commit hook ${me.toFixed(1)} ms, with none ${mo.toFixed(1)} ms`,
    `    the quota check costs ${(mw - me).toFixed(1)} ms per commit (target <= 5 ms); Apache's start of any hook process ${(me - mo).toFixed(1)} ms more`,
    hookMs.length
      ? `    the hook alone (sh + du, a transaction in flight), spawned from Node: p50 ${median(hookMs).toFixed(1)} ms; an empty sh spawned the same way: ${median(shMs).toFixed(1)} ms`
      : `    the hook alone: not measured (${made.stderr?.toString().trim()})`,
  ];
}

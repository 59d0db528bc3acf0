import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { PROJECT_ROOT } from '../../src/paths.js';

/**
 * The `keelson` command refuses what it does not understand before it touches anything: a
 * mistyped flag used to be ignored (`keelson backup run x --ful` ran an incremental backup).
 */
describe('keelson command line', () => {
  const cli = path.join(PROJECT_ROOT, 'dist', 'src', 'cli', 'main.js');
  const run = (...args: string[]) => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keelson-cli-'));
    try {
      const r = spawnSync(process.execPath, [cli, ...args], { env: { ...process.env, KEELSON_DATA_DIR: dataDir, KEELSON_LOG: 'silent' } });
      return { status: r.status, stderr: r.stderr.toString(), created: fs.readdirSync(dataDir) };
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  };

  it('an unknown flag is refused with the usage, exit status 2, and nothing is created', () => {
    for (const args of [
      ['backup', 'run', 'demo', '--ful'],
      ['backup', 'restore', '3', '--inplace'],
      ['reconcile', '--al'],
      ['token', 'create', '--nam', 'x'],
      ['serve', '--no-apach'],
    ]) {
      const r = run(...args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /Unknown option/, args.join(' '));
      assert.match(r.stderr, /usage: /, args.join(' '));
      assert.deepEqual(r.created, [], `${args.join(' ')} created ${r.created.join(', ')}`);
    }
  });

  it('a missing value or a contradictory choice is refused the same way', () => {
    for (const args of [
      ['token', 'create', '--name'],
      ['backup', 'restore', '3'],
      ['backup', 'restore', '3', '--in-place', '--to', 'copy'],
      ['reconcile', 'demo', '--all'],
      ['reconcile', '--files-only'],
      ['backup', 'frobnicate'],
    ]) {
      const r = run(...args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /usage: /, args.join(' '));
      assert.deepEqual(r.created, [], `${args.join(' ')} created ${r.created.join(', ')}`);
    }
  });

  it('a well-formed command still runs: creating an admin token prints it', () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keelson-cli-'));
    try {
      const r = spawnSync(process.execPath, [cli, 'token', 'create', '--name', 'ops'], {
        env: { ...process.env, KEELSON_DATA_DIR: dataDir, KEELSON_LOG: 'silent' },
      });
      assert.equal(r.status, 0, r.stderr.toString());
      assert.match(r.stdout.toString(), /\S{20,}/);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

import fs from 'node:fs';
import net from 'node:net';
import nodeHttp from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import request from 'supertest';
import { loadConfig, layout, type Config } from '../../src/config.js';
import { serve, type Running, type ServeOptions } from '../../src/main/serve.js';
import { createApiToken } from './seed.js';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

/** A data directory Apache's user can reach (not under /root, which is mode 700). */
export function tempDataDir(tag: string): string {
  const d = fs.mkdtempSync(path.join('/var/tmp', `keelson-${tag}-`));
  fs.chmodSync(d, 0o755);
  return d;
}

export interface TestHost {
  cfg: Config;
  run: Running;
  token: string;
  /** supertest against the API with the admin token. */
  api: ReturnType<typeof request.agent>;
  svnUrl: (slug: string) => string;
  tracUrl: (slug: string) => string;
  stop(): Promise<void>;
}

export async function startHost(tag: string, opts: ServeOptions = {}, env: Record<string, string> = {}): Promise<TestHost> {
  const dataDir = tempDataDir(tag);
  const cfg = loadConfig({
    KEELSON_DATA_DIR: dataDir,
    // Port 0: the kernel picks a free port as the API binds it (no race with other processes).
    KEELSON_HTTP_PORT: '0',
    KEELSON_APACHE_PORT: String(await freePort()),
    ...env,
  });
  process.env.KEELSON_LOG ??= 'silent';
  const run = await serve(cfg, { scheduler: false, ...opts });
  const token = createApiToken(run.db, 'test');
  const api = request.agent(run.url!).set('authorization', `Bearer ${token}`);
  return {
    cfg,
    run,
    token,
    api,
    svnUrl: (slug) => `${cfg.publicUrl}/svn/${slug}`,
    tracUrl: (slug) => `${cfg.publicUrl}/trac/${slug}`,
    async stop() {
      await run.stop();
      if (!process.env.KEELSON_KEEP_TEST_DATA) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export { layout };

/** Waits until fn returns a truthy value; fails with the last value after timeoutMs. */
export async function until<T>(what: string, fn: () => Promise<T> | T, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface SvnResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * The real `svn` client, with its own config dir, no credential cache, and the password on
 * stdin (never in argv).
 */
export function svn(args: string[], creds?: { user: string; password: string }, cwd?: string): Promise<SvnResult> {
  const cfgDir = fs.mkdtempSync(path.join(os.tmpdir(), 'svncfg-'));
  const full = ['--config-dir', cfgDir, '--non-interactive', '--no-auth-cache', ...args];
  if (creds) full.push('--username', creds.user, '--password-from-stdin');
  return new Promise((resolve) => {
    const child = spawn('svn', full, { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => (stdout += b));
    child.stderr.on('data', (b) => (stderr += b));
    // svn may exit before it reads its password (a refused URL): the write's EPIPE is that
    // exit's business, reported through its status, never an uncaught error in a later test.
    child.stdin.on('error', () => {});
    child.stdin.end(creds ? creds.password + '\n' : '');
    child.on('close', (code) => {
      fs.rmSync(cfgDir, { recursive: true, force: true });
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/**
 * One request on a fresh connection. mod_authz_svn caches a repository's parsed authz per
 * connection, so a kept-alive connection keeps the access it started with until Apache closes it
 * (KeepAliveTimeout); each new svn command opens a new connection and sees the current file.
 */
export function http(url: string, creds?: { user: string; password: string }): Promise<{ status: number; body: string }> {
  const headers: Record<string, string> = { connection: 'close' };
  if (creds) headers.authorization = 'Basic ' + Buffer.from(`${creds.user}:${creds.password}`).toString('base64');
  return new Promise((resolve, reject) => {
    const req = nodeHttp.get(url, { headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}

/** Every file and directory below dir (relative paths), for "nothing was created" assertions. */
export function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      out.push(path.relative(dir, p));
      if (e.isDirectory()) walk(p);
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return out.sort();
}

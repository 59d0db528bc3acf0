/**
 * A real systemd for the production tests. This machine's PID 1 is not systemd, so `systemctl
 * start` cannot work on the host itself; here systemd is PID 1 of its own PID, mount and network
 * namespaces, its root an overlay of this machine's `/` whose writes land in a tmpfs and vanish
 * with it (the host's /etc, /var and /tmp are never touched: systemd's boot cleans /tmp, for one).
 * The host's boot units are removed from the overlay, so only what a test installs runs. The
 * checkout is bound read-only at /opt/keelson (where the README's Production section puts it),
 * `share` read-only at /srv/keelson-test, an 8 GiB volume of its own (tmpfs: taken only as written) at /var/backups/keelson, and
 * each `hosts` name resolves to 127.0.0.1 inside.
 * Its network is its own loopback: ports 80 and 443 inside bother nothing outside.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';

export interface BoxResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Box {
  /** Runs a command inside (every namespace, chrooted into the overlay). */
  exec(args: string[], o?: { input?: string; timeoutMs?: number }): Promise<BoxResult>;
  /** Like exec, failing the test with the command's stderr when it exits non-zero. */
  ok(args: string[], o?: { input?: string; timeoutMs?: number }): Promise<string>;
  stop(): void;
}

const BOOT = `#!/bin/bash
set -euo pipefail
R=$1 APP=$2 SHARE=$3 HOSTS=$4
# Large enough that the data volume keeps its reserve (4 GiB) with room for a restore: tmpfs takes only what is written.
mount -t tmpfs -o size=64g tmpfs "$R"
mkdir -p "$R/upper" "$R/work" "$R/m"
mount -t overlay overlay -o "lowerdir=/,upperdir=$R/upper,workdir=$R/work" "$R/m"
M=$R/m
mount -t proc proc "$M/proc"
mount --rbind /sys "$M/sys"
mount --rbind /dev "$M/dev"
mount -t tmpfs tmpfs "$M/run"
# A volume of its own for backups, as the README's Production section recommends.
mkdir -p "$M/var/backups/keelson"
mount -t tmpfs -o size=8g tmpfs "$M/var/backups/keelson"
mkdir -p "$M/opt/keelson" "$M/srv/keelson-test"
mount --bind "$APP" "$M/opt/keelson" && mount -o remount,bind,ro "$M/opt/keelson"
mount --bind "$SHARE" "$M/srv/keelson-test" && mount -o remount,bind,ro "$M/srv/keelson-test"
ip link set lo up
find "$M/etc/systemd/system" -mindepth 2 -path '*.wants/*' -delete
echo "127.0.0.1 $HOSTS" >> "$M/etc/hosts"
exec chroot "$M" env container=keelson-test /lib/systemd/systemd --system --log-target=console --log-level=warning
`;

export async function bootBox(o: { app: string; share: string; hosts: string[] }): Promise<Box> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keelson-box-'));
  const root = path.join(dir, 'root');
  fs.mkdirSync(root);
  fs.writeFileSync(path.join(dir, 'boot.sh'), BOOT, { mode: 0o755 });
  const logFd = fs.openSync(path.join(dir, 'boot.log'), 'w');
  const child: ChildProcess = spawn(
    'unshare',
    ['--pid', '--fork', '--mount', '--net', '--propagation', 'private', path.join(dir, 'boot.sh'), root, o.app, o.share, o.hosts.join(' ')],
    { stdio: ['ignore', logFd, logFd], detached: true },
  );
  fs.closeSync(logFd);
  const merged = path.join(root, 'm');
  let pid = 0;
  const deadline = Date.now() + 30_000;
  while (!pid) {
    if (Date.now() > deadline || child.exitCode !== null)
      throw new Error(`the systemd box did not start: ${fs.readFileSync(path.join(dir, 'boot.log'), 'utf8')}`);
    try {
      pid = Number(fs.readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/)[0]) || 0;
    } catch {
      /* not forked yet */
    }
    if (!pid) await new Promise((r) => setTimeout(r, 50));
  }
  const exec = (args: string[], eo: { input?: string; timeoutMs?: number } = {}): Promise<BoxResult> =>
    new Promise((resolve) => {
      const c = spawn('nsenter', ['-t', String(pid), '-a', 'chroot', merged, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      c.stdout.on('data', (b) => (stdout += b));
      c.stderr.on('data', (b) => (stderr += b));
      const t = setTimeout(() => c.kill('SIGKILL'), eo.timeoutMs ?? 120_000);
      c.stdin.on('error', () => {}); // a command that never reads its input
      c.stdin.end(eo.input ?? '');
      c.on('close', (code) => {
        clearTimeout(t);
        resolve({ code: code ?? -1, stdout, stderr });
      });
    });
  const stop = () => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const box: Box = {
    exec,
    async ok(args, eo) {
      const r = await exec(args, eo);
      if (r.code !== 0) throw new Error(`${args.join(' ')}: exit ${r.code}\n${r.stderr}${r.stdout}`);
      return r.stdout;
    },
    stop,
  };
  for (;;) {
    const r = await exec(['systemctl', 'is-system-running']);
    const state = r.stdout.trim();
    if (state === 'running' || state === 'degraded') break;
    if (Date.now() > deadline) {
      stop();
      throw new Error(`the systemd box did not come up (${state}): ${r.stderr}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return box;
}

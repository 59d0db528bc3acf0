import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import readline from 'node:readline';
import { log } from '../sys/log.js';

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer?: NodeJS.Timeout;
}

export interface HelperOptions {
  /** Run as this user and group (Keelson is root; the helper need not be). */
  uid?: number;
  gid?: number;
  cwd?: string;
  /** The whole environment of the helper; by default Keelson's own. */
  env?: NodeJS.ProcessEnv;
  /** Extra interpreter arguments before the script (e.g. -I). */
  pythonArgs?: string[];
  /** A call unanswered after this long fails and the helper is restarted (default 120 s). */
  callTimeoutMs?: number;
}

/**
 * Client of a long-lived Python helper speaking one JSON object per line each way
 * ({"id", "op", ...} in; {"id", "ok", "result"} or {"id", "ok": false, "error"} out). Importing
 * Trac or libsvn once instead of per call is what makes provisioning and publishing fast.
 * If the helper dies, pending calls fail and the next call starts a new one.
 */
export class JsonLinesHelper {
  private child: ChildProcessWithoutNullStreams | undefined;
  private pending = new Map<number, Pending>();
  private nextId = 1;

  constructor(
    private readonly python: string,
    private readonly script: string,
    private readonly name: string,
    protected opts: HelperOptions = {},
  ) {}

  private start(): ChildProcessWithoutNullStreams {
    const o = this.opts;
    const child = spawn(this.python, [...(o.pythonArgs ?? []), this.script], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: o.env ?? { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
      ...(o.uid !== undefined ? { uid: o.uid, gid: o.gid } : {}),
      ...(o.cwd ? { cwd: o.cwd } : {}),
    });
    const rl = readline.createInterface({ input: child.stdout });
    rl.on('line', (line) => {
      let msg: { id: number; ok: boolean; result?: unknown; error?: string };
      try {
        msg = JSON.parse(line);
      } catch {
        log.warn(`${this.name} helper printed a non-JSON line`, { line: line.slice(0, 200) });
        return;
      }
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      clearTimeout(p.timer);
      if (msg.ok) p.resolve(msg.result);
      else p.reject(new Error(`${this.name}: ${msg.error}`));
    });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => {
      stderr = (stderr + b.toString()).slice(-4000);
    });
    child.stdin.on('error', () => {}); // reported through 'exit'
    child.on('error', (e) => this.onExit(child, `could not start ${this.python}: ${e.message}`));
    child.on('exit', (code, sig) => this.onExit(child, `${this.name} helper exited (${code ?? sig}): ${stderr.trim()}`));
    this.child = child;
    return child;
  }

  private onExit(child: ChildProcessWithoutNullStreams, why: string): void {
    if (this.child !== child) return;
    this.child = undefined;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new Error(why));
    }
    this.pending.clear();
  }

  /**
   * One request. A call that is not answered within its timeout fails, and the helper is killed
   * (its single thread may be stuck in one project's environment); the next call starts a new one.
   */
  call<T = unknown>(op: string, args: Record<string, unknown> = {}, timeoutMs = this.opts.callTimeoutMs ?? 120_000): Promise<T> {
    const child = this.child ?? this.start();
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (!this.pending.delete(id)) return;
        reject(new Error(`${this.name}: ${op} did not answer within ${timeoutMs} ms; helper restarted`));
        if (this.child === child) {
          this.onExit(child, `${this.name} helper killed after ${op} timed out`);
          child.kill('SIGKILL');
        }
      }, timeoutMs);
      timer.unref();
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      child.stdin.write(JSON.stringify({ id, op, ...args }) + '\n');
    });
  }

  close(): void {
    const c = this.child;
    this.child = undefined;
    if (c) {
      c.stdin.end();
      c.kill('SIGTERM');
    }
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new Error(`${this.name} helper closed`));
    }
    this.pending.clear();
  }
}

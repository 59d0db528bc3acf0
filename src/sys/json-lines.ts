/**
 * Long-lived helper processes spoken to in JSON lines: one script under an interpreter (Python),
 * one request object per line in, one answer per line out, matched by id. JsonLinesHelper is one
 * process serving every call; HelperPool is up to `size` processes, each running one call at a time.
 */

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import readline from 'node:readline';
import { log } from './log.js';

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer?: NodeJS.Timeout;
}

export interface HelperOptions {
  /** Run as this user and group (the caller may be root; the helper need not be). */
  uid?: number;
  gid?: number;
  cwd?: string;
  /** The whole environment of the helper; by default this process's own (plus PYTHONDONTWRITEBYTECODE=1). */
  env?: NodeJS.ProcessEnv;
  /** Extra interpreter arguments before the script (e.g. -I). */
  pythonArgs?: string[];
  /** A call unanswered after this long fails and the helper is restarted (default 120 s). */
  callTimeoutMs?: number;
}

interface Answer {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

const DEFAULT_TIMEOUT_MS = 120_000;

/**
 * Starts one helper process: each JSON line it prints goes to onAnswer, and its end (an exit, or a
 * failure to start) to onEnd, which may therefore be called twice.
 */
function startHelper(
  python: string,
  script: string,
  name: string,
  o: HelperOptions,
  onAnswer: (msg: Answer) => void,
  onEnd: (why: string) => void,
): ChildProcessWithoutNullStreams {
  const child = spawn(python, [...(o.pythonArgs ?? []), script], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: o.env ?? { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
    ...(o.uid !== undefined ? { uid: o.uid, gid: o.gid } : {}),
    ...(o.cwd ? { cwd: o.cwd } : {}),
  });
  const rl = readline.createInterface({ input: child.stdout });
  rl.on('line', (line) => {
    let msg: Answer;
    try {
      msg = JSON.parse(line);
    } catch {
      log.warn(`${name} helper printed a non-JSON line`, { line: line.slice(0, 200) });
      return;
    }
    onAnswer(msg);
  });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => {
    stderr = (stderr + b.toString()).slice(-4000);
  });
  child.stdin.on('error', () => {}); // reported through 'exit'
  child.on('error', (e) => onEnd(`could not start ${python}: ${e.message}`));
  child.on('exit', (code, sig) => onEnd(`${name} helper exited (${code ?? sig}): ${stderr.trim()}`));
  return child;
}

/**
 * Client of a long-lived Python helper speaking one JSON object per line each way
 * ({"id", "op", ...} in; {"id", "ok", "result"} or {"id", "ok": false, "error"} out). Importing
 * heavy modules once instead of per call is what makes such a helper fast.
 * If the helper dies, pending calls fail and the next call starts a new one.
 *
 * One process serves every call, so a call that times out fails the others pending with it; a
 * helper whose calls must not fail together is a HelperPool.
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
    const child: ChildProcessWithoutNullStreams = startHelper(
      this.python,
      this.script,
      this.name,
      this.opts,
      (msg) => {
        const p = this.pending.get(msg.id);
        if (!p) return;
        this.pending.delete(msg.id);
        clearTimeout(p.timer);
        if (msg.ok) p.resolve(msg.result);
        else p.reject(new Error(`${this.name}: ${msg.error}`));
      },
      (why) => this.onExit(child, why),
    );
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
   * (its single thread may be stuck); the next call starts a new one.
   */
  call<T = unknown>(op: string, args: Record<string, unknown> = {}, timeoutMs = this.opts.callTimeoutMs ?? DEFAULT_TIMEOUT_MS): Promise<T> {
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

export interface PoolOptions extends HelperOptions {
  /** At most this many helper processes, each running one call at a time (default 2). */
  size?: number;
}

/** A call of a HelperPool: waiting in the queue (timer: its wait) or running on a process (timer: its run). */
interface PoolCall {
  id: number;
  op: string;
  line: string;
  timeoutMs: number;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer?: NodeJS.Timeout;
}

interface PoolProcess {
  child: ChildProcessWithoutNullStreams;
  /** The one call in flight on this process, if any. */
  call: PoolCall | undefined;
}

/** A call that never reached a helper process: every one was busy for its whole timeout. */
export class HelperBusyError extends Error {}

/**
 * The same helper as JsonLinesHelper, as a pool of up to `size` processes that each run ONE call
 * at a time, so calls fail alone: a call past its timeout kills (SIGKILL) only the process that
 * runs it, and a process that dies fails only the call it was running; queued calls and calls on
 * the other processes go on, and a new process takes the dead one's place when a call needs it.
 *
 * Processes start lazily (one per call while fewer than `size` run and none is free) and are kept
 * alive for later calls. Calls beyond the free processes wait in a FIFO queue.
 *
 * Timeouts: a call's timeout counts from when it is sent to a process, so a long queue does not
 * time a call out for other calls' work. Its wait in the queue is bounded too, by the same
 * timeout: a call still queued after `timeoutMs` fails ("waited ... for a free helper") without
 * killing anything. A call thus fails after at most twice its timeout, and never waits forever.
 * A killed process leaves the pool at once (its replacement may start before it has exited).
 */
export class HelperPool {
  private procs = new Set<PoolProcess>();
  private queue: PoolCall[] = [];
  private nextId = 1;

  constructor(
    private readonly python: string,
    private readonly script: string,
    private readonly name: string,
    protected opts: PoolOptions = {},
  ) {}

  /** How many processes may run at once. */
  get size(): number {
    return Math.max(1, Math.floor(this.opts.size ?? 2));
  }

  /** Processes running now (busy or idle), and calls waiting for one: for tests and diagnostics. */
  stats(): { processes: number; busy: number; queued: number } {
    let busy = 0;
    for (const p of this.procs) if (p.call) busy++;
    return { processes: this.procs.size, busy, queued: this.queue.length };
  }

  /**
   * One request, on a free process (started if none is free and the pool has room), or after the
   * calls queued before it. It fails if it waits in the queue longer than timeoutMs, or is not
   * answered within timeoutMs of being sent (its process is then killed; no other call fails).
   */
  call<T = unknown>(op: string, args: Record<string, unknown> = {}, timeoutMs = this.opts.callTimeoutMs ?? DEFAULT_TIMEOUT_MS): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const id = this.nextId++;
      const c: PoolCall = {
        id,
        op,
        line: JSON.stringify({ id, op, ...args }) + '\n',
        timeoutMs,
        resolve: resolve as (v: unknown) => void,
        reject,
      };
      c.timer = setTimeout(() => {
        const i = this.queue.indexOf(c);
        if (i < 0) return;
        this.queue.splice(i, 1);
        reject(new HelperBusyError(`${this.name}: ${op} waited ${timeoutMs} ms for a free helper (all ${this.size} busy)`));
      }, timeoutMs);
      c.timer.unref();
      this.queue.push(c);
      this.dispatch();
    });
  }

  /** Ends every process; calls running or queued fail. A later call starts new processes. */
  close(): void {
    const procs = [...this.procs];
    const queued = this.queue;
    this.procs.clear();
    this.queue = [];
    const closed = () => new Error(`${this.name} helper closed`);
    for (const p of procs) {
      const c = p.call;
      p.call = undefined;
      p.child.stdin.end();
      p.child.kill('SIGTERM');
      if (c) {
        clearTimeout(c.timer);
        c.reject(closed());
      }
    }
    for (const c of queued) {
      clearTimeout(c.timer);
      c.reject(closed());
    }
  }

  /** Sends queued calls, oldest first, to free processes (starting processes while there is room). */
  private dispatch(): void {
    while (this.queue.length) {
      let p: PoolProcess | undefined;
      try {
        p = this.freeProcess();
      } catch (e) {
        // spawn() itself threw (a bad option): the call that needed the process fails.
        const c = this.queue.shift()!;
        clearTimeout(c.timer);
        c.reject(new Error(`${this.name}: could not start the helper: ${(e as Error).message}`));
        continue;
      }
      if (!p) return;
      const c = this.queue.shift()!;
      clearTimeout(c.timer);
      this.send(p, c);
    }
  }

  private freeProcess(): PoolProcess | undefined {
    for (const p of this.procs) if (!p.call) return p;
    if (this.procs.size >= this.size) return undefined;
    const p: PoolProcess = {
      child: startHelper(
        this.python,
        this.script,
        this.name,
        this.opts,
        (msg) => this.onAnswer(p, msg),
        (why) => this.onEnd(p, why),
      ),
      call: undefined,
    };
    this.procs.add(p);
    return p;
  }

  private send(p: PoolProcess, c: PoolCall): void {
    p.call = c;
    c.timer = setTimeout(() => {
      if (p.call !== c) return;
      // Its one thread may be stuck: this process goes, no other.
      p.call = undefined;
      this.procs.delete(p);
      p.child.kill('SIGKILL');
      c.reject(new Error(`${this.name}: ${c.op} did not answer within ${c.timeoutMs} ms; its helper process was killed`));
      this.dispatch();
    }, c.timeoutMs);
    c.timer.unref();
    p.child.stdin.write(c.line);
  }

  private onAnswer(p: PoolProcess, msg: Answer): void {
    const c = p.call;
    if (!c || msg.id !== c.id) return;
    p.call = undefined;
    clearTimeout(c.timer);
    if (msg.ok) c.resolve(msg.result);
    else c.reject(new Error(`${this.name}: ${msg.error}`));
    this.dispatch();
  }

  /** A process exited (or failed to start): only its own call fails; queued calls get a new one. */
  private onEnd(p: PoolProcess, why: string): void {
    this.procs.delete(p);
    const c = p.call;
    p.call = undefined;
    if (c) {
      clearTimeout(c.timer);
      c.reject(new Error(why));
    }
    this.dispatch();
  }
}

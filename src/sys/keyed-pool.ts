/**
 * A bounded pool for expensive work that belongs to someone (a password hash belongs to an
 * account): at most `concurrency` tasks run, at most `queue` wait for a slot, and each key has at
 * most one task running or waiting for a slot. A key's further tasks wait in that key's own lane
 * (at most `perKey` of them) and take a place at the back of the queue only when the key's
 * previous task is done, so one key's flood holds one slot, never all of them.
 */

export class PoolBusyError extends Error {
  constructor(
    /** `full`: the queue is full; `key`: this key's lane is full. */
    readonly reason: 'full' | 'key',
  ) {
    super(reason === 'full' ? 'the pool and its queue are full' : 'this key has too many tasks waiting');
  }
}

interface Task {
  key: string;
  run: () => Promise<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

export interface KeyedPoolOptions {
  concurrency: number;
  queue: number;
  perKey: number;
}

export class KeyedPool {
  private running = 0;
  private readonly queued: Task[] = [];
  /** Keys with a task running or queued, and that key's tasks waiting behind it. */
  private readonly lanes = new Map<string, Task[]>();

  constructor(private readonly o: KeyedPoolOptions) {}

  /** Counts for tests and logs: running, waiting for a slot, waiting in a key's lane. */
  stats(): { running: number; queued: number; laned: number } {
    let laned = 0;
    for (const l of this.lanes.values()) laned += l.length;
    return { running: this.running, queued: this.queued.length, laned };
  }

  /** Runs `fn` when a slot is free and no earlier task of `key` is unfinished; rejects at once with PoolBusyError when there is no room. */
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const task: Task = { key, run: fn, resolve: resolve as (v: unknown) => void, reject };
      const lane = this.lanes.get(key);
      if (lane) {
        if (lane.length >= this.o.perKey) return reject(new PoolBusyError('key'));
        lane.push(task);
        return;
      }
      if (!this.admit(task)) return reject(new PoolBusyError('full'));
      this.lanes.set(key, []);
    });
  }

  /** Starts the task or queues it; false when the queue is full. */
  private admit(task: Task): boolean {
    if (this.running < this.o.concurrency) {
      this.start(task);
      return true;
    }
    if (this.queued.length >= this.o.queue) return false;
    this.queued.push(task);
    return true;
  }

  private start(task: Task): void {
    this.running++;
    let p: Promise<unknown>;
    try {
      p = task.run();
    } catch (e) {
      p = Promise.reject(e);
    }
    p.then(task.resolve, task.reject).finally(() => {
      this.running--;
      // The queue first: the key's next task goes behind everyone already waiting.
      const next = this.queued.shift();
      if (next) this.start(next);
      this.done(task.key);
    });
  }

  /** The key's next task goes to the back of the queue (or is refused when the queue filled meanwhile). */
  private done(key: string): void {
    const lane = this.lanes.get(key);
    for (let next = lane?.shift(); next; next = lane?.shift()) {
      if (this.admit(next)) return;
      next.reject(new PoolBusyError('full'));
    }
    this.lanes.delete(key);
  }
}

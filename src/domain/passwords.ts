/**
 * Password hashing as the use cases share it: every hash and check runs off the event loop
 * (src/sys/password.ts) in one bounded pool per host, KEELSON_HASH_CONCURRENCY at once and
 * KEELSON_HASH_QUEUE waiting, beyond which the caller gets 503 with Retry-After. Each account has
 * at most one hash running or queued; its further attempts wait behind it (at most
 * KEELSON_HASH_QUEUE of them, then 429), so one account's flood holds one slot and every other
 * account's sign-in still finds room.
 */
import type { Config } from '../config.js';
import type { Ctx } from './context.js';
import { DomainError, ThrottledError } from '../errors.js';
import { KeyedPool, PoolBusyError } from '../sys/keyed-pool.js';
import * as scrypt from '../sys/password.js';

/** 503: the hash pool and its queue are full; `retryAfter` (seconds) becomes the `Retry-After` header. */
export class BusyError extends DomainError {
  constructor(
    message: string,
    readonly retryAfter: number,
  ) {
    super(503, 'busy', message);
  }
}

// One pool per configuration: one per process in production; a test's hosts each get their own.
const pools = new WeakMap<Config, KeyedPool>();

export function hashPool(cfg: Config): KeyedPool {
  let p = pools.get(cfg);
  if (!p)
    pools.set(cfg, (p = new KeyedPool({ concurrency: cfg.hashConcurrency, queue: cfg.hashQueue, perKey: Math.max(1, cfg.hashQueue) })));
  return p;
}

/** The key of an account's lane: the name as typed, case-folded and bounded, like the throttles'. */
export const accountKey = (name: string): string => name.toLowerCase().slice(0, 64);

/**
 * Runs `fn` holding a hash slot for `account`. `fn`'s synchronous part runs when the slot is
 * taken, after every earlier attempt for the same account has finished: the place to check and
 * count limits that those attempts may have moved.
 */
export async function withHashSlot<T>(ctx: Ctx, account: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await hashPool(ctx.cfg).run(accountKey(account), fn);
  } catch (e) {
    if (!(e instanceof PoolBusyError)) throw e;
    if (e.reason === 'key') throw new ThrottledError('Other sign-ins for this account are being checked; try again in a moment.', 1);
    throw new BusyError('Too many sign-ins are being checked right now; try again in a moment.', 1);
  }
}

/** A new password's stored hash, computed in the pool (before any transaction that stores it). */
export const hashPassword = (ctx: Ctx, account: string, password: string): Promise<string> =>
  withHashSlot(ctx, account, () => scrypt.hashPassword(password));

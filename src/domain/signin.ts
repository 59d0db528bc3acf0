/**
 * Sign-in and sign-up as the web forms and the JSON API share them: throttles, the password
 * check that never says which half was wrong, the capacity gate, invites and the waitlist.
 */
import crypto from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DB } from '../store/db.js';
import type { Config } from '../config.js';
import type { Actor, Ctx } from './context.js';
import * as throttles from '../store/throttles.js';
import * as invites from '../store/invites.js';
import { getUser, type UserRow } from '../store/users.js';
import { getProject } from '../store/projects.js';
import { audit } from '../store/audit.js';
import { slugHeldByRestore } from '../store/leases.js';
import { ConflictError, DomainError, InputError, NotAllowedError, ThrottledError } from '../errors.js';
import { log } from '../sys/log.js';
import { verifyPassword } from '../sys/password.js';
import { CapacityError, gate } from './capacity.js';
import { refuseOverProjectLimit } from './limits.js';
import { BusyError, hashPassword, withHashSlot } from './passwords.js';
import { inUnit } from './unit.js';
import { addUser } from './accounts.js';
import { addProject } from './projects.js';

// Shared with the mutation limits (src/domain/limits.ts); re-exported for the sign-in pages.
export { ThrottledError };

/** Same message whether the account exists, is disabled, or the password is wrong. */
export const LOGIN_FAILED = 'Wrong user name or password.';

// A stored hash that matches no password, so an unknown name costs the same scrypt as a known one.
const DUMMY_HASH = `scrypt$16384$8$1$${crypto.randomBytes(16).toString('base64')}$${crypto.randomBytes(32).toString('base64')}`;

const minutes = (s: number) => `${Math.max(1, Math.ceil(s / 60))} minute${s > 60 ? 's' : ''}`;

/**
 * How long an attempt for an account waits before it is answered, given the account's failed
 * sign-ins (from every address) in the current window: nothing below the threshold, then the
 * first delay, doubling with each further failure, never more than the cap.
 */
export function slowdownMs(failures: number, s: Config['loginSlowdown']): number {
  if (failures < s.after || s.maxDelayMs <= 0) return 0;
  return Math.min(s.maxDelayMs, s.firstDelayMs * 2 ** Math.min(failures - s.after, 20));
}

/** The throttle keys of one sign-in attempt (the user name as typed, case-folded and bounded). */
function loginKeys(username: string, client: string) {
  const address = throttleAddress(client);
  const name = username.toLowerCase().slice(0, 64);
  return {
    name,
    /** Failures for this account from this address: over the limit, 429 for this pair only. */
    pair: `login:acct-addr:${JSON.stringify([name, address])}`,
    /** Failures from this address for any account: over the limit, 429 for this address. */
    addr: `login:addr:${address}`,
    /** Failures for this account from every address: never a 429, only a slow-down. */
    acct: `login:acct:${name}`,
    /** Every attempt, right or wrong, for this account from this address: over the limit, 429 for this pair. */
    triesPair: `login:tries:acct-addr:${JSON.stringify([name, address])}`,
    /** Every attempt from this address for any account: over the limit, 429 for this address. */
    triesAddr: `login:tries:addr:${address}`,
  };
}

function refuseIfThrottled(db: DB, cfg: Config, k: ReturnType<typeof loginKeys>): void {
  const wait = Math.max(throttles.throttled(db, k.pair, cfg.loginPerAccountAddress), throttles.throttled(db, k.addr, cfg.loginPerAddress));
  if (wait > 0) throw new ThrottledError(`Too many failed sign-ins. Try again in ${minutes(wait)}.`, wait);
}

/**
 * Counts one attempt, right or wrong, per (account, address) and per address, or refuses it when
 * either is over its limit (KEELSON_LOGIN_ATTEMPTS_*): a right password does not buy a hash
 * without limit. No account-wide count: other addresses are never refused for it.
 */
function countAttempt(db: DB, cfg: Config, k: ReturnType<typeof loginKeys>): void {
  const wait = Math.max(
    throttles.throttled(db, k.triesPair, cfg.loginAttemptsPerAccount),
    throttles.throttled(db, k.triesAddr, cfg.loginAttemptsPerAddress),
  );
  if (wait > 0) throw new ThrottledError(`Too many sign-ins from your address. Try again in ${minutes(wait)}.`, wait);
  throttles.hit(db, k.triesPair, cfg.loginAttemptsPerAccount);
  throttles.hit(db, k.triesAddr, cfg.loginAttemptsPerAddress);
}

/**
 * Checks a user name and password (sign-in, and the current password when changing it). Every
 * attempt, right or wrong, is counted per (account, address) and per address (countAttempt).
 * Guessing is limited per (account, address) and per address, with 429 for that address only; an
 * account as a whole is never locked, so nobody can lock another user out: once it has failed often
 * from anywhere, every attempt for it (right or wrong) is answered late, by at most the configured
 * cap. A success clears this address's count for the account, not the account-wide one. The
 * password is checked off the event loop, in the bounded hash pool (src/domain/passwords.ts).
 */
export async function login(ctx: Ctx, username: string, password: string, address: string): Promise<UserRow> {
  try {
    return await checkLogin(ctx, username, password, address);
  } catch (e) {
    // A refusal (429, or 503 from a full hash pool) is answered after a pause: a client that
    // signs in again as soon as it is answered then costs the event loop a request a second per
    // connection. Measured: 64 such connections answered at once kept another tenant's API call
    // at 45-52x its idle p50; answered after the pause, within 2x (test/integration/signin-flood.test.ts).
    const retryAfter = (e as { retryAfter?: unknown }).retryAfter;
    if (typeof retryAfter === 'number' && (e instanceof ThrottledError || e instanceof BusyError))
      await sleep(Math.min(REFUSAL_PAUSE_MS, retryAfter * 1000));
    throw e;
  }
}

/** How long a refused sign-in waits before it is answered (never longer than its Retry-After). */
export const REFUSAL_PAUSE_MS = 1000;

async function checkLogin(ctx: Ctx, username: string, password: string, address: string): Promise<UserRow> {
  const { db, cfg } = ctx;
  const k = loginKeys(username, address);
  refuseIfThrottled(db, cfg, k);
  countAttempt(db, cfg, k);
  const delay = slowdownMs(throttles.counted(db, k.acct, cfg.loginSlowdown.windowSeconds), cfg.loginSlowdown);
  if (delay > 0) {
    await sleep(delay);
    refuseIfThrottled(db, cfg, k);
  }
  const user = await withHashSlot(ctx, k.name, async () => {
    // Every earlier attempt for this account has finished: the limits are checked again and this
    // attempt is counted as a failure before the hash (taken back on success), so attempts
    // running in parallel cannot overrun the per-(account, address) and per-address limits.
    refuseIfThrottled(db, cfg, k);
    throttles.hit(db, k.pair, cfg.loginPerAccountAddress);
    throttles.hit(db, k.addr, cfg.loginPerAddress);
    const u = getUser(db, username);
    const ok = (await verifyPassword(password, u?.password_hash ?? DUMMY_HASH)) && !!u && !u.disabled_at;
    return ok ? u : undefined;
  });
  if (!user) {
    const failures = throttles.hit(db, k.acct, { max: cfg.loginSlowdown.after, windowSeconds: cfg.loginSlowdown.windowSeconds });
    if (failures === cfg.loginSlowdown.after && cfg.loginSlowdown.maxDelayMs > 0)
      log.warn('failed sign-ins for one account: slowing down every attempt for it', {
        account: k.name,
        failures,
        windowSeconds: cfg.loginSlowdown.windowSeconds,
        lastAddress: address,
      });
    throw new DomainError(401, 'login_failed', LOGIN_FAILED);
  }
  throttles.clearThrottle(db, k.pair);
  throttles.uncount(db, k.addr);
  audit(db, `user:${user.name}`, 'session.create', user.name, { address });
  return user;
}

/** Counts a signup (or waitlist) attempt from an address; throws when the address is over its limit. */
export function countSignupAttempt(ctx: Ctx, address: string): void {
  const { db, cfg } = ctx;
  const key = `signup:addr:${throttleAddress(address)}`;
  const wait = throttles.throttled(db, key, cfg.signupPerAddress);
  if (wait > 0) throw new ThrottledError(`Too many signups from your address. Try again in ${minutes(wait)}.`, wait);
  throttles.hit(db, key, cfg.signupPerAddress);
}

export interface SignupInput {
  username: string;
  email: string;
  password: string;
  invite?: string;
  project?: { slug: string; title?: string; visibility: 'private' | 'public' };
}

/**
 * A new account and, optionally, its first project, in one transaction: either both exist
 * afterwards or neither. The capacity gate is checked inside the transaction, so two signups
 * racing for the last slot cannot both get it. The password is hashed before it, in the hash pool
 * (a transaction never waits on a hash). Apache takes the new token on the next request, without
 * waiting for the worker.
 */
export async function signup(ctx: Ctx, input: SignupInput, address: string) {
  const { cfg } = ctx;
  const passwordHash = await hashPassword(ctx, input.username, input.password);
  const out = inUnit(ctx, `signup:${address}`, (u) => {
    const g = gate(u.db, cfg);
    const invited = input.invite ? invites.inviteValid(u.db, input.invite) : false;
    if (input.invite && !invited) throw new InputError('invite: this invite code is not valid or was already used');
    if (!invited) {
      if (g.capacity.signupMode === 'closed') throw new CapacityError('signup is closed on this host; join the waitlist');
      if (g.capacity.signupMode === 'invite') throw new CapacityError('signup on this host needs an invite code');
      if (g.full) throw new CapacityError(`${g.full}; join the waitlist`);
    } else if (input.project && g.freeBytes < g.capacity.minFreeBytes) {
      // An invite lets a person past the project limit and the signup mode, never past the disk floor.
      throw new CapacityError('this host is low on disk space; try again later');
    }
    if (getUser(u.db, input.username)) throw new ConflictError(`username: ${input.username} is taken`);
    if (input.project && getProject(u.db, input.project.slug))
      throw new ConflictError(`project.slug: a project named ${input.project.slug} exists`);
    if (input.project && slugHeldByRestore(u.db, input.project.slug))
      throw new ConflictError(`project.slug: ${input.project.slug} is being restored from a backup; choose another name`);
    const { user, accessToken } = addUser(u, { name: input.username, email: input.email, passwordHash });
    if (input.invite) invites.useInvite(u.db, input.invite, input.username);
    // The new account's own limit applies to its first project too (an operator may set it to 0).
    if (input.project) refuseOverProjectLimit(u.db, input.username, input.username);
    // The project is the new user's own act (audited as theirs), in the same transaction.
    const project = input.project
      ? inUnit(ctx, `user:${input.username}`, (mine) =>
          addProject(mine, {
            slug: input.project!.slug,
            title: input.project!.title || input.project!.slug,
            visibility: input.project!.visibility,
            owner: input.username,
          }),
        )
      : undefined;
    return { user, accessToken, project };
  });
  ctx.fx.credentialChanged(out.user.name);
  return out;
}

/** Adds an address to the waitlist; adding it twice is not an error (and tells nobody anything). */
export function joinWaitlist(ctx: Ctx, email: string): void {
  invites.joinWaitlist(ctx.db, email);
}

export const listWaitlist = (ctx: Ctx) => invites.listWaitlist(ctx.db);
export const listInvites = (ctx: Ctx) => invites.listInvites(ctx.db);

/** Makes an invite code (shown once, and logged, since there is no mail); marks the waitlist entry invited. */
export function createInvite(ctx: Ctx, actor: Actor, email: string | null): string {
  if (!actor.admin) throw new NotAllowedError('this needs an operator (admin) account');
  const code = 'inv-' + crypto.randomBytes(12).toString('base64url');
  inUnit(ctx, actor.label, (u) => {
    invites.insertInvite(u.db, actor.label, code, email);
    u.audit('invite.create', email ?? '(no address)');
  });
  log.info('invite created', { email, code, by: actor.label });
  return code;
}

/**
 * The address a per-address throttle counts: an IPv4 address as it is, an IPv6 address by its /64
 * (one subscriber's network: a client given a /64 has 2^64 addresses to rotate through).
 */
export function throttleAddress(address: string): string {
  const a = address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
  if (!a.includes(':')) return a;
  const [head = '', tail = ''] = a.split('::', 2) as [string, string?];
  const h = head ? head.split(':') : [];
  const t = a.includes('::') && tail ? tail.split(':') : [];
  const groups = a.includes('::') ? [...h, ...Array<string>(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t] : h;
  return `${groups
    .slice(0, 4)
    .map((g) => (parseInt(g || '0', 16) || 0).toString(16))
    .join(':')}::/64`;
}

/**
 * The caller's address for the per-address throttles: Express's `req.ip`, which follows
 * X-Forwarded-For only through the proxies KEELSON_TRUST_PROXY names, else the socket's peer.
 */
export const addressOf = (req: { ip?: string; socket: { remoteAddress?: string } }): string =>
  req.ip ?? req.socket.remoteAddress ?? 'unknown';

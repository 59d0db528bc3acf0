/**
 * Sign-in and sign-up as the web forms and the JSON API share them: throttles, the password
 * check that never says which half was wrong, the capacity gate.
 */
import type { DB } from '../store/db.js';
import { layout, type Config } from '../config.js';
import { syncUserCredential } from '../authz/credentials.js';
import * as model from '../store/model.js';
import * as web from './store.js';
import { DomainError } from '../errors.js';
import type { z } from 'zod';
import type { signupBody } from '../api/schemas.js';

export class ThrottledError extends DomainError {
  constructor(
    message: string,
    readonly retryAfter: number,
  ) {
    super(429, 'throttled', message);
  }
}

/** Same message whether the account exists, is disabled, or the password is wrong. */
export const LOGIN_FAILED = 'Wrong user name or password.';

// A hash of a random password, so an unknown name costs the same scrypt as a known one.
let dummyHash: string | undefined;

const minutes = (s: number) => `${Math.max(1, Math.ceil(s / 60))} minute${s > 60 ? 's' : ''}`;

export function login(db: DB, cfg: Config, username: string, password: string, address: string): model.UserRow {
  const acct = `login:acct:${username.toLowerCase().slice(0, 64)}`;
  const addr = `login:addr:${address}`;
  const wait = Math.max(web.throttled(db, acct, cfg.loginPerAccount), web.throttled(db, addr, cfg.loginPerAddress));
  if (wait > 0) throw new ThrottledError(`Too many failed sign-ins. Try again in ${minutes(wait)}.`, wait);
  const user = model.getUser(db, username);
  dummyHash ??= model.hashPassword('not a real password ' + Math.random());
  const ok = model.verifyPassword(password, user?.password_hash ?? dummyHash) && !!user && !user.disabled_at;
  if (!ok || !user) {
    web.hit(db, acct, cfg.loginPerAccount);
    web.hit(db, addr, cfg.loginPerAddress);
    throw new DomainError(401, 'login_failed', LOGIN_FAILED);
  }
  web.clearThrottle(db, acct);
  model.audit(db, `user:${user.name}`, 'session.create', user.name, { address });
  return user;
}

/** Counts a signup (or waitlist) attempt from an address; throws when the address is over its limit. */
export function countSignupAttempt(db: DB, cfg: Config, address: string): void {
  const key = `signup:addr:${address}`;
  const wait = web.throttled(db, key, cfg.signupPerAddress);
  if (wait > 0) throw new ThrottledError(`Too many signups from your address. Try again in ${minutes(wait)}.`, wait);
  web.hit(db, key, cfg.signupPerAddress);
}

export function signup(db: DB, cfg: Config, b: z.infer<typeof signupBody>, address: string) {
  const out = web.signup(
    db,
    cfg,
    { username: b.username, email: b.email, password: b.password, invite: b.invite, project: b.project },
    address,
  );
  // Apache takes the new token on the next request, without waiting for the worker.
  syncUserCredential(db, layout(cfg).authDb, out.user.name);
  return out;
}

export function rotateToken(db: DB, cfg: Config, actor: string, name: string): string {
  const token = model.rotateAccessToken(db, actor, name);
  syncUserCredential(db, layout(cfg).authDb, name);
  return token;
}

/**
 * The caller's address for the per-address throttles: Express's `req.ip`, which follows
 * X-Forwarded-For only through the proxies KEELSON_TRUST_PROXY names, else the socket's peer.
 */
export const addressOf = (req: { ip?: string; socket: { remoteAddress?: string } }): string =>
  req.ip ?? req.socket.remoteAddress ?? 'unknown';

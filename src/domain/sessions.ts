/**
 * Who a request is: admin API tokens, browser sessions (idle expiry, sliding), the CSRF key, and
 * the form a session was filling in when it expired (its draft).
 */
import type { Actor, Ctx } from './context.js';
import * as sessions from '../store/sessions.js';
import { csrfSecret as storedCsrfSecret } from '../store/settings.js';
import { insertApiToken, useApiToken } from '../store/tokens.js';
import { ConflictError } from '../errors.js';
import { inUnit } from './unit.js';
import { assertApiTokenName, hashApiToken, newApiToken } from './tokens.js';

export type { SessionRow } from '../store/sessions.js';

/** The operator an admin API token stands for, or undefined when the token is unknown. */
export function actorForToken(ctx: Ctx, token: string): Actor | undefined {
  const tok = useApiToken(ctx.db, hashApiToken(token));
  return tok ? { kind: 'token', label: `token:${tok.name}`, admin: tok.scopes.includes('admin') } : undefined;
}

/** Makes an admin API token (shown once; only its hash is kept). */
export function createApiToken(ctx: Pick<Ctx, 'db' | 'fx'>, name: string, scopes: string[] = ['admin']): string {
  assertApiTokenName(name);
  const token = newApiToken();
  inUnit(ctx, 'cli', (u) => {
    if (!insertApiToken(u.db, name, hashApiToken(token), scopes)) throw new ConflictError(`a token named ${name} exists`);
    u.audit('token.create', name, { scopes });
  });
  return token;
}

/** A new browser session; the user's oldest beyond KEELSON_SESSIONS_PER_USER end with it. */
export const startSession = (ctx: Ctx, userId: number): string =>
  sessions.createSession(ctx.db, userId, ctx.cfg.sessionIdleSeconds, ctx.cfg.sessionsPerUser);

/** The live session of a cookie token with its user and actor, sliding its expiry; undefined if gone. */
export function sessionFor(ctx: Ctx, token: string) {
  const s = sessions.touchSession(ctx.db, token, ctx.cfg.sessionIdleSeconds);
  if (!s) return undefined;
  const actor: Actor = { kind: 'user', label: `user:${s.user.name}`, user: s.user.name, admin: !!s.user.is_admin };
  return { session: s, actor };
}

export const endSession = (ctx: Ctx, token: string): void => sessions.deleteSession(ctx.db, token);

/** The server's HMAC key for CSRF tokens, made once per database. */
export const csrfSecret = (ctx: Ctx): Buffer => storedCsrfSecret(ctx.db);

export const saveDraft = (ctx: Ctx, token: string, draft: { path: string; fields: Record<string, string> } | null): void =>
  sessions.setDraft(ctx.db, token, draft);

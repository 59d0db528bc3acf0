import crypto from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import type { Actor, Ctx } from '../domain/context.js';
import {
  actorForToken,
  csrfSecret,
  endSession as dropSession,
  sessionFor,
  startSession as newSession,
  type SessionRow,
} from '../domain/sessions.js';
import { projectFor } from '../domain/projects.js';
import { AuthenticationError, DomainError, NotAllowedError } from '../errors.js';
import type { Role } from '../names.js';
import type { Config } from '../config.js';
import type { UserRow } from '../domain/users.js';

export type { Actor };

export interface Authed extends Request {
  actor?: Actor;
}

export const actorLabel = (req: Authed): string => req.actor?.label ?? 'anonymous';

/** Reads a Bearer admin token if one is sent; leaves `req.actor` alone otherwise. */
export function bearerToken(ctx: Ctx): RequestHandler {
  return (req: Authed, _res, next) => {
    const header = req.get('authorization');
    if (header !== undefined) {
      const m = header.match(/^Bearer (\S+)$/);
      const actor = m ? actorForToken(ctx, m[1]!) : undefined;
      if (!actor) throw new AuthenticationError('the Authorization header does not carry a valid token');
      req.actor = actor;
    }
    next();
  };
}

export const requireSignedIn: RequestHandler = (req: Authed, _res, next) => {
  if (!req.actor)
    throw new AuthenticationError(
      'sign in, or send an admin token (Authorization: Bearer <token>; create one with `keelson token create --name NAME`)',
    );
  next();
};

export const requireAdmin: RequestHandler = (req: Authed, _res, next) => {
  if (!req.actor)
    throw new AuthenticationError(
      'an admin token is required (Authorization: Bearer <token>; create one with `keelson token create --name NAME`)',
    );
  if (!req.actor.admin) throw new NotAllowedError('this needs an operator (admin) account');
  next();
};

/**
 * Guards a `/projects/:slug...` route: the actor needs at least `min` in that project (admins pass).
 * A project the actor cannot see at all answers 404, so slugs of private projects do not leak.
 */
export function requireProjectRole(ctx: Ctx, min: Role): RequestHandler {
  return (req: Authed, _res, next) => {
    projectFor(ctx, req.actor, String(req.params.slug ?? ''), min);
    next();
  };
}

// ---- browser sessions and CSRF (web UI) ----

export const SESSION_COOKIE = 'keelson_session';
/** A random per-browser id; CSRF tokens are an HMAC of it, so a page can embed one without a server-side table. */
export const BROWSER_COOKIE = 'keelson_bid';

export interface WebRequest extends Authed {
  webCookies?: Record<string, string>;
  /** The raw session cookie token when it names a live session. */
  sessionToken?: string;
  session?: SessionRow & { user: UserRow };
  /** A session cookie was sent but its session is gone (expired or signed out elsewhere). */
  sessionExpired?: boolean;
  csrfToken?: string;
}

export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i < 1) continue;
    const k = part.slice(0, i).trim();
    const v = part.slice(i + 1).trim();
    if (/^[A-Za-z0-9_-]+$/.test(k) && /^[A-Za-z0-9_-]*$/.test(v)) out[k] = v;
  }
  return out;
}

/**
 * Over TLS Keelson's cookies carry the `__Host-` prefix: the browser then accepts them only from
 * this exact host over https, with no Domain, so no other host name (a tenant-facing one
 * included) can set or overwrite them. Without TLS the plain names are used.
 */
const HOST_PREFIX = '__Host-';

/** The cookies Keelson reads, under their plain names; over TLS only the `__Host-` ones count. */
function keelsonCookies(header: string | undefined, cfg: Config): Record<string, string> {
  const all = parseCookies(header);
  if (!cfg.secureCookies) return all;
  const out: Record<string, string> = Object.create(null);
  for (const [k, v] of Object.entries(all)) if (k.startsWith(HOST_PREFIX)) out[k.slice(HOST_PREFIX.length)] = v;
  return out;
}

export function cookie(name: string, value: string, cfg: Config, maxAgeSeconds?: number): string {
  const parts = [`${cfg.secureCookies ? HOST_PREFIX : ''}${name}=${value}`, 'Path=/', 'HttpOnly', 'SameSite=Lax'];
  if (maxAgeSeconds !== undefined) parts.push(`Max-Age=${maxAgeSeconds}`);
  if (cfg.secureCookies) parts.push('Secure');
  return parts.join('; ');
}

function appendCookie(res: Response, c: string): void {
  const prev = res.getHeader('set-cookie');
  res.setHeader('set-cookie', [...(Array.isArray(prev) ? prev : prev ? [String(prev)] : []), c]);
}

export function csrfFor(ctx: Ctx, browserId: string): string {
  return crypto.createHmac('sha256', csrfSecret(ctx)).update(`csrf:${browserId}`).digest('base64url');
}

/**
 * Reads the browser-id and session cookies. A live session makes `req.actor` the user (kind
 * 'user'), unless a Bearer token already set an actor. A browser without an id gets one, so every
 * page can carry a CSRF token, including the login and signup forms.
 */
export function sessionAuth(ctx: Ctx): RequestHandler {
  const { cfg } = ctx;
  return (req: WebRequest, res, next) => {
    const cookies = keelsonCookies(req.get('cookie'), cfg);
    req.webCookies = cookies;
    let bid = cookies[BROWSER_COOKIE];
    if (!bid || bid.length < 20) {
      bid = crypto.randomBytes(24).toString('base64url');
      cookies[BROWSER_COOKIE] = bid;
      appendCookie(res, cookie(BROWSER_COOKIE, bid, cfg, 365 * 86_400));
    }
    req.csrfToken = csrfFor(ctx, bid);
    const tok = cookies[SESSION_COOKIE];
    if (tok) {
      const s = sessionFor(ctx, tok);
      if (s) {
        req.session = s.session;
        req.sessionToken = tok;
        if (!req.actor) req.actor = s.actor;
      } else req.sessionExpired = true;
    }
    next();
  };
}

/**
 * A new browser id, so a CSRF token seen (or planted) before a sign-in or sign-out is worthless
 * after it; the page drawn in this response already carries the new token.
 */
function rotateBrowserId(ctx: Ctx, req: WebRequest, res: Response): void {
  const { cfg } = ctx;
  const bid = crypto.randomBytes(24).toString('base64url');
  (req.webCookies ??= {})[BROWSER_COOKIE] = bid;
  req.csrfToken = csrfFor(ctx, bid);
  appendCookie(res, cookie(BROWSER_COOKIE, bid, cfg, 365 * 86_400));
}

export function startSession(ctx: Ctx, req: WebRequest, res: Response, userId: number): string {
  const token = newSession(ctx, userId);
  appendCookie(res, cookie(SESSION_COOKIE, token, ctx.cfg));
  rotateBrowserId(ctx, req, res);
  return token;
}
export function endSession(ctx: Ctx, req: WebRequest, res: Response): void {
  const tok = req.webCookies?.[SESSION_COOKIE];
  if (tok) dropSession(ctx, tok);
  appendCookie(res, cookie(SESSION_COOKIE, '', ctx.cfg, 0));
  rotateBrowserId(ctx, req, res);
}

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

/** True when the request carries the CSRF token of its browser (header X-CSRF-Token or form field _csrf). */
export function csrfValid(req: WebRequest): boolean {
  const sent = req.get('x-csrf-token') ?? (typeof req.body?._csrf === 'string' ? (req.body._csrf as string) : undefined);
  if (!sent || !req.csrfToken) return false;
  const a = Buffer.from(sent);
  const b = Buffer.from(req.csrfToken);
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

/**
 * CSRF guard. Bearer-token requests are exempt (a browser never attaches one on its own); every
 * other state-changing request that a browser could be tricked into sending (it carries our
 * cookies, or it signs in or up) must carry the token: 403 otherwise.
 */
export function requireCsrf(opts: { always?: (req: WebRequest) => boolean } = {}): RequestHandler {
  return (req: WebRequest, _res, next) => {
    if (SAFE.has(req.method) || req.actor?.kind === 'token') return next();
    const cookieBound = !!req.webCookies?.[SESSION_COOKIE] || (opts.always?.(req) ?? true);
    if (cookieBound && !csrfValid(req))
      throw new DomainError(403, 'csrf', 'the CSRF token is missing or wrong; reload the page and try again');
    next();
  };
}

/** The request's actor, after requireSignedIn or requireAdmin let it through. */
export function actorOf(req: Authed): Actor {
  if (!req.actor) throw new AuthenticationError('sign in first');
  return req.actor;
}

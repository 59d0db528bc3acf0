import type { Request, RequestHandler } from 'express';
import type { DB } from '../store/db.js';
import * as model from '../store/model.js';
import { AuthenticationError, NotAllowedError, NotFoundError } from '../errors.js';
import type { Role } from '../names.js';

/**
 * Who is making a request. Admin API tokens (`keelson token create`) act as operators; a
 * signed-in web user acts as themselves (sessions are added by the web UI module, which sets
 * `req.actor` the same way before these guards run).
 */
export interface Actor {
  kind: 'token' | 'user';
  /** Audit name: `token:NAME` or `user:NAME`. */
  label: string;
  /** The user's name when kind is 'user'. */
  user?: string;
  admin: boolean;
}

export interface Authed extends Request {
  actor?: Actor;
}

export const actorLabel = (req: Authed): string => req.actor?.label ?? 'anonymous';

/** Reads a Bearer admin token if one is sent; leaves `req.actor` alone otherwise. */
export function bearerToken(db: DB): RequestHandler {
  return (req: Authed, _res, next) => {
    const header = req.get('authorization');
    if (header !== undefined) {
      const m = header.match(/^Bearer (\S+)$/);
      const tok = m ? model.findApiToken(db, m[1]!) : undefined;
      if (!tok) throw new AuthenticationError('the Authorization header does not carry a valid token');
      req.actor = { kind: 'token', label: `token:${tok.name}`, admin: tok.scopes.includes('admin') };
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

const RANK: Record<Role, number> = { viewer: 1, developer: 2, owner: 3 };

/** The role of the request's user in a project, or undefined; admins count as owners. */
export function roleIn(db: DB, actor: Actor | undefined, projectId: number): Role | undefined {
  if (!actor) return undefined;
  if (actor.admin) return 'owner';
  if (!actor.user) return undefined;
  const m = model.members(db, projectId).find((x) => x.user === actor.user);
  return m?.role;
}

/**
 * Guards a `/projects/:slug...` route: the actor needs at least `min` in that project (admins pass).
 * A project the actor cannot see at all answers 404, so slugs of private projects do not leak.
 */
export function requireProjectRole(db: DB, min: Role): RequestHandler {
  return (req: Authed, _res, next) => {
    if (!req.actor) throw new AuthenticationError('sign in first');
    const slug = String(req.params.slug ?? '');
    const p = model.getProject(db, slug);
    const role = p ? roleIn(db, req.actor, p.id) : undefined;
    if (!p || !role) {
      if (p && p.visibility === 'public' && min === 'viewer') return next();
      if (p && p.visibility === 'public') throw new NotAllowedError(`this needs the ${min} role in ${slug}`);
      throw new NotFoundError(`no project ${JSON.stringify(slug)}`);
    }
    if (RANK[role] < RANK[min]) throw new NotAllowedError(`this needs the ${min} role in ${slug}; you are ${role}`);
    next();
  };
}

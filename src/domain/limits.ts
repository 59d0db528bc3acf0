/**
 * Per-tenant limits (issue 17): how many projects one user may own, and how many changes one user
 * and one project may make a minute. Each refusal names the limit and the caller's own numbers,
 * never another tenant's. Operators (admin accounts and tokens) are exempt from both: their calls
 * are the host's own (scripts, bulk repairs), and the limits protect the host from its tenants.
 */
import type { Actor, Ctx } from './context.js';
import type { DB } from '../store/db.js';
import * as throttles from '../store/throttles.js';
import type { Limit } from '../store/throttles.js';
import { getUser, requireUser, type UserRow } from '../store/users.js';
import { ownedProjectCount } from '../store/members.js';
import { getCapacity } from '../store/settings.js';
import { DomainError, NotAllowedError, ThrottledError } from '../errors.js';

/** 403: the owner has as many projects as their own limit allows (not the host's capacity gate). */
export class UserProjectLimitError extends DomainError {
  constructor(message: string) {
    super(403, 'user_project_limit', message);
  }
}

export interface ProjectAllowance {
  /** Projects the user owns that take a place (not deleted or being deleted). */
  owned: number;
  /** How many they may own: their own limit, else the operator's default; null: no limit. */
  limit: number | null;
  /** The user's own limit (`PATCH /api/v1/users/:name {"maxProjects"}`); null: the default applies. */
  own: number | null;
  /** Operators own any number. */
  exempt: boolean;
}

function allowanceOf(db: DB, u: UserRow): ProjectAllowance {
  const owned = ownedProjectCount(db, u.id);
  const own = u.max_projects ?? null;
  if (u.is_admin) return { owned, limit: null, own, exempt: true };
  return { owned, limit: own ?? getCapacity(db).maxProjectsPerUser, own, exempt: false };
}

const projects = (n: number) => `${n} project${n === 1 ? '' : 's'}`;

/**
 * Refuses a new project for `owner` when they own as many as their limit allows. Call inside the
 * creating IMMEDIATE transaction: the count and the insert then see the same state in every
 * process, so racing creations cannot pass the limit together.
 */
export function refuseOverProjectLimit(db: DB, owner: string, actingUser: string | undefined): void {
  const u = getUser(db, owner);
  if (!u) return; // the creation itself names the unknown owner
  const a = allowanceOf(db, u);
  if (a.limit === null || a.owned < a.limit) return;
  throw new UserProjectLimitError(
    actingUser === owner
      ? `you own ${projects(a.owned)} and your account's limit is ${a.limit}; delete one or ask the operator to raise your limit`
      : `${owner} owns ${projects(a.owned)} and that account's limit is ${a.limit}; raise it with PATCH /api/v1/users/${owner} {"maxProjects": N}`,
  );
}

/** Whether `name` owns as many projects as their limit allows (operators never do). */
export function atProjectLimit(db: DB, name: string): boolean {
  const u = getUser(db, name);
  if (!u) return false;
  const a = allowanceOf(db, u);
  return a.limit !== null && a.owned >= a.limit;
}

/** A user's projects owned and limit: the user themselves or an operator. */
export function projectAllowance(ctx: Ctx, actor: Actor, name: string): ProjectAllowance {
  if (!actor.admin && actor.user !== name) throw new NotAllowedError('this needs an operator (admin) account');
  return allowanceOf(ctx.db, requireUser(ctx.db, name));
}

/** "60 a minute", "5 per 900 s". */
export function rateText(l: Limit): string {
  const per: Record<number, string> = { 60: 'a minute', 3600: 'an hour', 86_400: 'a day' };
  return per[l.windowSeconds] ? `${l.max} ${per[l.windowSeconds]}` : `${l.max} per ${l.windowSeconds} s`;
}

/**
 * Counts one change by `actor` (to project `slug`, if any) against the mutation limits, or throws
 * a 429 naming the limit that is spent. Call after the actor is known to be allowed the change
 * (a stranger cannot spend a project's budget) and before it is made; the attempt counts whether
 * or not the change then succeeds or changes anything, since each costs the host a request. The
 * check and the count are one IMMEDIATE transaction, so API processes sharing the database
 * cannot overrun a limit together; each key is one row, updated in place.
 */
export function countChange(ctx: Ctx, actor: Actor, slug?: string): void {
  if (actor.admin) return;
  const { db, cfg } = ctx;
  const keys: { key: string; limit: Limit; what: string }[] = [];
  if (actor.user) keys.push({ key: `mut:user:${actor.user}`, limit: cfg.mutationsPerUser, what: `by ${actor.user}` });
  if (slug) keys.push({ key: `mut:project:${slug}`, limit: cfg.mutationsPerProject, what: `to project ${slug}` });
  db.transaction(() => {
    for (const k of keys) {
      const wait = throttles.throttled(db, k.key, k.limit);
      if (wait > 0) throw new ThrottledError(`too many changes ${k.what}: ${rateText(k.limit)}; try again in ${wait} s`, wait);
    }
    for (const k of keys) throttles.hit(db, k.key, k.limit);
  }).immediate();
}

/**
 * Accounts: creating users, their access tokens (what Subversion and Trac take as the password),
 * their web password, disabling and enabling, and the operator's lists.
 */
import type { Actor, Ctx } from './context.js';
import * as model from '../store/model.js';
import * as web from '../store/web.js';
import * as perms from '../store/permissions.js';
import { ConflictError, NotAllowedError } from '../errors.js';
import { login } from './signin.js';
import { countChange, projectAllowance, type ProjectAllowance } from './limits.js';
import * as limits from '../store/limits.js';
import { hashPassword } from './passwords.js';

export type { UserRow } from '../store/model.js';

const requireOperator = (actor: Actor): void => {
  if (!actor.admin) throw new NotAllowedError('this needs an operator (admin) account');
};

export function listUsers(ctx: Ctx, actor: Actor): model.UserRow[] {
  requireOperator(actor);
  return model.listUsers(ctx.db);
}

/** A page of users matching `q`, each with the number of projects they belong to. */
export function searchUsers(ctx: Ctx, actor: Actor, q: string, limit: number, offset: number) {
  requireOperator(actor);
  const { rows, total } = model.searchUsers(ctx.db, q, limit, offset);
  return { rows: rows.map((u) => ({ ...u, projects: model.membershipCount(ctx.db, u.id) })), total };
}

export function getUser(ctx: Ctx, name: string): model.UserRow {
  return model.requireUser(ctx.db, name);
}

/**
 * An operator makes an account; its access token is returned once and published before this
 * returns. The password is hashed first, in the hash pool.
 */
export async function createUser(ctx: Ctx, actor: Actor, b: { name: string; email: string; password: string; admin?: boolean }) {
  requireOperator(actor);
  const passwordHash = await hashPassword(ctx, b.name, b.password);
  const out = model.createUser(ctx.db, actor.label, { name: b.name, email: b.email, passwordHash, isAdmin: b.admin });
  ctx.fx.credentialChanged(out.user.name);
  ctx.fx.enqueued();
  return out;
}

/** A new access token for `name` (the user themselves or an operator); the old one stops working on the next request. */
export function rotateAccessToken(ctx: Ctx, actor: Actor, name: string): string {
  if (!actor.admin && actor.user !== name) throw new NotAllowedError('you can only rotate your own access token');
  countChange(ctx, actor);
  const token = model.rotateAccessToken(ctx.db, actor.label, name);
  ctx.fx.credentialChanged(name);
  ctx.fx.enqueued();
  return token;
}

/**
 * Changes a signed-in user's web password after checking the current one (with the sign-in
 * throttles), and signs out their other sessions. `keepSession` is the token of the one that stays.
 */
export async function changePassword(
  ctx: Ctx,
  actor: Actor,
  b: { current: string; password: string },
  address: string,
  keepSession?: string,
): Promise<void> {
  const name = actor.user;
  if (!name) throw new NotAllowedError('only a signed-in user changes their own password');
  await login(ctx, name, b.current, address);
  const passwordHash = await hashPassword(ctx, name, b.password);
  const u = model.requireUser(ctx.db, name);
  model.changePassword(ctx.db, actor.label, name, passwordHash);
  web.deleteUserSessions(ctx.db, u.id, keepSession);
}

/**
 * Disabling takes the user's SVN/Trac credentials away on the next request and drops them from
 * every project's groups; their rows stay for enabling again. Nobody disables their own account.
 */
export function setUserDisabled(ctx: Ctx, actor: Actor, name: string, disabled: boolean): model.UserRow {
  requireOperator(actor);
  if (disabled && actor.user === name) throw new ConflictError('you cannot disable your own account');
  perms.setUserDisabled(ctx.db, actor.label, name, disabled);
  // Effective on the next request: Apache reads this row, no file to regenerate.
  ctx.fx.credentialChanged(name);
  ctx.fx.enqueued();
  return model.requireUser(ctx.db, name);
}

/** A user as an operator (or the user themselves) sees them: the account and its project allowance. */
export function userDetail(ctx: Ctx, actor: Actor, name: string): { user: model.UserRow; projects: ProjectAllowance } {
  const projects = projectAllowance(ctx, actor, name);
  return { user: model.requireUser(ctx.db, name), projects };
}

/**
 * An operator changes an account: disables or enables it, and sets its own project limit
 * (`maxProjects`; null goes back to the operator's default), in one transaction.
 */
export function updateUser(ctx: Ctx, actor: Actor, name: string, b: { disabled?: boolean; maxProjects?: number | null }) {
  requireOperator(actor);
  if (b.disabled && actor.user === name) throw new ConflictError('you cannot disable your own account');
  ctx.db
    .transaction(() => {
      const u = model.requireUser(ctx.db, name);
      // A limit set to what it is writes nothing (no audit row either).
      if (b.maxProjects !== undefined && (u.max_projects ?? null) !== b.maxProjects) {
        limits.setUserMaxProjects(ctx.db, u.id, b.maxProjects);
        model.audit(ctx.db, actor.label, 'user.max_projects', name, { from: u.max_projects ?? null, to: b.maxProjects });
      }
      if (b.disabled !== undefined) perms.setUserDisabled(ctx.db, actor.label, name, b.disabled);
    })
    .immediate();
  if (b.disabled !== undefined) {
    ctx.fx.credentialChanged(name);
    ctx.fx.enqueued();
  }
  return userDetail(ctx, actor, name);
}

/**
 * Accounts: creating users, their access tokens (what Subversion and Trac take as the password),
 * their web password, disabling and enabling, and the operator's lists.
 */
import type { Actor, Ctx } from './context.js';
import * as users from '../store/users.js';
import { memberProjectIds, membershipCount } from '../store/members.js';
import { putAccessToken } from '../store/tokens.js';
import { deleteUserSessions } from '../store/sessions.js';
import { JOB_CREDENTIALS } from '../store/jobs.js';
import { ConflictError, NotAllowedError } from '../errors.js';
import { login } from './signin.js';
import { countChange, projectAllowance, type ProjectAllowance } from './limits.js';
import { hashPassword } from './passwords.js';
import { apacheHash, newAccessToken } from './tokens.js';
import { inUnit, type Unit } from './unit.js';
import { addUser } from './accounts.js';
import { keepOwners } from './owners.js';

type UserRow = users.UserRow;
export type { UserRow };

const requireOperator = (actor: Actor): void => {
  if (!actor.admin) throw new NotAllowedError('this needs an operator (admin) account');
};

export function listUsers(ctx: Ctx, actor: Actor): UserRow[] {
  requireOperator(actor);
  return users.listUsers(ctx.db);
}

/** A page of users matching `q`, each with the number of projects they belong to. */
export function searchUsers(ctx: Ctx, actor: Actor, q: string, limit: number, offset: number) {
  requireOperator(actor);
  const { rows, total } = users.searchUsers(ctx.db, q, limit, offset);
  return { rows: rows.map((u) => ({ ...u, projects: membershipCount(ctx.db, u.id) })), total };
}

export function getUser(ctx: Ctx, name: string): UserRow {
  return users.requireUser(ctx.db, name);
}

/**
 * An account made from a password hash already computed (tools and tests that make many accounts
 * with one hash); its token is published before this returns.
 */
export function registerUser(ctx: Ctx, actor: Actor, b: { name: string; email: string; passwordHash: string; isAdmin?: boolean }) {
  requireOperator(actor);
  const out = inUnit(ctx, actor.label, (u) => addUser(u, b));
  ctx.fx.credentialChanged(out.user.name);
  return out;
}

/**
 * An operator makes an account; its access token is returned once and published before this
 * returns. The password is hashed first, in the hash pool.
 */
export async function createUser(ctx: Ctx, actor: Actor, b: { name: string; email: string; password: string; admin?: boolean }) {
  requireOperator(actor);
  const passwordHash = await hashPassword(ctx, b.name, b.password);
  return registerUser(ctx, actor, { name: b.name, email: b.email, passwordHash, isAdmin: b.admin });
}

/** A new access token for `name` (the user themselves or an operator); the old one stops working on the next request. */
export function rotateAccessToken(ctx: Ctx, actor: Actor, name: string): string {
  if (!actor.admin && actor.user !== name) throw new NotAllowedError('you can only rotate your own access token');
  countChange(ctx, actor);
  const token = newAccessToken();
  inUnit(ctx, actor.label, (u) => {
    putAccessToken(u.db, users.requireUser(u.db, name).id, apacheHash(token));
    u.audit('user.token.rotate', name);
    u.enqueue(JOB_CREDENTIALS, null);
  });
  ctx.fx.credentialChanged(name);
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
  inUnit(ctx, actor.label, (u) => {
    const user = users.requireUser(u.db, name);
    users.setPasswordHash(u.db, user.id, passwordHash);
    u.audit('user.password', name);
    deleteUserSessions(u.db, user.id, keepSession);
  });
}

/**
 * Disabling takes the user's SVN/Trac credentials away on the next request and drops them from
 * every project's groups; their rows stay for enabling again. Nobody disables their own account.
 */
export function setUserDisabled(ctx: Ctx, actor: Actor, name: string, disabled: boolean): UserRow {
  requireOperator(actor);
  if (disabled && actor.user === name) throw new ConflictError('you cannot disable your own account');
  inUnit(ctx, actor.label, (u) => disable(u, name, disabled));
  // Effective on the next request: Apache reads this row, no file to regenerate.
  ctx.fx.credentialChanged(name);
  return users.requireUser(ctx.db, name);
}

/**
 * Inside a unit: disables or re-enables a user. A disabled user's credentials row goes (the
 * caller publishes it at once) and they drop out of every project's groups, each project getting a
 * new permission version; their memberships are kept for enabling again. Nobody disables a
 * project's last enabled owner (the owner rule).
 */
function disable(u: Unit, name: string, disabled: boolean): void {
  const user = users.requireUser(u.db, name);
  if (!!user.disabled_at === disabled) return;
  users.setDisabled(u.db, user.id, disabled);
  if (disabled)
    keepOwners(
      u.db,
      memberProjectIds(u.db, user.id, 'owner'),
      (sole) => `${name} is the only owner of ${sole.join(', ')}; add another owner first`,
    );
  u.audit(disabled ? 'user.disable' : 'user.enable', name);
  u.enqueue(JOB_CREDENTIALS, null);
  for (const id of memberProjectIds(u.db, user.id))
    u.permissionChanged(id, disabled ? 'user.disable' : 'user.enable', `${name} ${disabled ? 'disabled' : 'enabled'}`);
}

/** A user as an operator (or the user themselves) sees them: the account and its project allowance. */
export function userDetail(ctx: Ctx, actor: Actor, name: string): { user: UserRow; projects: ProjectAllowance } {
  const projects = projectAllowance(ctx, actor, name);
  return { user: users.requireUser(ctx.db, name), projects };
}

/**
 * An operator changes an account: disables or enables it, and sets its own project limit
 * (`maxProjects`; null goes back to the operator's default), in one transaction.
 */
export function updateUser(ctx: Ctx, actor: Actor, name: string, b: { disabled?: boolean; maxProjects?: number | null }) {
  requireOperator(actor);
  if (b.disabled && actor.user === name) throw new ConflictError('you cannot disable your own account');
  inUnit(ctx, actor.label, (u) => {
    const user = users.requireUser(u.db, name);
    // A limit set to what it is writes nothing (no audit row either).
    if (b.maxProjects !== undefined && (user.max_projects ?? null) !== b.maxProjects) {
      users.setUserMaxProjects(u.db, user.id, b.maxProjects);
      u.audit('user.max_projects', name, { from: user.max_projects ?? null, to: b.maxProjects });
    }
    if (b.disabled !== undefined) disable(u, name, b.disabled);
  });
  if (b.disabled !== undefined) ctx.fx.credentialChanged(name);
  return userDetail(ctx, actor, name);
}

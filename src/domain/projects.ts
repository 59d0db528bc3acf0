/**
 * Projects and their members: who sees what (roles, public projects), creating through the
 * capacity gate, settings, deletion, suspension. Each change is one unit of work (src/domain/unit.ts)
 * that writes its rows and records its audit row, permission version and queued job.
 */
import type { Actor, Ctx } from './context.js';
import type { DB } from '../store/db.js';
import * as projects from '../store/projects.js';
import * as membership from '../store/members.js';
import { getUser } from '../store/users.js';
import { deleteRulesOf } from '../store/permissions.js';
import { JOB_CREDENTIALS, JOB_RECONCILE } from '../store/jobs.js';
import { restoreRunningOver, slugHeldByRestore } from '../store/leases.js';
import { AuthenticationError, ConflictError, InputError, NotAllowedError, NotFoundError } from '../errors.js';
import { assertSlug, type Role, type Visibility } from '../names.js';
import { CapacityError, gate } from './capacity.js';
import { atProjectLimit, countChange, refuseOverProjectLimit, UserProjectLimitError } from './limits.js';
import { inUnit, type Unit } from './unit.js';
import { keepOwners } from './owners.js';
import { setProjectState } from './lifecycle.js';

type ProjectRow = projects.ProjectRow;
type MemberRow = membership.MemberRow;
export type { ProjectRow, MemberRow };

const RANK: Record<Role, number> = { viewer: 1, developer: 2, owner: 3 };

/** The role of the actor in a project, or undefined; operators count as owners. */
export function roleIn(ctx: Ctx, actor: Actor | undefined, projectId: number): Role | undefined {
  if (!actor) return undefined;
  if (actor.admin) return 'owner';
  if (!actor.user) return undefined;
  return membership.members(ctx.db, projectId).find((x) => x.user === actor.user)?.role;
}

/**
 * The project, if the actor holds at least `min` in it (public projects are visible to every
 * signed-in actor). A project the actor cannot see at all is "not found", so private slugs do not leak.
 */
export function projectFor(ctx: Ctx, actor: Actor | undefined, slug: string, min: Role): ProjectRow {
  if (!actor) throw new AuthenticationError('sign in first');
  const p = projects.getProject(ctx.db, slug);
  const role = p ? roleIn(ctx, actor, p.id) : undefined;
  if (!p || !role) {
    if (p && p.visibility === 'public' && min === 'viewer') return p;
    if (p && p.visibility === 'public') throw new NotAllowedError(`this needs the ${min} role in ${slug}`);
    throw new NotFoundError(`no project ${JSON.stringify(slug)}`);
  }
  if (RANK[role] < RANK[min]) throw new NotAllowedError(`this needs the ${min} role in ${slug}; you are ${role}`);
  return p;
}

/** A project and the actor's role in it when the actor may see it (a member, or it is public); else undefined. */
export function visibleProject(ctx: Ctx, actor: Actor, slug: string): { p: ProjectRow; role: Role | undefined } | undefined {
  const p = projects.getProject(ctx.db, slug);
  if (!p) return undefined;
  const role = roleIn(ctx, actor, p.id);
  if (!role && p.visibility !== 'public') return undefined;
  return { p, role };
}

export const members = (ctx: Ctx, projectId: number): MemberRow[] => membership.members(ctx.db, projectId);

/** Operators see every project; a user sees the projects they belong to. */
export function listProjects(ctx: Ctx, actor: Actor): ProjectRow[] {
  return projects.listProjects(ctx.db, actor.admin ? undefined : (actor.user ?? ''));
}

/** The projects `user` belongs to (their dashboard, operators included). */
export const memberProjects = (ctx: Ctx, user: string): ProjectRow[] => projects.listProjects(ctx.db, user);

export function searchProjects(ctx: Ctx, actor: Actor, q: string, limit: number, offset: number) {
  if (!actor.admin) throw new NotAllowedError('this needs an operator (admin) account');
  return projects.searchProjects(ctx.db, q, limit, offset);
}

export interface NewProject {
  slug: string;
  title?: string;
  visibility: Visibility;
  /** Who owns it: the actor themselves unless an operator names someone. */
  owner?: string;
}

/**
 * Creates a project. A user creates projects they own, within their own project limit and through
 * the capacity gate (both checked inside the transaction, so two racing for the last place cannot
 * both get it); an operator may name any owner and passes the gate, not the owner's limit
 * (an admin owner has none).
 */
export function createProject(ctx: Ctx, actor: Actor, b: NewProject): ProjectRow {
  const { cfg } = ctx;
  const owner = b.owner ?? actor.user;
  if (!owner) throw new NotAllowedError('owner: name the owner of the new project');
  if (owner !== actor.user && !actor.admin) throw new NotAllowedError('owner: you can only create projects you own');
  countChange(ctx, actor);
  return inUnit(ctx, actor.label, (u) => {
    // The owner's own limit first: it is the one that tells them what to do. An operator naming
    // the owner is past it, as past the capacity gate: the operator's act is the host's decision.
    if (!actor.admin) refuseOverProjectLimit(u.db, owner, actor.user);
    if (!actor.admin) {
      const g = gate(u.db, cfg);
      if (g.full) throw new CapacityError(`${g.full}; no new projects for now`);
    }
    if (slugHeldByRestore(u.db, b.slug)) throw new ConflictError(`slug: ${b.slug} is being restored from a backup; choose another name`);
    return addProject(u, { slug: b.slug, title: b.title || b.slug, visibility: b.visibility, owner });
  });
}

/**
 * Inside a unit: records a project and its owner, its first permission version and the
 * provisioning job. The slug must be free and the owner must exist. (Sign-up and restores into a
 * new project use it too.)
 */
export function addProject(u: Unit, p: { slug: string; title: string; visibility: Visibility; owner: string }): ProjectRow {
  assertSlug(p.slug);
  if (projects.getProject(u.db, p.slug)) throw new ConflictError(`project ${p.slug} already exists`);
  const owner = getUser(u.db, p.owner);
  if (!owner) throw new InputError(`owner: no user ${p.owner}`);
  const row = projects.insertProject(u.db, p);
  membership.upsertMember(u.db, row.id, owner.id, 'owner');
  u.audit('project.create', p.slug, { owner: p.owner, visibility: p.visibility });
  u.permissionChanged(row.id, 'project.create', `created ${p.visibility}, owner ${p.owner}`);
  return row;
}

/**
 * Changes a project's settings. Settings already as asked are no change: no audit row, no new
 * permission version, no reconcile.
 */
export function updateProject(ctx: Ctx, actor: Actor, slug: string, changes: { title?: string; visibility?: Visibility }) {
  projectFor(ctx, actor, slug, 'owner');
  countChange(ctx, actor, slug);
  return inUnit(ctx, actor.label, (u) => {
    const p = projects.requireProject(u.db, slug);
    if (unchanged(p, changes)) return p;
    projects.setTitleAndVisibility(u.db, p.id, changes.title ?? p.title, changes.visibility ?? p.visibility);
    u.audit('project.update', slug, changes);
    if (changes.visibility && changes.visibility !== p.visibility) {
      u.permissionChanged(p.id, 'visibility.set', `visibility ${p.visibility} → ${changes.visibility}`);
    } else u.enqueue(JOB_RECONCILE, p.id);
    return projects.getProjectById(u.db, p.id)!;
  });
}

/** Whether every field given already has that value (a field this does not know counts as a change). */
function unchanged(p: ProjectRow, changes: Record<string, unknown>): boolean {
  const same: Record<string, (v: unknown) => boolean> = { title: (v) => v === p.title, visibility: (v) => v === p.visibility };
  return Object.entries(changes).every(([k, v]) => v === undefined || same[k]?.(v) === true);
}

export function deleteProject(ctx: Ctx, actor: Actor, slug: string): void {
  projectFor(ctx, actor, slug, 'owner');
  countChange(ctx, actor, slug);
  // One IMMEDIATE transaction: a restore cannot begin between the check and the deletion.
  inUnit(ctx, actor.label, (u) => {
    const p = projectFor(ctx, actor, slug, 'owner');
    notRestoring(u.db, p);
    projects.writeState(u.db, p.id, 'deleting', p.last_error);
    u.audit('project.delete', slug);
    u.enqueue(JOB_RECONCILE, p.id);
  });
}

/**
 * An in-place restore suspends the project while it swaps the backup in, and puts its state back
 * at the end: a suspension, resumption or deletion meanwhile would be undone, or would open the
 * repository while it is replaced. They wait until it ends.
 */
function notRestoring(db: DB, p: ProjectRow): void {
  if (restoreRunningOver(db, p.id))
    throw new ConflictError(`${p.slug} is being restored from a backup; try again when the restore has ended`);
}

/**
 * Inside a unit: the project read before it opened (by projectFor) is still live. A change that
 * raced its deletion is refused as the project's absence, and the check is by id, so a project
 * re-created under the same slug meanwhile is never the one changed.
 */
export function stillLive(db: DB, p: ProjectRow): void {
  const now = projects.getProjectById(db, p.id);
  if (!now || now.state === 'deleted') throw new NotFoundError(`no project ${p.slug}`);
}

const lastOwner = (user: string) => (slugs: string[]) => `${user} is the last owner of ${slugs.join(', ')}; add another owner first`;

/** Adds a member or changes their role (the last owner cannot step down). */
export function setMember(ctx: Ctx, actor: Actor, slug: string, user: string, role: Role): void {
  const p = projectFor(ctx, actor, slug, 'owner');
  countChange(ctx, actor, slug);
  const member = getUser(ctx.db, user);
  if (!member) throw new NotFoundError(`user: there is no user ${user}`);
  inUnit(ctx, actor.label, (u) => {
    stillLive(u.db, p);
    const was = membership.roleOf(u.db, p.id, member.id);
    if (was === role) return;
    // Handing projects over is no way around the per-user limit: a new owner must have room for one
    // more (the refusal names no numbers of theirs: they are another tenant's).
    if (role === 'owner' && !actor.admin && atProjectLimit(u.db, user))
      throw new UserProjectLimitError(`${user} cannot own another project (their account's project limit); ask the operator`);
    membership.upsertMember(u.db, p.id, member.id, role);
    if (was === 'owner') keepOwners(u.db, [p.id], lastOwner(user));
    u.audit('member.set', slug, { user, role });
    u.permissionChanged(p.id, 'member.set', was ? `${user}: ${was} → ${role}` : `${user} added as ${role}`);
  });
}

/** Removes a member and their path rules (the last owner cannot be removed). */
export function removeMember(ctx: Ctx, actor: Actor, slug: string, user: string): void {
  const p = projectFor(ctx, actor, slug, 'owner');
  countChange(ctx, actor, slug);
  inUnit(ctx, actor.label, (u) => {
    stillLive(u.db, p);
    const member = getUser(u.db, user);
    const was = member && membership.roleOf(u.db, p.id, member.id);
    if (!member || !membership.deleteMember(u.db, p.id, member.id)) throw new NotFoundError(`${user} is not a member of ${slug}`);
    // Their path rules go with them: a rule must never grant a non-member anything.
    deleteRulesOf(u.db, p.id, user);
    if (was === 'owner') keepOwners(u.db, [p.id], lastOwner(user));
    u.audit('member.remove', slug, { user });
    u.permissionChanged(p.id, 'member.remove', `${user} removed`);
  });
}

/**
 * An operator suspends (every access denied in the generated files) or resumes a project. Only an
 * active project is suspended, and only a suspended one resumed; suspending twice changes nothing
 * (no audit row, no version, no job).
 */
export function setSuspended(ctx: Ctx, actor: Actor, slug: string, suspended: boolean): ProjectRow {
  if (!actor.admin) throw new NotAllowedError('this needs an operator (admin) account');
  return inUnit(ctx, actor.label, (u) => {
    const p = projects.requireProject(u.db, slug);
    notRestoring(u.db, p);
    if (suspended && p.state !== 'active' && p.state !== 'suspended')
      throw new ConflictError(`${slug} is ${p.state}; only an active project can be suspended`);
    if (!suspended && p.state !== 'suspended') throw new ConflictError(`${slug} is ${p.state}, not suspended`);
    if (suspended && p.state === 'suspended') return p;
    setProjectState(u, p.id, suspended ? 'suspended' : 'active');
    u.audit(suspended ? 'project.suspend' : 'project.resume', p.slug);
    u.enqueue(JOB_RECONCILE, p.id);
    return projects.getProjectById(u.db, p.id)!;
  });
}

export { ConflictError };

/** Every live project, by slug (`keelson reconcile --all` walks them). */
export const liveProjects = (ctx: Ctx): ProjectRow[] => projects.listProjects(ctx.db);

export const projectBySlug = (ctx: Ctx, slug: string): ProjectRow | undefined => projects.getProject(ctx.db, slug);

/**
 * Queues a reconcile of every live project and a credentials sync, in one unit; returns how many
 * projects (`keelson reconcile --all` and the nightly drift repair).
 */
export function reconcileAll(ctx: Pick<Ctx, 'db' | 'fx'>): number {
  return inUnit(ctx, 'system', (u) => {
    const ids = projects.liveProjectIds(u.db);
    for (const id of ids) u.enqueue(JOB_RECONCILE, id);
    u.enqueue(JOB_CREDENTIALS, null);
    return ids.length;
  });
}

/** Queues a full reconcile of these projects for the worker. */
export function reconcileLater(ctx: Ctx, projectIds: number[]): void {
  inUnit(ctx, 'system', (u) => {
    for (const id of projectIds) u.enqueue(JOB_RECONCILE, id);
  });
}

/**
 * Projects and their members: who sees what (roles, public projects), creating through the
 * capacity gate, settings, deletion, suspension. Each change is one transaction with its enqueue
 * (in src/store/), then the worker is woken.
 */
import type { Actor, Ctx } from './context.js';
import * as model from '../store/model.js';
import { restoreRunningOver, slugHeldByRestore } from '../backup/catalog.js';
import { AuthenticationError, ConflictError, NotAllowedError, NotFoundError } from '../errors.js';
import type { Role, Visibility } from '../names.js';
import { CapacityError, gate } from './capacity.js';
import { atProjectLimit, countChange, refuseOverProjectLimit, UserProjectLimitError } from './limits.js';

export type { ProjectRow, MemberRow } from '../store/model.js';

const RANK: Record<Role, number> = { viewer: 1, developer: 2, owner: 3 };

/** The role of the actor in a project, or undefined; operators count as owners. */
export function roleIn(ctx: Ctx, actor: Actor | undefined, projectId: number): Role | undefined {
  if (!actor) return undefined;
  if (actor.admin) return 'owner';
  if (!actor.user) return undefined;
  return model.members(ctx.db, projectId).find((x) => x.user === actor.user)?.role;
}

/**
 * The project, if the actor holds at least `min` in it (public projects are visible to every
 * signed-in actor). A project the actor cannot see at all is "not found", so private slugs do not leak.
 */
export function projectFor(ctx: Ctx, actor: Actor | undefined, slug: string, min: Role): model.ProjectRow {
  if (!actor) throw new AuthenticationError('sign in first');
  const p = model.getProject(ctx.db, slug);
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
export function visibleProject(ctx: Ctx, actor: Actor, slug: string): { p: model.ProjectRow; role: Role | undefined } | undefined {
  const p = model.getProject(ctx.db, slug);
  if (!p) return undefined;
  const role = roleIn(ctx, actor, p.id);
  if (!role && p.visibility !== 'public') return undefined;
  return { p, role };
}

export const members = (ctx: Ctx, projectId: number): model.MemberRow[] => model.members(ctx.db, projectId);

/** Operators see every project; a user sees the projects they belong to. */
export function listProjects(ctx: Ctx, actor: Actor): model.ProjectRow[] {
  return model.listProjects(ctx.db, actor.admin ? undefined : (actor.user ?? ''));
}

/** The projects `user` belongs to (their dashboard, operators included). */
export const memberProjects = (ctx: Ctx, user: string): model.ProjectRow[] => model.listProjects(ctx.db, user);

export function searchProjects(ctx: Ctx, actor: Actor, q: string, limit: number, offset: number) {
  if (!actor.admin) throw new NotAllowedError('this needs an operator (admin) account');
  return model.searchProjects(ctx.db, q, limit, offset);
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
export function createProject(ctx: Ctx, actor: Actor, b: NewProject): model.ProjectRow {
  const { db, cfg } = ctx;
  const owner = b.owner ?? actor.user;
  if (!owner) throw new NotAllowedError('owner: name the owner of the new project');
  if (owner !== actor.user && !actor.admin) throw new NotAllowedError('owner: you can only create projects you own');
  countChange(ctx, actor);
  const p = db
    .transaction(() => {
      // The owner's own limit first: it is the one that tells them what to do. An operator naming
      // the owner is past it, as past the capacity gate: the operator's act is the host's decision.
      if (!actor.admin) refuseOverProjectLimit(db, owner, actor.user);
      if (!actor.admin) {
        const g = gate(db, cfg);
        if (g.full) throw new CapacityError(`${g.full}; no new projects for now`);
      }
      if (slugHeldByRestore(db, b.slug)) throw new ConflictError(`slug: ${b.slug} is being restored from a backup; choose another name`);
      return model.createProject(db, actor.label, { slug: b.slug, title: b.title || b.slug, visibility: b.visibility, owner });
    })
    .immediate();
  ctx.fx.enqueued();
  return p;
}

/**
 * Changes a project's settings. Settings already as asked are no change: no audit row, no new
 * permission version, no reconcile.
 */
export function updateProject(ctx: Ctx, actor: Actor, slug: string, changes: { title?: string; visibility?: Visibility }) {
  projectFor(ctx, actor, slug, 'owner');
  countChange(ctx, actor, slug);
  const p = ctx.db
    .transaction(() => {
      const now = model.requireProject(ctx.db, slug);
      return unchanged(now, changes) ? now : model.updateProject(ctx.db, actor.label, slug, changes);
    })
    .immediate();
  ctx.fx.enqueued();
  return p;
}

/** Whether every field given already has that value (a field this does not know counts as a change). */
function unchanged(p: model.ProjectRow, changes: Record<string, unknown>): boolean {
  const same: Record<string, (v: unknown) => boolean> = { title: (v) => v === p.title, visibility: (v) => v === p.visibility };
  return Object.entries(changes).every(([k, v]) => v === undefined || same[k]?.(v) === true);
}

export function deleteProject(ctx: Ctx, actor: Actor, slug: string): void {
  projectFor(ctx, actor, slug, 'owner');
  countChange(ctx, actor, slug);
  // One IMMEDIATE transaction: a restore cannot begin between the check and the deletion.
  ctx.db
    .transaction(() => {
      notRestoring(ctx, projectFor(ctx, actor, slug, 'owner'));
      model.deleteProject(ctx.db, actor.label, slug);
    })
    .immediate();
  ctx.fx.enqueued();
}

/**
 * An in-place restore suspends the project while it swaps the backup in, and puts its state back
 * at the end: a suspension, resumption or deletion meanwhile would be undone, or would open the
 * repository while it is replaced. They wait until it ends.
 */
function notRestoring(ctx: Ctx, p: model.ProjectRow): void {
  if (restoreRunningOver(ctx.db, p.id))
    throw new ConflictError(`${p.slug} is being restored from a backup; try again when the restore has ended`);
}

/** A project keeps at least one owner: checked inside the change's transaction, which it rolls back. */
function keepAnOwner(ctx: Ctx, projectId: number, user: string, slug: string): void {
  if (model.ownerCount(ctx.db, projectId) === 0) throw new ConflictError(`${user} is the last owner of ${slug}; add another owner first`);
}

/** Adds a member or changes their role (the last owner cannot step down). */
export function setMember(ctx: Ctx, actor: Actor, slug: string, user: string, role: Role): void {
  const p = projectFor(ctx, actor, slug, 'owner');
  countChange(ctx, actor, slug);
  if (!model.getUser(ctx.db, user)) throw new NotFoundError(`user: there is no user ${user}`);
  ctx.db
    .transaction(() => {
      // Handing projects over is no way around the per-user limit: a new owner must have room for one
      // more (the refusal names no numbers of theirs: they are another tenant's).
      const was = model.members(ctx.db, p.id).find((m) => m.user === user)?.role;
      if (role === 'owner' && was !== 'owner' && !actor.admin && atProjectLimit(ctx.db, user))
        throw new UserProjectLimitError(`${user} cannot own another project (their account's project limit); ask the operator`);
      if (model.setMember(ctx.db, actor.label, slug, user, role) === 'owner') keepAnOwner(ctx, p.id, user, slug);
    })
    .immediate();
  ctx.fx.enqueued();
}

/** Removes a member and their path rules (the last owner cannot be removed). */
export function removeMember(ctx: Ctx, actor: Actor, slug: string, user: string): void {
  const p = projectFor(ctx, actor, slug, 'owner');
  countChange(ctx, actor, slug);
  ctx.db
    .transaction(() => {
      model.removeMember(ctx.db, actor.label, slug, user);
      keepAnOwner(ctx, p.id, user, slug);
    })
    .immediate();
  ctx.fx.enqueued();
}

/**
 * An operator suspends (every access denied in the generated files) or resumes a project. Only an
 * active project is suspended, and only a suspended one resumed; suspending twice changes nothing
 * (no audit row, no version, no job).
 */
export function setSuspended(ctx: Ctx, actor: Actor, slug: string, suspended: boolean): model.ProjectRow {
  if (!actor.admin) throw new NotAllowedError('this needs an operator (admin) account');
  const p = ctx.db
    .transaction(() => {
      const p = model.requireProject(ctx.db, slug);
      notRestoring(ctx, p);
      if (suspended && p.state !== 'active' && p.state !== 'suspended')
        throw new ConflictError(`${slug} is ${p.state}; only an active project can be suspended`);
      if (!suspended && p.state !== 'suspended') throw new ConflictError(`${slug} is ${p.state}, not suspended`);
      if (suspended && p.state === 'suspended') return p;
      return model.setSuspended(ctx.db, actor.label, p, suspended);
    })
    .immediate();
  ctx.fx.enqueued();
  return p;
}

export { ConflictError };

/** Every live project, by slug (`keelson reconcile --all` walks them). */
export const liveProjects = (ctx: Ctx): model.ProjectRow[] => model.listProjects(ctx.db);

export const projectBySlug = (ctx: Ctx, slug: string): model.ProjectRow | undefined => model.getProject(ctx.db, slug);

/** Queues a full reconcile of these projects for the worker. */
export function reconcileLater(ctx: Ctx, projectIds: number[]): void {
  ctx.db.transaction(() => {
    for (const id of projectIds) model.queueReconcile(ctx.db, id);
  })();
  ctx.fx.enqueued();
}

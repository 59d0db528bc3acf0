/** How the JSON API shows a project and a user. */
import type { Ctx } from '../domain/context.js';
import { members, roleIn, type ProjectRow } from '../domain/projects.js';
import type { Actor } from '../domain/context.js';
import type { UserRow } from '../domain/users.js';
import type { ProjectAllowance } from '../domain/limits.js';
import { storageOfProject } from '../domain/storage.js';

/** A project as the API shows it; its storage only to its members and operators (`actor` given). */
export function projectView(ctx: Ctx, p: ProjectRow, actor?: Actor) {
  return {
    slug: p.slug,
    title: p.title,
    visibility: p.visibility,
    state: p.state,
    svnUrl: `${ctx.cfg.publicUrl}/svn/${p.slug}`,
    tracUrl: `${ctx.cfg.publicUrl}/trac/${p.slug}`,
    members: members(ctx, p.id),
    storage: actor === undefined || roleIn(ctx, actor, p.id) ? storageOfProject(ctx, p.id) : null,
    lastError: p.last_error,
    createdAt: p.created_at,
  };
}

export function userView(u: UserRow) {
  return { name: u.name, email: u.email, admin: !!u.is_admin, createdAt: u.created_at, disabled: !!u.disabled_at };
}

/** One account with its project allowance (GET and PATCH /api/v1/users/:name). */
export function userDetailView(d: { user: UserRow; projects: ProjectAllowance }) {
  return {
    ...userView(d.user),
    /** The account's own limit; null: the operator's default (maxProjectsPerUser) applies. */
    maxProjects: d.projects.own,
    /** What applies: the account's own limit, else the default; null: no limit (operators have none). */
    projectLimit: d.projects.limit,
    projectsOwned: d.projects.owned,
  };
}

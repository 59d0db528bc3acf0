/** How the JSON API shows a project and a user. */
import type { Ctx } from '../../domain/context.js';
import { members, type ProjectRow } from '../../domain/projects.js';
import type { UserRow } from '../../domain/users.js';

export function projectView(ctx: Ctx, p: ProjectRow) {
  return {
    slug: p.slug,
    title: p.title,
    visibility: p.visibility,
    state: p.state,
    svnUrl: `${ctx.cfg.publicUrl}/svn/${p.slug}`,
    tracUrl: `${ctx.cfg.publicUrl}/trac/${p.slug}`,
    members: members(ctx, p.id),
    lastError: p.last_error,
    createdAt: p.created_at,
  };
}

export function userView(u: UserRow) {
  return { name: u.name, email: u.email, admin: !!u.is_admin, createdAt: u.created_at, disabled: !!u.disabled_at };
}

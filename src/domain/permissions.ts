/**
 * Path rules, permission history and revert, and where publishing stands. Every change bumps the
 * project's permission version and enqueues one coalesced publish, in one transaction (src/store/permissions.ts).
 */
import type { Actor, Ctx } from './context.js';
import * as perms from '../store/permissions.js';
import type { PathRule } from '../authz/render.js';
import { projectFor } from './projects.js';
import { countChange } from './limits.js';

export function pathRules(ctx: Ctx, actor: Actor | undefined, slug: string): PathRule[] {
  const p = projectFor(ctx, actor, slug, 'viewer');
  return perms.pathRules(ctx.db, p.id);
}

export function setPathRules(ctx: Ctx, actor: Actor, slug: string, rules: PathRule[]): { rules: PathRule[]; version: number } {
  const p = projectFor(ctx, actor, slug, 'owner');
  countChange(ctx, actor, slug);
  const version = perms.setPathRules(ctx.db, actor.label, slug, rules);
  ctx.fx.enqueued();
  return { rules: perms.pathRules(ctx.db, p.id), version };
}

export function permissionHistory(ctx: Ctx, actor: Actor, slug: string, limit: number): perms.HistoryEntry[] {
  projectFor(ctx, actor, slug, 'owner');
  return perms.permissionHistory(ctx.db, slug, limit);
}

/**
 * Restores version `version` as a new version (refused if no owner would remain); when the state
 * is already that version's, nothing is written and the current version is returned.
 */
export function revertPermissions(ctx: Ctx, actor: Actor, slug: string, version: number): number {
  projectFor(ctx, actor, slug, 'owner');
  countChange(ctx, actor, slug);
  const v = perms.revertPermissions(ctx.db, actor.label, slug, version);
  ctx.fx.enqueued();
  return v;
}

/** The database's permission version, the one on disk, and the recent publishes. */
export function authzStatus(ctx: Ctx, actor: Actor, slug: string) {
  projectFor(ctx, actor, slug, 'owner');
  const p = perms.versionedProject(ctx.db, slug)!;
  return {
    version: p.perm_version,
    published: p.published_version === null ? null : { version: p.published_version, checksum: p.published_checksum, at: p.published_at },
    inSync: p.published_version === p.perm_version,
    lastError: p.last_error,
    publishes: perms.publishes(ctx.db, p.id),
  };
}

/**
 * Path rules, permission history and revert, and where publishing stands. Every change is one
 * unit of work: its rows, its audit row and a new permission version, whose publish is queued
 * (src/domain/unit.ts).
 */
import type { Actor, Ctx } from './context.js';
import * as perms from '../store/permissions.js';
import { getUser } from '../store/users.js';
import { membershipRows, members, replaceMembers } from '../store/members.js';
import { setTitleAndVisibility } from '../store/projects.js';
import { ConflictError, InputError, NotFoundError } from '../errors.js';
import { assertRulePath, assertSubject, type PathRule, type Role } from '../names.js';
import { projectFor, stillLive } from './projects.js';
import { countChange } from './limits.js';
import { inUnit } from './unit.js';
import { keepOwners } from './owners.js';

export function pathRules(ctx: Ctx, actor: Actor | undefined, slug: string): PathRule[] {
  const p = projectFor(ctx, actor, slug, 'viewer');
  return perms.pathRules(ctx.db, p.id);
}

/**
 * Why a set of path rules is refused, naming the field of the first bad rule
 * (`rules.2.subject: ...`), or null. Every subject must be a role, `*` or a current member
 * (`memberNames`); anonymous visitors (`*`) never write; one rule per subject and path.
 */
export function pathRulesProblem(rules: readonly PathRule[], memberNames: ReadonlySet<string>, slug: string): string | null {
  const seen = new Set<string>();
  for (const [i, r] of rules.entries()) {
    try {
      assertRulePath(r.path);
    } catch (e) {
      return `rules.${i}.path: ${(e as Error).message}`;
    }
    try {
      assertSubject(r.subject);
    } catch (e) {
      return `rules.${i}.subject: ${(e as Error).message}`;
    }
    if (r.subject === '*' && r.access === 'rw')
      return `rules.${i}.access: "*" includes anonymous visitors, who may never write; give rw to a role or a member`;
    if (r.subject !== '*' && !r.subject.startsWith('@') && !memberNames.has(r.subject))
      return `rules.${i}.subject: ${r.subject} is not a member of ${slug}; add them first`;
    const key = `${r.path} ${r.subject}`;
    if (seen.has(key)) return `rules.${i}: a second rule for ${r.subject} on ${r.path}`;
    seen.add(key);
  }
  return null;
}

/** Replaces a project's path rules; rules as they already are record nothing (the current version is returned). */
export function setPathRules(ctx: Ctx, actor: Actor, slug: string, rules: PathRule[]): { rules: PathRule[]; version: number } {
  const p = projectFor(ctx, actor, slug, 'owner');
  countChange(ctx, actor, slug);
  const version = inUnit(ctx, actor.label, (u) => {
    stillLive(u.db, p);
    const problem = pathRulesProblem(rules, new Set(members(u.db, p.id).map((m) => m.user)), slug);
    if (problem) throw new InputError(problem);
    const before = perms.pathRules(u.db, p.id);
    perms.replacePathRules(u.db, p.id, rules);
    if (JSON.stringify(before) === JSON.stringify(perms.pathRules(u.db, p.id))) return perms.currentVersion(u.db, p.id);
    u.audit('paths.set', slug, { rules });
    const summary = rules.length ? rules.map((r) => `${r.path}: ${r.subject}=${r.access || 'none'}`).join(', ') : 'no path rules';
    return u.permissionChanged(p.id, 'paths.set', summary);
  });
  return { rules: perms.pathRules(ctx.db, p.id), version };
}

export function permissionHistory(ctx: Ctx, actor: Actor, slug: string, limit: number): perms.HistoryEntry[] {
  const p = projectFor(ctx, actor, slug, 'owner');
  return perms.permissionHistory(ctx.db, p.id, limit);
}

/**
 * Puts a project's members, roles, visibility and path rules back as they were at `version`, as a
 * new version (history is never rewritten). Users deleted since are left out and named in the
 * summary; a state with no enabled owner left is refused (the owner rule). When the state is
 * already that version's, nothing is written and the current version is returned.
 */
export function revertPermissions(ctx: Ctx, actor: Actor, slug: string, version: number): number {
  projectFor(ctx, actor, slug, 'owner');
  countChange(ctx, actor, slug);
  return inUnit(ctx, actor.label, (u) => {
    const p = projectFor(ctx, actor, slug, 'owner');
    const s = perms.historySnapshot(u.db, p.id, version);
    if (!s) throw new NotFoundError(`${slug} has no permission version ${version}`);
    const before = JSON.stringify([perms.currentSnapshot(u.db, p), membershipRows(u.db, p.id)]);
    const gone: string[] = [];
    const restored: { userId: number; user: string; role: Role }[] = [];
    for (const m of s.members) {
      const found = getUser(u.db, m.user);
      if (found) restored.push({ userId: found.id, user: m.user, role: m.role });
      else gone.push(m.user);
    }
    const kept = new Set(restored.map((m) => m.user));
    replaceMembers(u.db, p.id, restored);
    keepOwners(u.db, [p.id], () => `version ${version} of ${slug} has no owner who still exists; not reverting`);
    perms.replacePathRules(
      u.db,
      p.id,
      s.rules
        .filter((r) => r.subject === '*' || r.subject.startsWith('@') || kept.has(r.subject))
        // An old state may give everyone write access, which is no longer allowed: read at most.
        .map((r) => ({ ...r, access: r.subject === '*' && r.access === 'rw' ? 'r' : r.access })),
    );
    // Already that state (reverting twice, or to the state it has): nothing to record. The rows
    // were rewritten to the same values, which costs no space. (Memberships are compared as rows
    // too: a disabled user's, which the snapshot leaves out, is a change to record.)
    const after = JSON.stringify([perms.currentSnapshot(u.db, { ...p, visibility: s.visibility }), membershipRows(u.db, p.id)]);
    if (after === before) return perms.currentVersion(u.db, p.id);
    setTitleAndVisibility(u.db, p.id, p.title, s.visibility);
    u.audit('permissions.revert', slug, { to: version, gone });
    return u.permissionChanged(
      p.id,
      'revert',
      `reverted to version ${version}` + (gone.length ? ` (users no longer present: ${gone.join(', ')})` : ''),
    );
  });
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

export { ConflictError };

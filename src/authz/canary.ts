import path from 'node:path';
import { PROJECT_ROOT } from '../paths.js';
import { JsonLinesHelper } from '../sys/json-lines.js';
import { expectedAccess, rulePaths } from './render.js';
import type { ProjectAccess } from '../names.js';
import type { Access } from '../names.js';

/** Upper case: user names are lower case, so this one can never be a member. */
export const NON_MEMBER = 'Keelson-NonMember';

const SCRIPT = path.join(PROJECT_ROOT, 'src', 'authz', 'authz_check.py');

/** The questions asked of every rendering: who, where, and what the rows say they should get. */
export function canaries(p: ProjectAccess): { user: string | undefined; path: string; want: Access }[] {
  const users = new Set<string | undefined>([NON_MEMBER, undefined]);
  if (!p.suspended) {
    for (const role of ['owner', 'developer', 'viewer'] as const) {
      const m = p.members.find((x) => x.role === role);
      if (m) users.add(m.user);
    }
    for (const r of p.rules ?? []) if (r.subject !== '*' && !r.subject.startsWith('@')) users.add(r.subject);
  } else {
    for (const m of p.members) users.add(m.user);
  }
  const paths = ['/', ...rulePaths(p)];
  const out = [];
  for (const user of users) for (const at of paths) out.push({ user, path: at, want: expectedAccess(p, user, at) });
  return out;
}

/**
 * Subversion's own authz parser (libsvn_repos through its Python bindings, the code
 * mod_authz_svn and `svnauthz` run), kept in one long-lived process. `verify` parses a
 * rendering and asks it the canary questions: the file must parse, and for one member of each
 * role, each user a path rule names, a user who can never be a member and anonymous, on `/` and
 * on every rule's path, libsvn must grant exactly what the database says. Any difference throws,
 * naming each mismatch; the caller then keeps the previous file.
 */
export class AuthzChecker extends JsonLinesHelper {
  constructor(python: string) {
    super(python, SCRIPT, 'authz check');
  }

  async access(text: string, repo: string, checks: [string | undefined, string][]): Promise<Access[]> {
    const r = await this.call<{ access: Access[] }>('check', { text, repo, checks: checks.map(([u, p]) => [u ?? null, p]) });
    return r.access;
  }

  async verify(text: string, p: ProjectAccess): Promise<void> {
    const qs = canaries(p);
    const got = await this.access(
      text,
      p.slug,
      qs.map((q) => [q.user, q.path]),
    );
    const problem = mismatches(p, qs, got);
    if (problem) throw new Error(problem);
  }

  /**
   * verify() for many renderings in one round trip (a rebuild): the error of each one that fails,
   * undefined for each that passes.
   */
  async verifyMany(items: { text: string; access: ProjectAccess }[]): Promise<(string | undefined)[]> {
    const qs = items.map((i) => canaries(i.access));
    const res = await this.call<({ access: Access[] } | { error: string })[]>('check_many', {
      items: items.map((i, n) => ({ text: i.text, repo: i.access.slug, checks: qs[n]!.map((q) => [q.user ?? null, q.path]) })),
    });
    return res.map((r, n) => ('error' in r ? `authz check: ${r.error}` : mismatches(items[n]!.access, qs[n]!, r.access)));
  }
}

function mismatches(p: ProjectAccess, qs: ReturnType<typeof canaries>, got: Access[]): string | undefined {
  const bad = qs
    .map((q, i) =>
      got[i] === q.want
        ? undefined
        : `${q.user ?? 'anonymous'} should have ${q.want || 'no access'} on ${q.path}, file gives ${got[i] || 'none'}`,
    )
    .filter((x): x is string => !!x);
  return bad.length ? `authz canary failed for ${p.slug}: ${bad.join('; ')}` : undefined;
}

import { run } from '../provision/exec.js';
import type { ProjectAccess } from './render.js';

/** Upper case: user names are lower case, so this one can never be a member. */
export const NON_MEMBER = 'Keelson-NonMember';

type Access = 'rw' | 'r' | 'no';

/**
 * Asks the real svnauthz what a rendered file grants, before it is published: one member of each
 * role, a user who can never be a member, and anonymous. `svnauthz accessof --is` exits 3 on a
 * mismatch. Throws with every mismatch named; the caller then keeps the previous file.
 */
export async function checkCanaries(file: string, p: ProjectAccess): Promise<void> {
  const open: Access = p.visibility === 'public' ? 'r' : 'no';
  const checks: [string | undefined, Access][] = [
    [NON_MEMBER, open],
    [undefined, open],
  ];
  for (const role of ['owner', 'developer', 'viewer'] as const) {
    const m = p.members.find((x) => x.role === role);
    if (m) checks.push([m.user, role === 'viewer' ? 'r' : 'rw']);
  }
  const results = await Promise.all(
    checks.map(async ([user, want]) => {
      const args = ['accessof', '--path', '/', '--is', want, ...(user ? ['--username', user] : []), file];
      const r = await run('svnauthz', args, { okCodes: [3] });
      return r.code === 0 ? undefined : `${user ?? 'anonymous'} should have ${want} on /`;
    }),
  );
  const bad = results.filter((x): x is string => !!x);
  if (bad.length) throw new Error(`authz canary failed for ${p.slug}: ${bad.join('; ')}`);
}

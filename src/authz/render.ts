import {
  ACCESSES,
  assertRulePath,
  assertSlug,
  assertSubject,
  assertUser,
  ROLES,
  type Access,
  type Role,
  type Visibility,
} from '../names.js';

export interface Member {
  user: string;
  role: Role;
}
/** An owner's rule on a repository path: `subject = access` in the `[path]` section. */
export interface PathRule {
  path: string;
  /** '@owner' | '@developer' | '@viewer' | '*' | a member's user name. */
  subject: string;
  access: Access;
}
export interface ProjectAccess {
  slug: string;
  visibility: Visibility;
  members: readonly Member[];
  rules?: readonly PathRule[];
  /** A suspended project's files grant nothing to anybody; its rows are kept for resuming. */
  suspended?: boolean;
}

const byName = (a: Member, b: Member) => (a.user < b.user ? -1 : a.user > b.user ? 1 : 0);

function checkedMembers(p: ProjectAccess): Member[] {
  assertSlug(p.slug);
  if (p.visibility !== 'private' && p.visibility !== 'public') {
    throw new Error(`refusing visibility ${JSON.stringify(p.visibility)}`);
  }
  const seen = new Set<string>();
  for (const m of p.members) {
    assertUser(m.user);
    if (!ROLES.includes(m.role)) throw new Error(`refusing role ${JSON.stringify(m.role)}`);
    if (seen.has(m.user)) throw new Error(`user ${m.user} listed twice`);
    seen.add(m.user);
  }
  return [...p.members].sort(byName);
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

interface Checked {
  members: Member[];
  /** Path -> its entries, both sorted; only entries that name someone (no empty groups). */
  sections: Map<string, [string, Access][]>;
}

/**
 * Everything a renderer emits, checked again here: names, roles, paths, subjects. A rule naming
 * a user who is not a member is refused (it would grant a non-member access); a rule for a role
 * nobody holds is left out, so no section ever references an undefined group.
 */
function checked(p: ProjectAccess): Checked {
  const members = checkedMembers(p);
  const sections = new Map<string, [string, Access][]>();
  if (p.suspended) return { members: [], sections };
  const roles = new Set(members.map((m) => '@' + m.role));
  const users = new Set(members.map((m) => m.user));
  const seen = new Set<string>();
  for (const r of p.rules ?? []) {
    assertRulePath(r.path);
    assertSubject(r.subject);
    if (!(ACCESSES as readonly string[]).includes(r.access)) throw new Error(`refusing access ${JSON.stringify(r.access)}`);
    // `*` includes anonymous clients: nobody who has not signed in may ever write.
    if (r.subject === '*' && r.access === 'rw') throw new Error(`refusing write access for everyone (*) on ${r.path}`);
    const key = r.path + '\0' + r.subject;
    if (seen.has(key)) throw new Error(`rule for ${r.subject} on ${r.path} listed twice`);
    seen.add(key);
    if (r.subject.startsWith('@')) {
      if (!roles.has(r.subject)) continue;
    } else if (r.subject !== '*' && !users.has(r.subject)) {
      throw new Error(`refusing a rule on ${r.path} for ${r.subject}, who is not a member of ${p.slug}`);
    }
    const list = sections.get(r.path) ?? [];
    list.push([r.subject, r.access]);
    sections.set(r.path, list);
  }
  for (const list of sections.values()) list.sort((a, b) => cmp(a[0], b[0]));
  return { members, sections: new Map([...sections].sort((a, b) => cmp(a[0], b[0]))) };
}

/** The entries of the `[/]` section: role grants, and read for everyone if public. */
function rootEntries(p: ProjectAccess, members: Member[]): [string, Access][] {
  if (p.suspended) return [];
  const out: [string, Access][] = ROLES.filter((role) => members.some((m) => m.role === role)).map((role) => [
    '@' + role,
    role === 'viewer' ? 'r' : 'rw',
  ]);
  if (p.visibility === 'public') out.push(['*', 'r']);
  return out;
}

const RANK: Record<Access, number> = { '': 0, r: 1, rw: 2 };

/**
 * What Subversion grants `user` (undefined: anonymous) on `path` under the rendered file, computed
 * from the rows: the nearest section (the path itself, then its parents up to `/`) with an entry
 * that matches the user decides, and within it the matching entries add up. The canaries hold
 * libsvn's answer to this one.
 */
export function expectedAccess(p: ProjectAccess, user: string | undefined, path: string): Access {
  const { members, sections } = checked(p);
  const role = user === undefined ? undefined : members.find((m) => m.user === user)?.role;
  const matches = (subject: string) => subject === '*' || (role !== undefined && subject === '@' + role) || subject === user;
  for (let q = path; ; q = q.slice(0, q.lastIndexOf('/')) || '/') {
    const entries = q === '/' ? rootEntries(p, members) : (sections.get(q) ?? []);
    const hit = entries.filter(([subject]) => matches(subject));
    if (hit.length) return hit.reduce<Access>((a, [, acc]) => (RANK[acc] > RANK[a] ? acc : a), '');
    if (q === '/') return '';
  }
}

/** The paths with rules, for canaries and the API. */
export function rulePaths(p: ProjectAccess): string[] {
  return [...checked(p).sections.keys()];
}

/**
 * The repository's own authz file (read through AuthzSVNReposRelativeAccessFile), so a bad
 * rendering can only ever deny its own repository. Deterministic: the same rows give the same
 * bytes. A group is emitted only when it has members, and only emitted groups are referenced,
 * so the file can never name an undefined group.
 */
export function renderAuthz(p: ProjectAccess): string {
  const { members, sections } = checked(p);
  const lines = [`# Generated by Keelson from its database for project ${p.slug}. Do not edit: it is overwritten.`];
  if (p.suspended) lines.push('# The project is suspended: nobody has access.');
  lines.push('[groups]');
  for (const role of ROLES) {
    const users = members.filter((m) => m.role === role).map((m) => m.user);
    if (users.length) lines.push(`${role} = ${users.join(', ')}`);
  }
  lines.push('', '[/]', ...rootEntries(p, members).map(([s, a]) => `${s} = ${a}`));
  for (const [path, entries] of sections) {
    lines.push('', `[${path}]`, ...entries.map(([s, a]) => (a ? `${s} = ${a}` : `${s} =`)));
  }
  return lines.join('\n') + '\n';
}

/** Trac's permission actions per role; groups start with '@', which no user name can. */
const VIEW = [
  'BROWSER_VIEW',
  'CHANGESET_VIEW',
  'FILE_VIEW',
  'LOG_VIEW',
  'MILESTONE_VIEW',
  'REPORT_VIEW',
  'REPORT_SQL_VIEW',
  'ROADMAP_VIEW',
  'SEARCH_VIEW',
  'TICKET_VIEW',
  'TIMELINE_VIEW',
  'WIKI_VIEW',
];
const DEVELOP = ['TICKET_CREATE', 'TICKET_MODIFY', 'WIKI_CREATE', 'WIKI_MODIFY', 'MILESTONE_CREATE', 'MILESTONE_MODIFY'];
/**
 * Owners administer their own project's content: tickets and their fields' values, milestones,
 * versions, components, reports, roadmap and wiki. Never TRAC_ADMIN: its Plugins, Logging and
 * Repositories panels reach the filesystem and the process; members are managed in Keelson.
 */
const OWN = ['TICKET_ADMIN', 'MILESTONE_ADMIN', 'REPORT_ADMIN', 'ROADMAP_ADMIN', 'WIKI_ADMIN'];
export const TRAC_GROUPS: Record<Role, string> = { owner: '@owner', developer: '@developer', viewer: '@viewer' };

/**
 * The whole permission table a project's Trac should hold, as sorted [subject, action] pairs.
 * Trac's own defaults for a new environment (anonymous view, authenticated create/modify) are not
 * in it, so converging removes them: a private project shows nothing to non-members.
 */
export function renderTracPermissions(p: ProjectAccess): [string, string][] {
  const members = p.suspended ? (checkedMembers(p), []) : checkedMembers(p);
  const out: [string, string][] = [];
  for (const a of VIEW) out.push(['@viewer', a]);
  out.push(['@developer', '@viewer']);
  for (const a of DEVELOP) out.push(['@developer', a]);
  out.push(['@owner', '@developer']);
  for (const a of OWN) out.push(['@owner', a]);
  for (const m of members) out.push([m.user, TRAC_GROUPS[m.role]]);
  if (p.visibility === 'public' && !p.suspended) out.push(['anonymous', '@viewer']);
  return out.sort((a, b) => (a[0] + '\0' + a[1] < b[0] + '\0' + b[1] ? -1 : 1));
}

/** Project titles end up in trac.ini: one printable line, no control characters. */
export function assertTitle(title: string): void {
  // eslint-disable-next-line no-control-regex
  if (title.length < 1 || title.length > 100 || /[\u0000-\u001f\u007f]/.test(title) || title.trim() !== title) {
    throw new Error(`refusing project title ${JSON.stringify(title)}`);
  }
}

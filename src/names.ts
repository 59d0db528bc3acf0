import { InputError } from './errors.js';

/**
 * Names are the security boundary of every generated file (authz, hooks, Trac config, Apache
 * config). They are checked at the API edge and again by every renderer, so a bad row in the
 * database can never become file content.
 */
export const SLUG_RE = /^[a-z][a-z0-9-]{1,38}[a-z0-9]$/;
export const USER_RE = /^[a-z][a-z0-9_.-]{0,31}$/;

export const RESERVED = new Set([
  'svn',
  'trac',
  'api',
  'admin',
  'static',
  'www',
  'web',
  'assets',
  'login',
  'logout',
  'signup',
  'health',
  'metrics',
  'root',
  'system',
  'keelson',
  'anonymous',
  'authenticated',
  'staging',
  'chrome',
  'htdocs',
  'public',
  'backup',
  'backups',
  'support',
  'help',
  'about',
  'apache',
  'www-data',
  'nobody',
  'operator',
]);

export const SLUG_RULE = '3-40 characters: lowercase letters, digits and "-", starting with a letter and not ending with "-"';
export const USER_RULE = '1-32 characters: lowercase letters, digits, "_", "." and "-", starting with a letter';

export function slugProblem(s: unknown): string | null {
  if (typeof s !== 'string') return 'must be a string';
  if (!SLUG_RE.test(s)) return SLUG_RULE;
  if (RESERVED.has(s)) return `"${s}" is reserved`;
  return null;
}

export function userProblem(s: unknown): string | null {
  if (typeof s !== 'string') return 'must be a string';
  if (!USER_RE.test(s)) return USER_RULE;
  if (s.endsWith('.') || s.includes('..')) return USER_RULE + ', without ".." or a final "."';
  if (RESERVED.has(s)) return `"${s}" is reserved`;
  return null;
}

/** The renderers' own check: throws instead of emitting a name that is not safe. */
export function assertSlug(s: unknown): asserts s is string {
  const p = slugProblem(s);
  if (p) throw new InputError(`refusing project slug ${JSON.stringify(s)}: ${p}`);
}
export function assertUser(s: unknown): asserts s is string {
  const p = userProblem(s);
  if (p) throw new InputError(`refusing user name ${JSON.stringify(s)}: ${p}`);
}

export const ROLES = ['owner', 'developer', 'viewer'] as const;
export type Role = (typeof ROLES)[number];
export const VISIBILITIES = ['private', 'public'] as const;
export type Visibility = (typeof VISIBILITIES)[number];

/**
 * Repository paths an owner may put a rule on: "/seg/seg", each segment lowercase letters, digits,
 * ".", "_" and "-" starting with a letter or digit (so no "." or ".." segment), no "//", no
 * trailing "/", at most 8 segments and 200 characters. Anything that could inject into an authz
 * section header (`]`, `:`, spaces, newlines) or that Trac's AuthzSourcePolicy reads differently
 * from mod_authz_svn (`~`, `:glob:`) cannot pass.
 */
export const RULE_PATH_RE = /^(\/[a-z0-9][a-z0-9._-]{0,63}){1,8}$/;
export const RULE_PATH_RULE =
  'a repository path like /trunk/secret: segments of lowercase letters, digits, ".", "_" and "-", each starting with a letter or digit; no "//", ".." or trailing "/"';
export const ACCESSES = ['rw', 'r', ''] as const;
export type Access = (typeof ACCESSES)[number];
/** Who a path rule is for: a role group, a member's user name, or everyone ("*"). */
export const ROLE_SUBJECTS = ['@owner', '@developer', '@viewer'] as const;

export function rulePathProblem(s: unknown): string | null {
  if (typeof s !== 'string') return 'must be a string';
  if (s.length > 200 || !RULE_PATH_RE.test(s)) return RULE_PATH_RULE;
  return null;
}

export function subjectProblem(s: unknown): string | null {
  if (typeof s !== 'string') return 'must be a string';
  if (s === '*' || (ROLE_SUBJECTS as readonly string[]).includes(s)) return null;
  const p = userProblem(s);
  return p ? `"@owner", "@developer", "@viewer", "*" or a member's user name (${p})` : null;
}

export function assertRulePath(s: unknown): asserts s is string {
  const p = rulePathProblem(s);
  if (p) throw new InputError(`refusing rule path ${JSON.stringify(s)}: ${p}`);
}
export function assertSubject(s: unknown): asserts s is string {
  const p = subjectProblem(s);
  if (p) throw new InputError(`refusing rule subject ${JSON.stringify(s)}: ${p}`);
}

/** A project member as the authz files name them. */
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

import { z } from 'zod';
import { slugProblem, userProblem, VISIBILITIES, ROLES } from '../names.js';

/** The same schemas serve the API, the CLI and (later) the web forms. */
export const slug = z.string().superRefine((s, ctx) => {
  const p = slugProblem(s);
  if (p) ctx.addIssue({ code: 'custom', message: p });
});
export const username = z.string().superRefine((s, ctx) => {
  const p = userProblem(s);
  if (p) ctx.addIssue({ code: 'custom', message: p });
});
export const title = z
  .string()
  .min(1, 'must not be empty')
  .max(100, 'at most 100 characters')
  // eslint-disable-next-line no-control-regex
  .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), 'must be one line without control characters')
  .refine((s) => s.trim() === s, 'must not start or end with spaces');
/** Passwords people choose and guessers try first; refused whatever their length. */
const COMMON_PASSWORDS = new Set([
  '1234567890',
  '12345678910',
  '123456789012',
  '0987654321',
  'qwertyuiop',
  'password12',
  'password123',
  'password1234',
  'passw0rd123',
  'iloveyou123',
  'letmein1234',
  'abcdefghij',
  'abc1234567',
  'qwerty1234',
  'qwerty123456',
  'administrator',
  'changeme123',
  'trustno1234',
  'welcome123',
  'subversion',
]);
export const PASSWORD_RULE = '10 to 200 characters, at least 5 different ones, not a common password and not your user name';
export const password = z
  .string()
  .min(10, 'at least 10 characters')
  .max(200, 'at most 200 characters')
  .refine((p) => new Set(p).size >= 5, 'use at least 5 different characters')
  .refine((p) => !COMMON_PASSWORDS.has(p.toLowerCase()), 'this is one of the most common passwords; choose another');
export const email = z.email('must be an email address').max(254);

export const createUserBody = z.strictObject({ name: username, email, password, admin: z.boolean().optional() });
export const createProjectBody = z.strictObject({
  slug,
  title: title.optional(),
  visibility: z.enum(VISIBILITIES).default('private'),
  owner: username,
});
/** A storage limit in bytes (at least 1 MiB, at most 1 PiB); null in a PATCH: back to the operator's default. */
export const storageLimit = z
  .number()
  .int('a whole number of bytes')
  .min(1024 ** 2, 'at least 1 MiB (1048576)')
  .max(2 ** 50, 'at most 1 PiB');
/** The operator page's limit box: bytes, or a number with K, M, G or T (powers of 1024); empty for the default. */
export const storageLimitText = z
  .string()
  .trim()
  .regex(/^$|^\d{1,16}\s*[KMGT]?i?B?$/i, 'a byte count such as 1073741824, 512M or 2G')
  .transform((t) => {
    if (t === '') return null;
    const m = t.match(/^(\d+)\s*([KMGT]?)/i)!;
    return Number(m[1]) * 1024 ** ' KMGT'.indexOf((m[2] || ' ').toUpperCase());
  })
  .pipe(storageLimit.nullable());
export const patchProjectBody = z.strictObject({
  title: title.optional(),
  visibility: z.enum(VISIBILITIES).optional(),
  /** Operators only. */
  storageLimitBytes: storageLimit.nullable().optional(),
});
export const memberBody = z.strictObject({ role: z.enum(ROLES) });
export const slugParams = z.object({ slug });
export const memberParams = z.object({ slug, user: username });
export const userParams = z.object({ name: username });

// ---- web UI and its API (sessions, signup, capacity gate) ----

const noUserInPassword = (b: { username: string; password: string }, ctx: z.RefinementCtx) => {
  if (b.username.length >= 3 && b.password.toLowerCase().includes(b.username.toLowerCase()))
    ctx.addIssue({ code: 'custom', path: ['password'], message: 'must not contain your user name' });
};
export const visibility = z.enum(VISIBILITIES);
export const firstProject = z.strictObject({ slug, title: title.optional(), visibility: visibility.default('private') });
export const inviteCode = z.string().regex(/^inv-[A-Za-z0-9_-]{16}$/, 'an invite code looks like inv- followed by 16 letters or digits');
export const signupBody = z
  .strictObject({ username, email, password, invite: inviteCode.optional(), project: firstProject.optional() })
  .superRefine(noUserInPassword);
/** Login takes any strings: the answer to a malformed name is the same as to a wrong password. */
export const loginBody = z.strictObject({ username: z.string().max(200), password: z.string().max(200) });
export const changePasswordBody = z.strictObject({ current: z.string().max(200), password, username }).superRefine(noUserInPassword);
/** A signed-in user's new project: they are the owner (admins may name another owner). */
export const ownProjectBody = z.strictObject({
  slug,
  title: title.optional(),
  visibility: visibility.default('private'),
  owner: username.optional(),
});
export const capacityBody = z.strictObject({
  maxProjects: z.coerce.number().int('a whole number').min(0, 'at least 0').max(1_000_000).nullable(),
  minFreeBytes: z.coerce.number().int('a whole number').min(0, 'at least 0'),
  signupMode: z.enum(['open', 'invite', 'closed']),
  /** Optional so scripts written before these existed keep working: absent keeps the current value. */
  projectStorageLimitBytes: z.coerce
    .number()
    .int('a whole number')
    .min(0, 'at least 0')
    .max(2 ** 50)
    .nullable()
    .optional(),
  maxProjectsPerUser: z.coerce.number().int('a whole number').min(0, 'at least 0').max(1_000_000).nullable().optional(),
});
export const waitlistBody = z.strictObject({ email });
export const inviteBody = z.strictObject({ email: email.optional() });
/** An operator's change to an account: any of its fields; `maxProjects: null` goes back to the operator's default. */
export const userPatchBody = z
  .strictObject({
    disabled: z.boolean().optional(),
    maxProjects: z.number().int('a whole number').min(0, 'at least 0').max(1_000_000, 'at most 1000000').nullable().optional(),
  })
  .refine((b) => b.disabled !== undefined || b.maxProjects !== undefined, 'give disabled, maxProjects or both');

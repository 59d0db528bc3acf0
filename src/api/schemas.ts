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
export const password = z.string().min(10, 'at least 10 characters').max(200, 'at most 200 characters');
export const email = z.email('must be an email address').max(254);

export const createUserBody = z.strictObject({ name: username, email, password, admin: z.boolean().optional() });
export const createProjectBody = z.strictObject({
  slug,
  title: title.optional(),
  visibility: z.enum(VISIBILITIES).default('private'),
  owner: username,
});
export const patchProjectBody = z.strictObject({ title: title.optional(), visibility: z.enum(VISIBILITIES).optional() });
export const memberBody = z.strictObject({ role: z.enum(ROLES) });
export const slugParams = z.object({ slug });
export const memberParams = z.object({ slug, user: username });
export const userParams = z.object({ name: username });

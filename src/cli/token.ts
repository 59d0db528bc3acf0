import type { Config } from '../config.js';
import { openContext } from '../main/context.js';
import { createApiToken } from '../domain/sessions.js';
import { parse, UsageError } from './args.js';

/** `keelson token create --name NAME`: an admin API token, printed once, stored hashed. */
export function tokenCommand(cfg: Config, rest: string[]): number {
  const usage = 'keelson token create --name NAME';
  const { values, positionals } = parse(rest, { name: { type: 'string' } }, usage);
  const name = values.name;
  if (positionals[0] !== 'create' || positionals.length !== 1 || !name) throw new UsageError('', usage);
  const ctx = openContext(cfg);
  try {
    console.log(createApiToken(ctx, name));
  } finally {
    ctx.close();
  }
  console.error(`Admin token "${name}" created. It is shown only now; store it. Use it as: Authorization: Bearer <token>`);
  return 0;
}

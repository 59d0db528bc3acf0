import type { Config } from '../config.js';
import { parse, UsageError } from './args.js';

/** `keelson api METHOD PATH [JSON]`: calls the admin API (KEELSON_URL, KEELSON_TOKEN) and prints the answer. */
export async function apiCommand(cfg: Config, rest: string[]): Promise<number> {
  const usage = 'keelson api METHOD PATH [JSON]';
  const [method, p, body, ...extra] = parse(rest, {}, usage).positionals;
  if (!method || !p || extra.length) throw new UsageError('', usage);
  const base = process.env.KEELSON_URL || `http://${cfg.httpHost}:${cfg.httpPort}`;
  const res = await fetch(base + (p.startsWith('/api') ? p : `/api/v1${p.startsWith('/') ? '' : '/'}${p}`), {
    method: method.toUpperCase(),
    headers: { authorization: `Bearer ${process.env.KEELSON_TOKEN ?? ''}`, 'content-type': 'application/json' },
    body: body,
  });
  console.log(JSON.stringify(await res.json(), null, 2));
  return res.ok ? 0 : 1;
}

import { layout, type Config } from '../config.js';
import { healthReport } from '../domain/health.js';
import { openContext } from '../main/context.js';
import { Apache } from '../provision/apache.js';
import { parse, UsageError } from './args.js';

export const HEALTH_USAGE = 'keelson health [--local] [--wait SECONDS [--pid PID]]';

/**
 * `keelson health`: asks the running host's /api/v1/health (database, worker, Apache) and prints
 * the answer; exit 0 when every part is up. With --wait it asks again every half second until it
 * is, or the time is up: the readiness check systemd runs after start (ExecStartPost). With --pid
 * (systemd's $MAINPID) it gives up as soon as that process is gone: a start that failed is reported
 * at once, not at the end of the wait. --local asks the database and Apache directly instead of the
 * API: the readiness of a host whose API runs apart (keelson.service beside keelson-web.service).
 */
export async function healthCommand(cfg: Config, rest: string[]): Promise<number> {
  const { values: o, positionals } = parse(
    rest,
    { wait: { type: 'string' }, pid: { type: 'string' }, local: { type: 'boolean' } },
    HEALTH_USAGE,
  );
  if (positionals.length) throw new UsageError(`unexpected ${positionals[0]}`, HEALTH_USAGE);
  const waitS = o.wait === undefined ? 0 : Number(o.wait);
  if (!Number.isFinite(waitS) || waitS < 0 || waitS > 3600) throw new UsageError('--wait takes 0 to 3600 seconds', HEALTH_USAGE);
  const pid = o.pid === undefined ? 0 : Number(o.pid);
  if (!Number.isInteger(pid) || pid < 0) throw new UsageError('--pid takes a process id', HEALTH_USAGE);
  const url = `${process.env.KEELSON_URL || `http://${cfg.httpHost}:${cfg.httpPort}`}/api/v1/health`;
  const until = Date.now() + waitS * 1000;
  const apache = new Apache(cfg, layout(cfg));
  let local: ReturnType<typeof openContext> | undefined;
  const ask = async (): Promise<{ ok: boolean; text: string }> => {
    if (o.local) {
      // The database is opened only once Apache answers: the host has made and migrated it by then.
      if (!local && !(await apache.healthy())) return { ok: false, text: 'Apache is not answering yet' };
      local ??= openContext(cfg);
      const h = await healthReport(local.db, () => apache.healthy());
      return { ok: h.ok, text: JSON.stringify(h) };
    }
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    return { ok: res.ok, text: await res.text() };
  };
  let last = '';
  try {
    for (;;) {
      try {
        const a = await ask();
        last = a.text;
        if (a.ok) {
          console.log(last);
          return 0;
        }
      } catch (e) {
        last = `${o.local ? 'health' : url}: ${(e as Error).cause ? String((e as Error & { cause: unknown }).cause) : (e as Error).message}`;
      }
      if (Date.now() >= until) break;
      if (pid && !alive(pid)) {
        console.error(`keelson: not healthy: process ${pid} has exited (its log says why)`);
        return 1;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    local?.close();
  }
  console.error(`keelson: not healthy${waitS ? ` after ${waitS} s` : ''}: ${last}`);
  return 1;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

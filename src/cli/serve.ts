import type { Config } from '../config.js';
import { log } from '../sys/log.js';
import { parse } from './args.js';

export const SERVE_USAGE = 'keelson serve [--no-api] [--no-worker] [--no-apache] [--no-scheduler]';

/** `keelson serve` and `keelson worker`: runs until SIGTERM or SIGINT, then stops gracefully. */
export async function serveCommand(cfg: Config, cmd: 'serve' | 'worker', rest: string[]): Promise<number> {
  const only = cmd === 'worker';
  const { values: o } = parse(
    rest,
    {
      'no-api': { type: 'boolean' },
      'no-worker': { type: 'boolean' },
      'no-apache': { type: 'boolean' },
      'no-scheduler': { type: 'boolean' },
    },
    SERVE_USAGE,
  );
  // Loaded here only: the other commands start faster without Express and the scheduler.
  const { serve } = await import('../main/serve.js');
  const h = await serve(cfg, {
    api: !only && !o['no-api'],
    worker: !o['no-worker'],
    apache: !only && !o['no-apache'],
    scheduler: !only && !o['no-scheduler'],
  });
  if (h.url) {
    console.log(`Keelson is up.
  API and web UI: ${h.url}/
  Subversion:     ${cfg.publicUrl}/svn/<project>
  Trac:           ${cfg.publicUrl}/trac/<project>
  Data:           ${cfg.dataDir}
First admin token: npm run keelson -- token create --name admin`);
  } else console.log('Keelson worker running.');
  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) return;
    stopping = true;
    log.info('stopping: finishing the work in hand, claiming nothing new', { signal: sig });
    h.stop().then(
      () => process.exit(0),
      (e) => {
        log.error('stop failed', { error: String(e) });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  return new Promise<number>(() => {});
}

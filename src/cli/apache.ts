import { layout, type Config } from '../config.js';
import { Apache } from '../provision/apache.js';
import { parse, UsageError } from './args.js';

/** `keelson apache start|stop|status`: the private Apache. */
export async function apacheCommand(cfg: Config, rest: string[]): Promise<number> {
  const usage = 'keelson apache start|stop|status';
  const { positionals } = parse(rest, {}, usage);
  if (positionals.length !== 1) throw new UsageError('', usage);
  const a = new Apache(cfg, layout(cfg));
  if (positionals[0] === 'start') await a.start();
  else if (positionals[0] === 'stop') await a.stop();
  else if (positionals[0] === 'status') {
    const ok = await a.healthy();
    console.log(ok ? `running (pid ${a.mainPid()})` : 'not answering');
    return ok ? 0 : 1;
  } else throw new UsageError(`unknown subcommand ${positionals[0]}`, usage);
  return 0;
}

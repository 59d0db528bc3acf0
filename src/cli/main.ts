#!/usr/bin/env node
import { loadConfig } from '../config.js';
import { BACKUP_HELP, backupCommand } from './backup.js';
import { UsageError } from './args.js';
import { serveCommand } from './serve.js';
import { tokenCommand } from './token.js';
import { reconcileCommand } from './reconcile.js';
import { apacheCommand } from './apache.js';
import { apiCommand } from './api.js';
import { healthCommand } from './health.js';

const HELP = `keelson: control plane for Trac + Subversion hosting

Usage:
  keelson serve [--no-api] [--no-worker] [--no-apache] [--no-scheduler]
                                  run the host (API + web UI, worker, scheduler, private Apache)
  keelson worker                  run only the job worker
  keelson token create --name N   create an admin API token (printed once, stored hashed)
  keelson reconcile SLUG | --all [--files-only]
                                  converge projects to the database now (rebuilds generated files;
                                  --files-only: authz, hooks and credentials only)
  keelson apache start|stop|status
  keelson api METHOD PATH [JSON]  call the admin API (KEELSON_URL, KEELSON_TOKEN)
  keelson health [--wait S]       is the running host up (database, worker, Apache)? exit 0 if so;
                                  --wait: ask until it is, at most S seconds (systemd's readiness check)
${BACKUP_HELP}
  keelson --help

Settings are KEELSON_* environment variables: KEELSON_DATA_DIR (./data), KEELSON_HTTP_PORT (8480),
KEELSON_APACHE_PORT (8481), KEELSON_PUBLIC_URL, KEELSON_APACHE_USER (www-data).`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(HELP);
    return cmd ? 0 : 2;
  }
  try {
    return await command(cmd, rest);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`${e.message ? `keelson: ${e.message}\n` : ''}usage: ${e.usage}`);
    return 2;
  }
}

/** One file per command; each parses its own arguments strictly. */
async function command(cmd: string, rest: string[]): Promise<number> {
  const cfg = loadConfig();
  switch (cmd) {
    case 'serve':
    case 'worker':
      return serveCommand(cfg, cmd, rest);
    case 'token':
      return tokenCommand(cfg, rest);
    case 'reconcile':
      return reconcileCommand(cfg, rest);
    case 'apache':
      return apacheCommand(cfg, rest);
    case 'backup':
      return backupCommand(cfg, rest);
    case 'api':
      return apiCommand(cfg, rest);
    case 'health':
      return healthCommand(cfg, rest);
    default:
      console.error(`unknown command ${cmd}\n\n${HELP}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    console.error(`keelson: ${(e as Error).message}`);
    process.exit(1);
  },
);

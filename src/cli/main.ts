#!/usr/bin/env node
import { loadConfig, layout } from '../config.js';
import { openDatabase } from '../store/db.js';
import { createApiToken } from '../store/model.js';
import { enqueueAll, serve } from '../server.js';
import { Reconciler } from '../provision/reconciler.js';
import { Apache } from '../provision/apache.js';
import { getProject } from '../store/model.js';
import { log } from '../log.js';

const HELP = `keelson: control plane for Trac + Subversion hosting

Usage:
  keelson serve [--no-api] [--no-worker] [--no-apache] [--no-scheduler]
                                  run the host (API + web UI, worker, scheduler, private Apache)
  keelson worker                  run only the job worker
  keelson token create --name N   create an admin API token (printed once, stored hashed)
  keelson reconcile SLUG | --all  converge projects to the database now (rebuilds generated files)
  keelson apache start|stop|status
  keelson api METHOD PATH [JSON]  call the admin API (KEELSON_URL, KEELSON_TOKEN)
  keelson --help

Settings are KEELSON_* environment variables: KEELSON_DATA_DIR (./data), KEELSON_HTTP_PORT (8480),
KEELSON_APACHE_PORT (8481), KEELSON_PUBLIC_URL, KEELSON_APACHE_USER (www-data).`;

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(HELP);
    return cmd ? 0 : 2;
  }
  const cfg = loadConfig();
  switch (cmd) {
    case 'serve':
    case 'worker': {
      const only = cmd === 'worker';
      const h = await serve(cfg, {
        api: !only && !rest.includes('--no-api'),
        worker: !rest.includes('--no-worker'),
        apache: !only && !rest.includes('--no-apache'),
        scheduler: !only && !rest.includes('--no-scheduler'),
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
    case 'token': {
      const name = flag(rest, '--name');
      if (rest[0] !== 'create' || !name) {
        console.error('usage: keelson token create --name NAME');
        return 2;
      }
      const db = openDatabase(layout(cfg).db);
      const token = createApiToken(db, name);
      db.close();
      console.log(token);
      console.error(`Admin token "${name}" created. It is shown only now; store it. Use it as: Authorization: Bearer <token>`);
      return 0;
    }
    case 'reconcile': {
      const l = layout(cfg);
      const db = openDatabase(l.db);
      const rec = new Reconciler(cfg, l, db);
      try {
        const slugs = rest.includes('--all')
          ? (db.prepare(`SELECT slug FROM projects WHERE state <> 'deleted' ORDER BY slug`).pluck().all() as string[])
          : rest.filter((a) => !a.startsWith('-'));
        if (slugs.length === 0) {
          console.error('usage: keelson reconcile SLUG... | --all');
          return 2;
        }
        await rec.syncCredentials();
        let failed = 0;
        const t0 = Date.now();
        for (const [i, slug] of slugs.entries()) {
          const p = getProject(db, slug);
          if (!p) {
            console.error(`no project ${slug}`);
            failed++;
            continue;
          }
          try {
            await rec.reconcile(p.id);
            process.stderr.write(`\r[${i + 1}/${slugs.length}] ${slug} ok          `);
          } catch (e) {
            failed++;
            console.error(`\n${slug}: ${(e as Error).message}`);
          }
        }
        await rec.drainCommitSpool();
        console.error(`\nreconciled ${slugs.length - failed} of ${slugs.length} projects in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
        if (rest.includes('--all')) enqueueAll(db);
        return failed ? 1 : 0;
      } finally {
        rec.close();
        db.close();
      }
    }
    case 'apache': {
      const a = new Apache(cfg, layout(cfg));
      if (rest[0] === 'start') await a.start();
      else if (rest[0] === 'stop') await a.stop();
      else if (rest[0] === 'status') {
        const ok = await a.healthy();
        console.log(ok ? `running (pid ${a.mainPid()})` : 'not answering');
        return ok ? 0 : 1;
      } else {
        console.error('usage: keelson apache start|stop|status');
        return 2;
      }
      return 0;
    }
    case 'api': {
      const [method, p, body] = rest;
      if (!method || !p) {
        console.error('usage: keelson api METHOD PATH [JSON]');
        return 2;
      }
      const base = process.env.KEELSON_URL || `http://${cfg.httpHost}:${cfg.httpPort}`;
      const res = await fetch(base + (p.startsWith('/api') ? p : `/api/v1${p.startsWith('/') ? '' : '/'}${p}`), {
        method: method.toUpperCase(),
        headers: { authorization: `Bearer ${process.env.KEELSON_TOKEN ?? ''}`, 'content-type': 'application/json' },
        body: body,
      });
      console.log(JSON.stringify(await res.json(), null, 2));
      return res.ok ? 0 : 1;
    }
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

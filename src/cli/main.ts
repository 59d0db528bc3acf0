#!/usr/bin/env node
import { loadConfig, layout } from '../config.js';
import { openDatabase } from '../store/db.js';
import { createApiToken } from '../store/model.js';
import { Reconciler } from '../provision/reconciler.js';
import { Apache } from '../provision/apache.js';
import { getProject, getProjectById, JOB_RECONCILE } from '../store/model.js';
import { enqueue } from '../store/jobs.js';
import { log } from '../sys/log.js';
import { BACKUP_HELP, backupCommand } from '../backup/cli.js';
import { parse, UsageError } from './args.js';

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

async function command(cmd: string, rest: string[]): Promise<number> {
  const cfg = loadConfig();
  switch (cmd) {
    case 'serve':
    case 'worker': {
      const only = cmd === 'worker';
      // Loaded here only: the other commands start faster without Express and the scheduler.
      const { values: o } = parse(
        rest,
        {
          'no-api': { type: 'boolean' },
          'no-worker': { type: 'boolean' },
          'no-apache': { type: 'boolean' },
          'no-scheduler': { type: 'boolean' },
        },
        'keelson serve [--no-api] [--no-worker] [--no-apache] [--no-scheduler]',
      );
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
    case 'token': {
      const usage = 'keelson token create --name NAME';
      const { values, positionals } = parse(rest, { name: { type: 'string' } }, usage);
      const name = values.name;
      if (positionals[0] !== 'create' || positionals.length !== 1 || !name) throw new UsageError('', usage);
      const db = openDatabase(layout(cfg).db);
      const token = createApiToken(db, name);
      db.close();
      console.log(token);
      console.error(`Admin token "${name}" created. It is shown only now; store it. Use it as: Authorization: Bearer <token>`);
      return 0;
    }
    case 'reconcile': {
      const usage = 'keelson reconcile SLUG... | --all [--files-only]';
      const { values, positionals: slugs } = parse(rest, { all: { type: 'boolean' }, 'files-only': { type: 'boolean' } }, usage);
      const all = !!values.all;
      const filesOnly = !!values['files-only'];
      if (all === slugs.length > 0 || (filesOnly && !all)) throw new UsageError('', usage);
      const l = layout(cfg);
      const db = openDatabase(l.db);
      const rec = new Reconciler(cfg, l, db);
      try {
        let ids: number[] = [];
        let failed = 0;
        const t0 = Date.now();
        if (all) {
          // First every authz file, hook and the credentials database, from the database alone.
          const r = await rec.rebuildFiles({ onProgress: (d, n) => process.stderr.write(`\rauthz and hooks: ${d}/${n}   `) });
          console.error(
            `\nauthz + hooks of ${r.projects} projects (${r.changed} rewritten) and credentials (+${r.credentials.upserted} -${r.credentials.removed}) in ${(r.ms / 1000).toFixed(2)} s`,
          );
          console.error(
            `  phases (ms): ${Object.entries(r.phases)
              .map(([k, v]) => `${k} ${v}`)
              .join(', ')}`,
          );
          for (const f of r.failed) console.error(`${f.slug}: ${f.error}`);
          failed += r.failed.length;
          if (filesOnly) {
            for (const id of r.needFull) enqueue(db, JOB_RECONCILE, id);
            if (r.needFull.length) console.error(`${r.needFull.length} projects need a full reconcile; queued for the worker`);
            return failed ? 1 : 0;
          }
          // Then the rest (Trac environments, repositories still missing) project by project.
          ids = db.prepare(`SELECT id FROM projects WHERE state <> 'deleted' ORDER BY slug`).pluck().all() as number[];
        } else {
          for (const slug of slugs) {
            const p = getProject(db, slug);
            if (p) ids.push(p.id);
            else {
              console.error(`no project ${slug}`);
              failed++;
            }
          }
          if (ids.length === 0) {
            console.error('usage: keelson reconcile SLUG... | --all [--files-only]');
            return 2;
          }
          await rec.syncCredentials();
        }
        for (const [i, id] of ids.entries()) {
          const slug = getProjectById(db, id)?.slug ?? String(id);
          try {
            await rec.reconcile(id);
            process.stderr.write(`\r[${i + 1}/${ids.length}] ${slug} ok          `);
          } catch (e) {
            failed++;
            console.error(`\n${slug}: ${(e as Error).message}`);
          }
        }
        await rec.drainCommitSpool();
        console.error(`\nreconciled ${ids.length} projects, ${failed} failed, in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
        return failed ? 1 : 0;
      } finally {
        rec.close();
        db.close();
      }
    }
    case 'apache': {
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
    case 'backup':
      return backupCommand(cfg, rest);
    case 'api': {
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

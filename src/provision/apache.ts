import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import https from 'node:https';
import type { Config, Layout } from '../config.js';
import { run } from '../sys/process.js';
import { log } from '../sys/log.js';
import { pidAlive } from '../sys/liveness.js';
import { installTracLib } from './trac.js';
import { serviceOwners } from './owner.js';
import { apachePaths, publishApacheConfig, publishHealthPage, renderApacheConfig } from '../files/apache/config.js';
import { publishTracWsgi, renderTracWsgi } from '../files/apache/wsgi.js';
import { checkTls } from '../files/apache/tls.js';

/**
 * The Apache process: start (or graceful restart when it is already running), stop, health. Its
 * configuration, trac.wsgi and health page are rendered and published by src/files/apache/.
 */
export class Apache {
  private readonly p;
  constructor(
    private readonly cfg: Config,
    private readonly l: Layout,
  ) {
    this.p = apachePaths(l);
  }

  get errorLog(): string {
    return this.p.errorLog;
  }

  /** Publishes trac.wsgi, the health page and the configuration (only if it passes `apache2 -t`). */
  async writeConfig(): Promise<void> {
    // A certificate Apache could not use stops start-up here, with its cause, before anything changes.
    if (this.cfg.tls) checkTls(this.cfg.tls);
    for (const d of ['run', 'logs', 'htdocs']) fs.mkdirSync(path.join(this.l.apacheDir, d), { recursive: true });
    const runAsUser = process.getuid?.() === 0;
    // trac.wsgi imports Keelson's guard from the data directory before Trac opens anything.
    await installTracLib(this.l, await serviceOwners(this.cfg));
    await publishTracWsgi(this.p.wsgi, renderTracWsgi(this.l, this.cfg.trac), this.cfg.python);
    await publishHealthPage(this.p.health);
    await publishApacheConfig(this.p.conf, renderApacheConfig(this.cfg, this.l, { runAsUser }));
  }

  mainPid(): number | undefined {
    try {
      const pid = Number(fs.readFileSync(this.p.pid, 'utf8').trim());
      // A pid owned by another user (EPERM) is not our Apache: its pid file is stale.
      return pid && pidAlive(pid, { signalable: true }) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  async start(): Promise<void> {
    await this.writeConfig();
    if (this.mainPid()) {
      // Already running (e.g. Keelson restarted): pick up a changed config without dropping requests.
      await run('apache2', ['-f', this.p.conf, '-k', 'graceful']);
    } else {
      fs.rmSync(this.p.pid, { force: true });
      // Right after a stop, the old server's processes (mod_wsgi daemons finishing their requests)
      // can hold the port for a few seconds: a start that cannot bind it is tried again.
      for (let tries = 0; ; tries++) {
        try {
          await run('apache2', ['-f', this.p.conf, '-k', 'start']);
          break;
        } catch (e) {
          if (!/Address already in use/.test(String(e))) throw e;
          if (tries >= 50)
            throw new Error(
              `Apache cannot listen on ${this.cfg.apacheHost}:${this.cfg.apachePort} (KEELSON_APACHE_PORT): another program holds the port`,
            );
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    }
    const deadline = Date.now() + 10_000;
    while (!(await this.healthy())) {
      if (Date.now() > deadline) {
        throw new Error(`Apache did not answer on ${this.cfg.apacheHost}:${this.cfg.apachePort}; see ${this.p.errorLog}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    log.info('apache running', {
      pid: this.mainPid(),
      url: `${this.cfg.tls ? 'https' : 'http'}://${this.cfg.apacheHost}:${this.cfg.apachePort}`,
    });
  }

  async stop(): Promise<void> {
    const pid = this.mainPid();
    if (!pid) return;
    await run('apache2', ['-f', this.p.conf, '-k', 'stop']).catch(() => process.kill(pid, 'SIGTERM'));
    const deadline = Date.now() + 10_000;
    while (this.mainPid() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  }

  healthy(timeoutMs = 2000): Promise<boolean> {
    return new Promise((resolve) => {
      const get = this.cfg.tls ? https.get : http.get;
      // Over TLS the health check asks its own server on loopback: liveness, not the certificate (checked at start).
      const o = {
        host: this.cfg.apacheHost,
        port: this.cfg.apachePort,
        path: '/health.txt',
        timeout: timeoutMs,
        rejectUnauthorized: false,
      };
      const req = get(o, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.on('error', () => resolve(false));
      req.on('timeout', () => {
        req.destroy();
        resolve(false);
      });
    });
  }
}

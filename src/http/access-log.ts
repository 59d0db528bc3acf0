/**
 * The API's and the web UI's access log: one line per request when its answer is sent, with the
 * method, the path (never the query string, which may carry a `next=` or an invite code), the
 * status, the bytes sent, the time taken, the client's address and who it was. Headers and bodies
 * never reach it, so no password, token, invite code or session cookie does either.
 */
import type { RequestHandler } from 'express';
import { log } from '../sys/log.js';
import type { Authed } from './auth.js';

export function accessLog(): RequestHandler {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      log.info('request', {
        method: req.method,
        path: req.originalUrl.split('?')[0]!.slice(0, 300),
        status: res.statusCode,
        bytes: Number(res.getHeader('content-length') ?? 0),
        ms: Math.round(Number(process.hrtime.bigint() - started) / 1e4) / 100,
        address: req.ip,
        actor: (req as Authed).actor?.label,
      });
    });
    next();
  };
}

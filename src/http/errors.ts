import type { ErrorRequestHandler, RequestHandler } from 'express';
import { ZodError } from 'zod';
import { DomainError } from '../errors.js';
import { log } from '../sys/log.js';

/** Names every failing field: `slug: 3-40 characters...; owner: ...`. */
export function describeZod(e: ZodError): string {
  return e.issues.map((i) => `${i.path.length ? i.path.join('.') : 'body'}: ${i.message}`).join('; ');
}

export const notFound: RequestHandler = (req, res) => {
  res.status(404).json({ error: { code: 'not_found', message: `no route ${req.method} ${req.path}` } });
};

/** The one error middleware: domain errors and bad input get their real status, the rest 500. */
export const errorHandler: ErrorRequestHandler = (err, req, res, next) => {
  void next;
  if (res.headersSent) return;
  if (err instanceof ZodError) {
    res.status(400).json({ error: { code: 'invalid_input', message: describeZod(err) } });
    return;
  }
  if (err instanceof DomainError) {
    // A throttled caller is told when to come back (ThrottledError carries it, in seconds).
    const retryAfter = (err as { retryAfter?: unknown }).retryAfter;
    if (typeof retryAfter === 'number') res.set('retry-after', String(Math.ceil(retryAfter)));
    res.status(err.status).json({ error: { code: err.code, message: err.message } });
    return;
  }
  const status = (err as { status?: number; type?: string }).status;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    // body-parser: malformed JSON, too large, wrong charset.
    res.status(status).json({ error: { code: 'invalid_input', message: `body: ${(err as Error).message}` } });
    return;
  }
  log.error('request failed', { method: req.method, path: req.path, error: String(err?.stack ?? err) });
  res.status(500).json({ error: { code: 'internal', message: 'internal error; see the server log' } });
};

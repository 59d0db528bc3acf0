import pino from 'pino';

/**
 * One JSON line per event on stderr (pino), with secrets removed by key wherever they appear in
 * the fields, one level deep: passwords, tokens, invite codes, cookies, authorization headers.
 * `KEELSON_LOG=silent` mutes it; `KEELSON_DEBUG=1` adds debug lines.
 */
const SECRET_KEYS = ['password', 'token', 'accessToken', 'code', 'csrfToken', 'authorization', 'cookie', 'secret', 'hash'];
export const REDACTED = '[redacted]';

const logger = pino(
  {
    level: 'debug',
    base: undefined,
    messageKey: 'msg',
    timestamp: () => `,"t":"${new Date().toISOString()}"`,
    formatters: { level: (label) => ({ level: label }) },
    redact: { paths: [...SECRET_KEYS, ...SECRET_KEYS.map((k) => `*.${k}`)], censor: REDACTED },
  },
  // Synchronous: a CLI that exits right after logging loses nothing, and lines never interleave.
  pino.destination({ dest: 2, sync: true }),
);

type Fields = Record<string, unknown>;
// The settings are read at each call, not at import: a test or the CLI may set them later.
const on = (level: 'debug' | 'other') => process.env.KEELSON_LOG !== 'silent' && (level !== 'debug' || !!process.env.KEELSON_DEBUG);
export const log = {
  debug: (m: string, f?: Fields) => void (on('debug') && logger.debug(f ?? {}, m)),
  info: (m: string, f?: Fields) => void (on('other') && logger.info(f ?? {}, m)),
  warn: (m: string, f?: Fields) => void (on('other') && logger.warn(f ?? {}, m)),
  error: (m: string, f?: Fields) => void (on('other') && logger.error(f ?? {}, m)),
};

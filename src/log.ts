/** One JSON line per event on stderr. Never pass a password or a token here. */
function emit(level: string, msg: string, fields?: Record<string, unknown>): void {
  if (process.env.KEELSON_LOG === 'silent') return;
  if (level === 'debug' && !process.env.KEELSON_DEBUG) return;
  process.stderr.write(JSON.stringify({ t: new Date().toISOString(), level, msg, ...fields }) + '\n');
}
export const log = {
  debug: (m: string, f?: Record<string, unknown>) => emit('debug', m, f),
  info: (m: string, f?: Record<string, unknown>) => emit('info', m, f),
  warn: (m: string, f?: Record<string, unknown>) => emit('warn', m, f),
  error: (m: string, f?: Record<string, unknown>) => emit('error', m, f),
};

import { log } from '../sys/log.js';

/**
 * Refusals and failures (of backups, and an Apache that does not answer) are alerts: one error log line always, and a JSON POST to
 * KEELSON_ALERT_WEBHOOK when it is set. A webhook that is down never fails the backup.
 */
export async function alert(webhook: string | undefined, event: string, fields: Record<string, unknown>): Promise<void> {
  log.error(`alert: ${event}`, { alert: event, ...fields });
  if (!webhook) return;
  try {
    const res = await fetch(webhook, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ source: 'keelson', event, at: new Date().toISOString(), ...fields }),
      signal: AbortSignal.timeout(5000),
    });
    if (!res.ok) log.warn('alert webhook answered an error', { status: res.status });
  } catch (e) {
    log.warn('alert webhook unreachable', { error: String(e) });
  }
}

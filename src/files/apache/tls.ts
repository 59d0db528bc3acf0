/**
 * Apache's certificate and key (KEELSON_TLS_CERT, KEELSON_TLS_KEY), checked before Apache is
 * configured or started: a missing or unreadable file, a certificate that is not one, a key that
 * does not match it, or one that has expired stops start-up with one line naming the cause,
 * instead of an Apache that fails half-way or serves a certificate no client accepts.
 */
import fs from 'node:fs';
import crypto from 'node:crypto';
import type { Config } from '../../config.js';

export function checkTls(tls: NonNullable<Config['tls']>, now = new Date()): { subject: string; validTo: string } {
  const read = (name: string, file: string): Buffer => {
    try {
      return fs.readFileSync(file);
    } catch (e) {
      throw new Error(`${name} ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  };
  let cert: crypto.X509Certificate;
  try {
    cert = new crypto.X509Certificate(read('KEELSON_TLS_CERT', tls.cert));
  } catch (e) {
    if (String((e as Error).message).startsWith('KEELSON_TLS_CERT')) throw e;
    throw new Error(`KEELSON_TLS_CERT ${tls.cert}: not a PEM certificate`);
  }
  let key: crypto.KeyObject;
  try {
    key = crypto.createPrivateKey(read('KEELSON_TLS_KEY', tls.key));
  } catch (e) {
    if (String((e as Error).message).startsWith('KEELSON_TLS_KEY')) throw e;
    throw new Error(`KEELSON_TLS_KEY ${tls.key}: not an unencrypted PEM private key (Apache could not start unattended with a passphrase)`);
  }
  if (!cert.checkPrivateKey(key))
    throw new Error(`KEELSON_TLS_KEY ${tls.key} does not match the certificate in KEELSON_TLS_CERT ${tls.cert}`);
  if (new Date(cert.validTo) <= now) throw new Error(`KEELSON_TLS_CERT ${tls.cert} expired on ${cert.validTo}`);
  return { subject: cert.subject, validTo: cert.validTo };
}

import crypto from 'node:crypto';

/** The sha256 of a text (as UTF-8) or of bytes, in lowercase hex. */
export function sha256(s: string | Buffer): string {
  return crypto.createHash('sha256').update(s).digest('hex');
}

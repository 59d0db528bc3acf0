/**
 * The access tokens Subversion and Trac take as passwords, and the form the store keeps them in:
 * {SHA}base64(sha1(token)), what mod_authn_dbd compares with (see src/files/credentials/). With
 * 192 random bits a fast hash resists offline guessing as well as a slow one.
 */
import crypto from 'node:crypto';

export function newAccessToken(): string {
  return 'svn_' + crypto.randomBytes(24).toString('base64url');
}

export function apacheHash(token: string): string {
  return '{SHA}' + crypto.createHash('sha1').update(token).digest('base64');
}

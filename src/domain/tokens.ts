/**
 * Token formats: the access token Subversion and Trac take as a password (192 random bits, kept
 * as {SHA}base64(sha1), what mod_authn_dbd compares with; with that many random bits a fast hash
 * resists offline guessing as well as a slow one) and the admin API's bearer tokens (256 bits,
 * kept as sha256), with the rule for an API token's name.
 */
import crypto from 'node:crypto';
import { sha256 } from '../sys/hash.js';
import { InputError } from '../errors.js';

export function newAccessToken(): string {
  return 'svn_' + crypto.randomBytes(24).toString('base64url');
}

export function apacheHash(token: string): string {
  return '{SHA}' + crypto.createHash('sha1').update(token).digest('base64');
}

export const newApiToken = (): string => 'kt_' + crypto.randomBytes(32).toString('base64url');

export const hashApiToken = (token: string): string => sha256(token);

export function assertApiTokenName(name: string): void {
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw new InputError('name: 1-64 letters, digits, "_", "." or "-"');
}

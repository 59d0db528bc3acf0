/** Making an account: the one place a user row and its access token are written (the operator's form, the API, sign-up). */
import type { Unit } from './unit.js';
import * as users from '../store/users.js';
import { putAccessToken } from '../store/tokens.js';
import { JOB_CREDENTIALS } from '../store/jobs.js';
import { ConflictError } from '../errors.js';
import { assertUser } from '../names.js';
import { apacheHash, newAccessToken } from './tokens.js';

/**
 * Inside a unit: records a user and their SVN/Trac access token, and queues the credentials
 * sync; returns the token, shown once. `passwordHash` is the web password's stored form, computed
 * before the unit opened (src/domain/passwords.ts: a transaction never waits on a hash).
 */
export function addUser(
  u: Unit,
  b: { name: string; email: string; passwordHash: string; isAdmin?: boolean },
): { user: users.UserRow; accessToken: string } {
  assertUser(b.name);
  if (users.getUser(u.db, b.name)) throw new ConflictError(`user ${b.name} already exists`);
  const token = newAccessToken();
  const id = users.insertUser(u.db, b);
  putAccessToken(u.db, id, apacheHash(token));
  u.audit('user.create', b.name);
  u.enqueue(JOB_CREDENTIALS, null);
  return { user: users.getUserById(u.db, id)!, accessToken: token };
}

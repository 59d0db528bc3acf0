/**
 * Password hashes: scrypt (N=16384, r=8, p=1, 32-byte key, 16-byte salt), stored as
 * `scrypt$N$r$p$salt$key` (base64). Computed by crypto.scrypt on libuv's thread pool, never on the
 * event loop: one hash is about 50 ms of CPU, and scryptSync on the thread that serves every
 * request made one user's sign-in flood stall every other tenant (issue 17: 3 ms -> 2.8 s). How
 * many run at once is the caller's business (src/domain/passwords.ts bounds it).
 */
import crypto from 'node:crypto';

const PARAMS = { N: 16384, r: 8, p: 1 } as const;
// scrypt needs 128 * N * r bytes (16 MiB here); node's default maxmem is 32 MiB.
const MAXMEM = 64 * 1024 * 1024;

function scrypt(password: string, salt: Buffer, keylen: number, o: crypto.ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    crypto.scrypt(password, salt, keylen, { ...o, maxmem: MAXMEM }, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

export async function hashPassword(password: string): Promise<string> {
  const salt = crypto.randomBytes(16);
  const key = await scrypt(password, salt, 32, PARAMS);
  return `scrypt$${PARAMS.N}$${PARAMS.r}$${PARAMS.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** True when `password` matches `stored` (compared in constant time); false for a malformed or foreign hash. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [alg, n, r, p, salt, key] = stored.split('$');
  if (alg !== 'scrypt' || !salt || !key) return false;
  const N = Number(n);
  const o = { N, r: Number(r), p: Number(p) };
  // Only the parameters Keelson writes (or cheaper ones): a stored hash never picks the cost.
  if (!Number.isInteger(N) || N < 2 || N > PARAMS.N || o.r !== PARAMS.r || o.p !== PARAMS.p) return false;
  const want = Buffer.from(key, 'base64');
  if (want.length < 16) return false;
  const got = await scrypt(password, Buffer.from(salt, 'base64'), want.length, o);
  return crypto.timingSafeEqual(want, got);
}

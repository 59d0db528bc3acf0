/**
 * The sign-in attacker in a process of its own: `node signin-flood-child.js '<json>'` with the
 * options of signinFlood (signin-flood.ts); signs in until stdin closes or maxMs passes, then
 * prints its answers by status as JSON.
 */
import { signinFlood, type SigninFloodOptions } from './signin-flood.js';

const o = JSON.parse(process.argv[2] ?? '{}') as SigninFloodOptions;
const f = signinFlood(o);
let done = false;
const finish = async () => {
  if (done) return;
  done = true;
  const counts = await f.stop();
  process.stdout.write(JSON.stringify(Object.fromEntries(counts)) + '\n');
  process.exit(0);
};
process.stdin.on('end', () => void finish());
process.stdin.on('close', () => void finish());
process.stdin.resume();
setTimeout(() => void finish(), o.maxMs ?? 120_000).unref();

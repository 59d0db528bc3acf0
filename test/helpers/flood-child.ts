/**
 * An attacker in a process of its own (so its loops never delay the victim's measurements in the
 * test's event loop): `node flood-child.js '<json>'` with {urls, concurrency, creds?, maxMs}; sends
 * GETs until stdin closes or maxMs passes, then prints its answers by status as JSON.
 */
import { flood } from './flood.js';

const o = JSON.parse(process.argv[2] ?? '{}') as {
  urls: string[];
  concurrency: number;
  creds?: { user: string; password: string };
  maxMs: number;
};
const f = flood(o.urls, o.concurrency, o.creds);
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
setTimeout(() => void finish(), o.maxMs).unref();

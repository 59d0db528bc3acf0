import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HelperPool } from '../../src/sys/json-lines.js';

process.env.KEELSON_LOG = 'silent';

/** A helper in the protocol of trac_helper.py: one JSON line in, one out, one call at a time. */
const SCRIPT = `
import json, os, sys, time
for line in sys.stdin:
    req = json.loads(line)
    op = req['op']
    if op == 'exit':
        sys.exit(3)
    if op == 'sleep':
        time.sleep(req['seconds'])
    if op == 'fail':
        out = {'id': req['id'], 'ok': False, 'error': 'ValueError: boom'}
    else:
        out = {'id': req['id'], 'ok': True, 'result': {'op': op, 'pid': os.getpid(), 'value': req.get('value')}}
    sys.stdout.write(json.dumps(out) + '\\n')
    sys.stdout.flush()
`;

interface Res {
  op: string;
  pid: number;
  value?: unknown;
}

/** Whether the promise has settled by now (without waiting for it). */
async function settled(p: Promise<unknown>): Promise<boolean> {
  const marker = Symbol();
  const r = await Promise.race([
    p.then(
      () => true,
      () => true,
    ),
    new Promise((res) => setImmediate(() => res(marker))),
  ]);
  return r !== marker;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const waitFor = async (fn: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('HelperPool: each process runs one call; a call fails alone', () => {
  let dir = '';
  let script = '';
  const pools: HelperPool[] = [];
  const pool = (size: number) => {
    const p = new HelperPool('python3', script, 'test', { size });
    pools.push(p);
    return p;
  };

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keelson-pool-'));
    script = path.join(dir, 'helper.py');
    fs.writeFileSync(script, SCRIPT);
  });
  after(() => {
    for (const p of pools) p.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a call past its timeout rejects alone and kills only its process; a concurrent fast call still resolves', async () => {
    const p = pool(2);
    const first = await p.call<Res>('echo', { value: 0 });
    // The slow call's timeout leaves room for starting a second Python for the fast one on a busy machine.
    const slow = p.call('sleep', { seconds: 20 }, 3000);
    const fast = await p.call<Res>('echo', { value: 1 }, 5000);
    assert.equal(fast.value, 1);
    assert.equal(await settled(slow), false, 'the fast call waited for the slow one');
    const t0 = Date.now();
    await assert.rejects(slow, /sleep did not answer within 3000 ms/);
    assert.ok(Date.now() - t0 < 4000);
    // The slow call took the idle process; the fast one got a second process, which stays.
    assert.notEqual(fast.pid, first.pid);
    assert.deepEqual(p.stats(), { processes: 1, busy: 0, queued: 0 });
    await waitFor(() => !alive(first.pid));
    assert.equal((await p.call<Res>('echo', { value: 2 })).pid, fast.pid, 'the surviving process is reused');
  });

  it('the timed-out process is SIGKILLed; the other one keeps serving with the same pid', async () => {
    const p = pool(2);
    const [a, b] = await Promise.all([p.call<Res>('sleep', { seconds: 0.3 }), p.call<Res>('sleep', { seconds: 0.3 })]);
    assert.notEqual(a.pid, b.pid, 'two calls at once ran on two processes');
    const slow = p.call('sleep', { seconds: 20 }, 500);
    const fast = await p.call<Res>('echo', {}, 5000);
    await assert.rejects(slow, /did not answer/);
    const dead = fast.pid === a.pid ? b.pid : a.pid;
    await waitFor(() => !alive(dead));
    assert.equal((await p.call<Res>('echo')).pid, fast.pid);
  });

  it('calls beyond the free processes wait in a FIFO queue; a queued call still resolves after a timeout frees a process', async () => {
    const p = pool(1);
    const order: number[] = [];
    const slow = p.call('sleep', { seconds: 20 }, 600);
    const queued = [1, 2, 3].map((value) =>
      p.call<Res>('echo', { value }, 5000).then((r) => {
        order.push(r.value as number);
        return r;
      }),
    );
    assert.deepEqual(p.stats(), { processes: 1, busy: 1, queued: 3 });
    await assert.rejects(slow, /did not answer within 600 ms/);
    const got = await Promise.all(queued);
    assert.deepEqual(order, [1, 2, 3]);
    assert.equal(new Set(got.map((r) => r.pid)).size, 1, 'one new process served the queue');
  });

  it("a queued call's timeout counts from when it is sent; its wait in the queue is bounded by the same timeout", async () => {
    const p = pool(1);
    await p.call('echo'); // started: Python's start-up is not part of what is timed
    // 1 s in the queue, then 1 s running: 2 s in all, over its 1.8 s timeout, yet each part is within it.
    const a = p.call<Res>('sleep', { seconds: 1 }, 5000);
    const t0 = Date.now();
    const b = p.call<Res>('sleep', { seconds: 1, value: 'b' }, 1800);
    assert.equal((await b).value, 'b');
    assert.ok(Date.now() - t0 >= 1900, `${Date.now() - t0} ms`);
    await a;
    // A call that cannot get a process within its timeout fails without killing the busy one.
    const busy = p.call<Res>('sleep', { seconds: 1.2 }, 5000);
    await assert.rejects(p.call('echo', {}, 300), /waited 300 ms for a free helper/);
    const r = await busy;
    assert.equal(r.op, 'sleep');
    assert.deepEqual(p.stats(), { processes: 1, busy: 0, queued: 0 });
  });

  it('a process that exits fails only its own call; an error answer fails only its call and keeps the process', async () => {
    const p = pool(2);
    const other = p.call<Res>('sleep', { seconds: 0.5, value: 'other' }, 5000);
    await assert.rejects(p.call('exit', {}, 5000), /test helper exited \(3\)/);
    assert.equal((await other).value, 'other');
    const q = pool(1);
    const before1 = await q.call<Res>('echo');
    await assert.rejects(q.call('fail'), /test: ValueError: boom/);
    assert.equal((await q.call<Res>('echo')).pid, before1.pid);
    // A queued call behind one whose process exits gets a new process.
    const dying = q.call('exit', {}, 5000);
    const next = q.call<Res>('echo', { value: 'next' }, 5000);
    await assert.rejects(dying, /exited/);
    const n = await next;
    assert.equal(n.value, 'next');
    assert.notEqual(n.pid, before1.pid);
  });

  it('close() rejects what is running and what is queued, and ends the processes; a later call starts anew', async () => {
    const p = pool(1);
    const running = p.call('sleep', { seconds: 20 }, 30_000);
    const queued = p.call('echo', {}, 30_000);
    const pid = (await Promise.race([new Promise<number>((res) => setTimeout(() => res(0), 300)), running.then(() => -1)])) as number;
    assert.equal(pid, 0);
    p.close();
    await assert.rejects(running, /test helper closed/);
    await assert.rejects(queued, /test helper closed/);
    assert.deepEqual(p.stats(), { processes: 0, busy: 0, queued: 0 });
    assert.equal((await p.call<Res>('echo', { value: 'again' })).value, 'again');
  });

  it('a helper that cannot start fails the call, not the pool', async () => {
    const p = new HelperPool('/nonexistent/python3', script, 'test', { size: 1 });
    pools.push(p);
    await assert.rejects(p.call('echo', {}, 5000), /could not start|exited/);
    await assert.rejects(p.call('echo', {}, 5000), /could not start|exited/);
    assert.deepEqual(p.stats(), { processes: 0, busy: 0, queued: 0 });
  });
});

import os from 'node:os';
import { Worker } from 'node:worker_threads';

/**
 * sha256 of files on worker threads: hashing is the one CPU-bound part of a backup (the copies
 * run in the kernel), and one core hashes about 1-1.4 GB/s here, slower than the disk copies.
 * Small files are hashed inline by the caller; this pool takes the big ones.
 */
const WORKER = `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const crypto = require('node:crypto');
const buf = Buffer.allocUnsafe(1 << 20);
parentPort.on('message', ({ id, file }) => {
  let fd;
  try {
    const h = crypto.createHash('sha256');
    fd = fs.openSync(file, 'r');
    let n;
    while ((n = fs.readSync(fd, buf, 0, buf.length, null)) > 0) h.update(buf.subarray(0, n));
    parentPort.postMessage({ id, hex: h.digest('hex') });
  } catch (e) {
    parentPort.postMessage({ id, error: String(e && e.message || e) });
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
});
`;

interface Slot {
  w: Worker;
  busy: number;
}

let slots: Slot[] | undefined;
let nextId = 1;
const waiting = new Map<number, { resolve: (h: string) => void; reject: (e: Error) => void; slot: Slot }>();

function pool(): Slot[] {
  if (slots) return slots;
  const n = Math.max(1, Math.min(4, os.availableParallelism()));
  slots = Array.from({ length: n }, () => {
    const w = new Worker(WORKER, { eval: true });
    const slot: Slot = { w, busy: 0 };
    w.on('message', (m: { id: number; hex?: string; error?: string }) => {
      const p = waiting.get(m.id);
      if (!p) return;
      waiting.delete(m.id);
      if (--p.slot.busy === 0) p.slot.w.unref();
      if (m.hex) p.resolve(m.hex);
      else p.reject(new Error(m.error ?? 'hash failed'));
    });
    w.on('error', (e) => {
      for (const [id, p] of waiting) {
        if (p.slot !== slot) continue;
        waiting.delete(id);
        p.reject(e);
      }
      slots = slots?.filter((s) => s !== slot);
      if (slots?.length === 0) slots = undefined;
    });
    // After the listeners: attaching a 'message' listener refs the worker again. Idle hashers must
    // never keep a CLI run alive.
    w.unref();
    return slot;
  });
  return slots;
}

export function sha256OnWorker(file: string): Promise<string> {
  const all = pool();
  const slot = all.reduce((a, b) => (b.busy < a.busy ? b : a));
  // Referenced while it works (a pending hash keeps the process alive), unreferenced when idle.
  if (slot.busy++ === 0) slot.w.ref();
  const id = nextId++;
  return new Promise((resolve, reject) => {
    waiting.set(id, { resolve, reject, slot });
    slot.w.postMessage({ id, file });
  });
}

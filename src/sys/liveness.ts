/**
 * True while a process with this pid exists on this host (EPERM: it exists, owned by another
 * user). With `signalable`, only while this process may also signal it: one owned by another
 * user then does not count.
 */
export function pidAlive(pid: number, opts: { signalable?: boolean } = {}): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return !opts.signalable && (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

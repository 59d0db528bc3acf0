import net from 'node:net';

/**
 * Stops with one line when a port cannot be listened on (another program holds it; a port below
 * 1024 without the right to bind it), before anything is started: Node's own EADDRINUSE would
 * come only after Apache and the worker were up.
 */
export function checkPortFree(host: string, port: number, setting: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', (e: NodeJS.ErrnoException) => {
      const why =
        e.code === 'EADDRINUSE'
          ? 'another program holds the port'
          : e.code === 'EACCES'
            ? 'no right to bind it (a port below 1024 needs root or CAP_NET_BIND_SERVICE)'
            : String(e.message);
      reject(new Error(`cannot listen on ${host}:${port} (${setting}): ${why}`));
    });
    s.listen(port, host, () => s.close(() => resolve()));
  });
}

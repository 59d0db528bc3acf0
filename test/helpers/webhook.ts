import http from 'node:http';

/** An alert webhook on loopback that keeps every JSON body it is sent (KEELSON_ALERT_WEBHOOK in tests). */
export async function webhook(): Promise<{ url: string; alerts: { event: string; [k: string]: unknown }[]; close: () => void }> {
  const alerts: { event: string }[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      alerts.push(JSON.parse(body));
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/alert`, alerts, close: () => server.close() };
}

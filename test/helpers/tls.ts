/**
 * TLS for tests: a certificate authority the test makes (openssl), a server certificate it signs
 * for `localhost` and 127.0.0.1, and a real TLS proxy in front of Keelson's Apache: another Debian
 * Apache (mod_ssl, mod_proxy_http) configured as an operator would, with ProxyPass and
 * ProxyPassReverse and nothing about WebDAV.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';

export interface TestCa {
  dir: string;
  caCert: string;
  cert: string;
  key: string;
}

/** A CA and one server certificate it signs for `names` (default localhost) and 127.0.0.1, with an RSA or an ECDSA key. */
export function makeCa(dir: string, names: string[] = ['localhost'], o: { ec?: boolean } = {}): TestCa {
  fs.mkdirSync(dir, { recursive: true });
  const f = (n: string) => path.join(dir, n);
  const ssl = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  ssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=Keelson test CA',
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.pem'),
  ]);
  // The server's key: RSA 2048, or ECDSA P-256 (certbot's default since its 2.0).
  const key = o.ec ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'] : ['-newkey', 'rsa:2048'];
  ssl(['req', ...key, '-nodes', '-subj', `/CN=${names[0]}`, '-keyout', f('server.key'), '-out', f('server.csr')]);
  fs.writeFileSync(
    f('ext.cnf'),
    `subjectAltName = ${names.map((n) => `DNS:${n}`).join(', ')}, IP:127.0.0.1\nbasicConstraints = CA:FALSE\n`,
  );
  ssl([
    'x509',
    '-req',
    '-in',
    f('server.csr'),
    '-CA',
    f('ca.pem'),
    '-CAkey',
    f('ca.key'),
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    f('ext.cnf'),
    '-out',
    f('server.pem'),
  ]);
  return { dir, caCert: f('ca.pem'), cert: f('server.pem'), key: f('server.key') };
}

const MODULES = ['mpm_event', 'authz_core', 'ssl', 'socache_shmcb', 'proxy', 'proxy_http', 'headers', 'setenvif'];

/** An ordinary TLS-terminating reverse proxy on 127.0.0.1:`port` in front of `backend` (http://host:port). */
export function startTlsProxy(dir: string, ca: TestCa, port: number, backend: string): { stop(): void; errorLog: string } {
  fs.mkdirSync(path.join(dir, 'logs'), { recursive: true });
  const conf = path.join(dir, 'proxy.conf');
  const errorLog = path.join(dir, 'logs', 'error.log');
  fs.writeFileSync(
    conf,
    `ServerRoot "${dir}"
ServerName localhost
Listen 127.0.0.1:${port}
PidFile "${path.join(dir, 'proxy.pid')}"
DefaultRuntimeDir "${dir}"
ErrorLog "${errorLog}"
LogLevel warn
${MODULES.map((m) => `LoadModule ${m}_module /usr/lib/apache2/modules/mod_${m}.so`).join('\n')}
User www-data
Group www-data
SSLSessionCache "shmcb:${path.join(dir, 'ssl_scache')}(512000)"
<VirtualHost 127.0.0.1:${port}>
    ServerName localhost
    SSLEngine on
    SSLProtocol -all +TLSv1.2 +TLSv1.3
    SSLCertificateFile "${ca.cert}"
    SSLCertificateKeyFile "${ca.key}"
    ProxyPreserveHost On
    ProxyPass / ${backend}/
    ProxyPassReverse / ${backend}/
    RequestHeader set X-Forwarded-Proto https
</VirtualHost>
`,
  );
  execFileSync('apache2', ['-f', conf, '-k', 'start'], { stdio: ['ignore', 'ignore', 'pipe'] });
  return {
    errorLog,
    stop() {
      try {
        execFileSync('apache2', ['-f', conf, '-k', 'stop'], { stdio: 'ignore' });
      } catch {
        // already gone
      }
    },
  };
}

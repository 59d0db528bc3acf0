import path from 'node:path';
import type { Config, Layout } from '../../config.js';
import { writeFileAtomic } from '../../sys/fs.js';
import { run } from '../../sys/process.js';

const MODULES = [
  'mpm_event',
  'authn_core',
  'authn_dbd',
  'dbd',
  'authz_core',
  'authz_user',
  'auth_basic',
  'access_compat',
  'dav',
  'dav_svn',
  'authz_svn',
  'wsgi',
  'alias',
  'mime',
  'env',
  'setenvif',
  'headers',
  'reqtimeout',
];

export function apachePaths(l: Layout) {
  return {
    conf: path.join(l.apacheDir, 'httpd.conf'),
    pid: path.join(l.apacheDir, 'run', 'httpd.pid'),
    errorLog: path.join(l.apacheDir, 'logs', 'error.log'),
    wsgi: path.join(l.apacheDir, 'trac.wsgi'),
    health: path.join(l.apacheDir, 'htdocs', 'health.txt'),
    accessLog: path.join(l.apacheDir, 'logs', 'access.log'),
  };
}

const q = (s: string) => `"${s.replace(/["\\]/g, '\\$&')}"`;

const AUTH = `    AuthType Basic
    AuthName "Keelson"
    AuthBasicProvider dbd
    AuthDBDUserPWQuery "SELECT hash FROM credentials WHERE username = %s"`;

/**
 * What a connection may hold. A client must send its request line and headers within 10 s (20 s
 * while it keeps sending at 500 bytes/s) and its body at 500 bytes/s (mod_reqtimeout), and no read
 * or write may wait longer than KEELSON_APACHE_TIMEOUT: a slow client cannot keep a worker. The
 * scoreboard has room for twice the worker processes, so a graceful restart while every worker is
 * busy starts new processes beside the old ones instead of wedging ("scoreboard is full"). Every
 * worker process starts at once: a burst of connections is read at once, not from the backlog
 * while processes are added one a second.
 */
export function renderConnections(cfg: Config): string {
  const perChild = 25;
  const children = Math.max(2, Math.ceil(cfg.apacheWorkers / perChild));
  return `Timeout ${Number(cfg.apacheTimeout)}
RequestReadTimeout handshake=10-20,MinRate=500 header=10-20,MinRate=500 body=20,MinRate=500
# One request body (one file of a commit, one Trac form) at most this large (KEELSON_MAX_REQUEST_BYTES).
LimitRequestBody ${Number(cfg.maxRequestBytes)}
KeepAlive On
KeepAliveTimeout 5
StartServers ${children}
ThreadsPerChild ${perChild}
MaxRequestWorkers ${children * perChild}
ServerLimit ${children * 2}`;
}

const reEscape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Behind a proxy (KEELSON_PUBLIC_URL names an origin other than Apache's own, e.g. TLS terminated
 * in front): a client's COPY and MOVE name their target in a Destination header with the public
 * URL, and mod_dav refuses one whose scheme or port differ from the connection's own ("502
 * Destination URI refers to different scheme or port", what broke `svn move` over HTTPS behind
 * proxies). Apache rewrites that origin (only the configured public one: any other Destination is
 * refused as before) to its own, and a Location it makes back to the public URL, so an ordinary
 * proxy configuration (ProxyPass and ProxyPassReverse, nothing about WebDAV) works. Trac's own
 * links and redirects follow its base_url (the shared trac.ini's use_base_url_for_redirect).
 */
export function renderPublicOrigin(cfg: Config): string {
  const internal = `${cfg.tls ? 'https' : 'http'}://${cfg.apacheHost}:${cfg.apachePort}`;
  const pub = new URL(cfg.publicUrl);
  const scheme = pub.protocol.slice(0, -1);
  const defaultPort = scheme === 'https' ? '443' : '80';
  const port = pub.port || defaultPort;
  const prefix = pub.pathname.replace(/\/+$/, '');
  if (`${scheme}://${pub.hostname}:${port}${prefix}` === internal) return '';
  const portRe = port === defaultPort ? `(:${port})?` : `:${port}`;
  const lines = [
    `# Behind a proxy: the public URL is ${cfg.publicUrl} (KEELSON_PUBLIC_URL).`,
    `RequestHeader edit Destination "(?i)^${scheme}://${reEscape(pub.hostname)}${portRe}${reEscape(prefix)}/" "${internal}/"`,
    `Header always edit Location "^${reEscape(internal)}/" "${cfg.publicUrl}/"`,
  ];
  // A redirect Apache builds from a preserved Host header names the public host over plain HTTP.
  if (scheme === 'https') lines.push(`Header always edit Location "(?i)^http://${reEscape(pub.hostname)}(:[0-9]+)?/" "${cfg.publicUrl}/"`);
  return lines.join('\n') + '\n';
}

/**
 * Apache terminating TLS itself (KEELSON_TLS_CERT, KEELSON_TLS_KEY): TLS 1.2 and 1.3 only, session
 * resumption through a shared cache, HSTS; with KEELSON_APACHE_HTTP_PORT a plain-HTTP listener that
 * only redirects to the public https URL (it serves nothing: every request is redirected before
 * authentication or any handler).
 */
export function renderTls(cfg: Config, l: Layout): string {
  if (!cfg.tls) return '';
  const redirect =
    cfg.apacheHttpPort === null
      ? ''
      : `Listen ${cfg.apacheHost}:${Number(cfg.apacheHttpPort)}
<VirtualHost ${cfg.apacheHost}:${Number(cfg.apacheHttpPort)}>
    ServerName ${cfg.apacheHost}
    SSLEngine off
    Redirect permanent / ${cfg.publicUrl}/
</VirtualHost>
`;
  return `SSLEngine on
SSLCertificateFile ${q(cfg.tls.cert)}
SSLCertificateKeyFile ${q(cfg.tls.key)}
SSLProtocol -all +TLSv1.2 +TLSv1.3
SSLSessionCache ${q(`shmcb:${path.join(l.apacheDir, 'run', 'ssl_scache')}(1024000)`)}
SSLSessionCacheTimeout 300
Header always set Strict-Transport-Security "max-age=31536000"
${redirect}`;
}

/** Express's names for address ranges in KEELSON_TRUST_PROXY, as Apache's mod_remoteip takes them. */
const PROXY_PRESETS: Record<string, string[]> = {
  loopback: ['127.0.0.0/8', '::1'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
};

/**
 * The proxies in front whose X-Forwarded-For Keelson's Apache believes (KEELSON_TRUST_PROXY as
 * addresses or Express's range names; config.ts allows only `A-Za-z0-9.:/, `): then its access
 * log, like Keelson's own, names the client instead of the proxy. A hop count says nothing about
 * addresses: none then.
 */
export function remoteIpProxies(cfg: Pick<Config, 'trustProxy'>): string[] | null {
  if (typeof cfg.trustProxy !== 'string') return null;
  const list = cfg.trustProxy
    .split(/[ ,]+/)
    .filter(Boolean)
    .flatMap((a) => PROXY_PRESETS[a] ?? [a]);
  return list.length ? list : null;
}

function renderRemoteIp(cfg: Config): string {
  const proxies = remoteIpProxies(cfg);
  if (!proxies) return '';
  return `# The proxy in front (KEELSON_TRUST_PROXY): the client is the address it forwards.
RemoteIPHeader X-Forwarded-For
RemoteIPInternalProxy ${proxies.join(' ')}
`;
}

/** The server itself: where it lives, its modules and user, the credentials database, the document root. */
function renderServer(cfg: Config, l: Layout, opts: { runAsUser: boolean }): string {
  const p = apachePaths(l);
  return `# Generated by Keelson. Do not edit: it is overwritten.
ServerRoot ${q(l.apacheDir)}
ServerName ${cfg.apacheHost}
Listen ${cfg.apacheHost}:${cfg.apachePort}
PidFile ${q(p.pid)}
DefaultRuntimeDir ${q(path.join(l.apacheDir, 'run'))}
ErrorLog ${q(p.errorLog)}
LogLevel warn
# One line per request: time, client, user (or -), method, path without its query, status, bytes
# sent, microseconds taken (behind a trusted proxy, then the connection's own peer: the client
# field is what that proxy forwarded). No header is logged, so no credential or cookie is either.
LogFormat "%{%Y-%m-%dT%H:%M:%S%z}t %a %u \\"%m %U %H\\" %>s %B %D${remoteIpProxies(cfg) ? ' %{c}a' : ''}" keelson
CustomLog ${q(p.accessLog)} keelson
${[...MODULES, ...(cfg.tls ? ['socache_shmcb', 'ssl'] : []), ...(remoteIpProxies(cfg) ? ['remoteip'] : [])].map((m) => `LoadModule ${m}_module /usr/lib/apache2/modules/mod_${m}.so`).join('\n')}
${renderRemoteIp(cfg)}${opts.runAsUser ? `User ${cfg.apacheUser}\nGroup ${cfg.apacheGroup}` : '# not started as root: runs as the current user'}
TypesConfig /etc/mime.types
${renderConnections(cfg)}

DBDriver sqlite3
DBDParams ${q(l.authDb)}
DBDMin 1
DBDKeep 4
DBDMax 16
DBDExptime 300

DocumentRoot ${q(path.join(l.apacheDir, 'htdocs'))}
<Directory />
    Require all denied
    AllowOverride None
</Directory>
<Directory ${q(path.join(l.apacheDir, 'htdocs'))}>
    Require all granted
</Directory>
${renderTls(cfg, l)}${renderPublicOrigin(cfg)}
`;
}

/** Subversion under /svn, each repository read through its own authz file. */
function renderSvn(l: Layout): string {
  return `<Location /svn>
    DAV svn
    SVNParentPath ${q(l.svnRoot)}
    SVNListParentPath Off
    AuthzSVNReposRelativeAccessFile authz
${AUTH}
    # Anonymous requests that the repository's authz allows pass; all others must authenticate.
    Satisfy Any
    Require valid-user
    # Repository content is the tenants': a committed .html or .svg must never run as a page on
    # this origin, where every project's Trac lives. A sandboxed document has an opaque origin and
    # no scripts; nosniff stops a browser from guessing a script or style out of other types.
    Header always set Content-Security-Policy "sandbox; default-src 'none'; style-src 'unsafe-inline'"
    Header always set X-Content-Type-Options nosniff
</Location>

`;
}

/** Trac's views whose cost grows with a project's history or a tenant's SQL: signed-in, they go to the heavy daemons. */
export const HEAVY_VIEWS = [
  'report',
  'query',
  'changeset',
  'browser',
  'file',
  'log',
  'timeline',
  'search',
  'export',
  'diff',
  'zip-attachment',
  'roadmap',
];

/** Trac's request body limit: twice its attachment size limit (the shared trac.ini's max_size). */
export const TRAC_BODY_BYTES = 20 * 1024 * 1024;

/** Trac under /trac/<slug>: mod_wsgi daemons shared by every environment, one group for signed-in users, one for anonymous visitors. */
function renderTrac(cfg: Config, l: Layout, opts: { runAsUser: boolean }): string {
  const p = apachePaths(l);
  const t = cfg.trac;
  const user = opts.runAsUser ? ` user=${cfg.tracUser} group=${cfg.tracGroup}` : '';
  // memory-limit is RLIMIT_DATA (the heap and private mappings): past it an allocation fails in
  // that process alone. request-timeout restarts a process whose requests run too long.
  const limits = `maximum-requests=5000 request-timeout=${Number(t.requestTimeoutSeconds)} memory-limit=${Number(t.processMemoryBytes)} home=${q(l.tracRoot)}${user}`;
  return `WSGISocketPrefix ${q(path.join(l.apacheDir, 'run', 'wsgi'))}
WSGIDaemonProcess keelson-trac processes=${Number(t.processes)} threads=${Number(t.threads)} display-name=keelson-trac ${limits}
# Anonymous visitors have daemons of their own (their threads run at a lower CPU priority, see
# trac_limits.py): however many they are, signed-in users keep the threads above.
WSGIDaemonProcess keelson-trac-anon processes=${Number(t.anonProcesses)} threads=${Number(t.anonThreads)} display-name=keelson-trac-anon ${limits}
# Signed-in users' expensive views have daemons of their own too (nice 10): a flood of them cannot
# take the threads or the CPU of everyone's ordinary pages.
WSGIDaemonProcess keelson-trac-heavy processes=${Number(t.heavyProcesses)} threads=${Number(t.heavyThreads)} display-name=keelson-trac-heavy ${limits}
# Import Trac when a daemon starts, not on the first request it serves (about 0.8 s).
WSGIImportScript ${q(p.wsgi)} process-group=keelson-trac application-group=%{GLOBAL}
WSGIImportScript ${q(p.wsgi)} process-group=keelson-trac-anon application-group=%{GLOBAL}
WSGIImportScript ${q(p.wsgi)} process-group=keelson-trac-heavy application-group=%{GLOBAL}
WSGIScriptAliasMatch ^/trac/([a-z][a-z0-9-]+[a-z0-9]) ${q(p.wsgi)}
<Directory ${q(l.apacheDir)}>
    <Files trac.wsgi>
        Require all granted
    </Files>
</Directory>
<Location /trac>
    # Keelson's own cookies (web UI session, browser id) are never Trac's business: a browser sends
    # them to every port of the host, so they are removed before a request reaches Trac.
    RequestHeader edit* Cookie "(^|;\\s*)(__Host-)?keelson_[a-z]+=[^;]*" ""
    RequestHeader edit Cookie "^;\\s*" ""
    Header always set X-Content-Type-Options nosniff
    # Trac takes attachments up to 10 MiB ([attachment] max_size); a form is never much more.
    LimitRequestBody ${TRAC_BODY_BYTES}
    # Requests with credentials (checked below: wrong ones never reach Trac) go to the signed-in
    # groups (expensive views to the heavy one), all others to the anonymous one. Every response that is not one of Trac's own HTML
    # pages gets a CSP sandbox in trac.wsgi, whatever its URL.
    SetEnvIf Request_URI "^" KEELSON_TRAC_GROUP=keelson-trac-anon
    SetEnvIf Authorization "." KEELSON_TRAC_GROUP=keelson-trac
    SetEnvIfExpr "-n req('Authorization') && %{REQUEST_URI} =~ m#^/trac/[^/]+/(${HEAVY_VIEWS.join('|')})(/|$)#" KEELSON_TRAC_GROUP=keelson-trac-heavy
    WSGIRestrictProcess keelson-trac keelson-trac-anon keelson-trac-heavy
    WSGIProcessGroup %{ENV:KEELSON_TRAC_GROUP}
    WSGIApplicationGroup %{GLOBAL}
${AUTH}
    # Credentials are optional in Trac: a request that carries them is authenticated (and
    # refused if they are wrong); one without them is anonymous and Trac's permissions decide.
    # Trac's /login always asks for them.
    <If "-n req('Authorization') || %{REQUEST_URI} =~ m#^/trac/[^/]+/login#">
        Require valid-user
    </If>
    <Else>
        Require all granted
    </Else>
</Location>
`;
}

/**
 * One configuration serves every project; adding a project or a member never reloads Apache.
 * SVN: SVNParentPath with each repository's own authz file. Trac: one mod_wsgi daemon, the
 * environment picked from the URL by trac.wsgi; Trac's project index (/trac/) is not served.
 * One realm for both, checked against the credentials database through mod_authn_dbd.
 */
export function renderApacheConfig(cfg: Config, l: Layout, opts: { runAsUser: boolean }): string {
  return renderServer(cfg, l, opts) + renderSvn(l) + renderTrac(cfg, l, opts);
}

/**
 * The one writer of Apache's configuration (httpd.conf): written beside the live file, checked by
 * Apache itself (`apache2 -t -f <temporary file>`), renamed into place. A configuration Apache
 * refuses is never published; the running server keeps the previous one. False when unchanged.
 */
export async function publishApacheConfig(file: string, text: string): Promise<boolean> {
  return writeFileAtomic(file, text, {
    validate: async (tmp) => {
      await run('apache2', ['-t', '-f', tmp]);
    },
  });
}

/** The page Keelson (and an operator's monitoring) asks to see that Apache serves: its one writer. */
export async function publishHealthPage(file: string): Promise<boolean> {
  return writeFileAtomic(file, 'ok\n');
}

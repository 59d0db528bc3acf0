#!/usr/bin/env bash
# Installs Keelson as a production service on Debian (bookworm or later), as root: the steps of the
# README's "Production" section, in order. Idempotent: run again with the same arguments it changes
# nothing and restarts nothing; interrupted at any step, run again it finishes.
#
#   scripts/production/install.sh --web-host hosting.example.org --code-host code.example.org \
#       [--web-cert FILE --web-key FILE] [--code-cert FILE --code-key FILE] [--data DIR] [--backups DIR]
#
# Certificates default to certbot's files (/etc/letsencrypt/live/HOST/fullchain.pem, privkey.pem).
# The app is this checkout, built (npm ci && npm run build); the unit runs it where it is.
set -euo pipefail

APP=$(cd "$(dirname "$0")/../.." && pwd)
HERE="$APP/scripts/production"
WEB_HOST='' CODE_HOST='' WEB_CERT='' WEB_KEY='' CODE_CERT='' CODE_KEY=''
DATA=/var/lib/keelson BACKUPS='' ETC=/etc/keelson API_USER=keelson
HTTP_PORT=8480 APACHE_PORT=8481

die() { echo "keelson install: $*" >&2; exit 1; }
say() { echo "keelson install: $*"; }
usage() { sed -n '5,6p' "$0" | sed 's/^#  *//' >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in -h | --help) ;; --*) [ $# -ge 2 ] || die "$1 needs a value" ;; esac
  case "$1" in
    --web-host) WEB_HOST=${2:-}; shift 2 ;;
    --code-host) CODE_HOST=${2:-}; shift 2 ;;
    --web-cert) WEB_CERT=${2:-}; shift 2 ;;
    --web-key) WEB_KEY=${2:-}; shift 2 ;;
    --code-cert) CODE_CERT=${2:-}; shift 2 ;;
    --code-key) CODE_KEY=${2:-}; shift 2 ;;
    --data) DATA=${2:-}; shift 2 ;;
    --backups) BACKUPS=${2:-}; shift 2 ;;
    -h | --help) usage ;;
    *) echo "keelson install: unknown argument $1" >&2; usage ;;
  esac
done

[ "$(id -u)" = 0 ] || die "run as root (it installs packages, a system service and an Apache site)"
[ -n "$WEB_HOST" ] && [ -n "$CODE_HOST" ] || usage
# Host names and paths become Apache and systemd configuration: nothing but plain names and paths.
host_re='^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$'
for h in "$WEB_HOST" "$CODE_HOST"; do
  [[ $h =~ $host_re ]] || die "not a host name: $h (lower-case letters, digits, '-' and at least one '.')"
done
[ "$WEB_HOST" != "$CODE_HOST" ] || die "the web UI and the code need two host names (they are two origins; docs/security.md)"
BACKUPS=${BACKUPS:-$DATA/backups}
WEB_CERT=${WEB_CERT:-/etc/letsencrypt/live/$WEB_HOST/fullchain.pem}
WEB_KEY=${WEB_KEY:-/etc/letsencrypt/live/$WEB_HOST/privkey.pem}
CODE_CERT=${CODE_CERT:-/etc/letsencrypt/live/$CODE_HOST/fullchain.pem}
CODE_KEY=${CODE_KEY:-/etc/letsencrypt/live/$CODE_HOST/privkey.pem}
for p in "$DATA" "$BACKUPS" "$WEB_CERT" "$WEB_KEY" "$CODE_CERT" "$CODE_KEY"; do
  [[ $p =~ ^/[A-Za-z0-9._/-]+$ ]] && [[ $p != *..* ]] || die "not a plain absolute path: $p"
done
for f in "$WEB_CERT" "$WEB_KEY" "$CODE_CERT" "$CODE_KEY"; do
  [ -r "$f" ] || die "cannot read $f (obtain the certificates first: docs/production.md, step 2)"
done
[[ $APP =~ ^/[A-Za-z0-9._/-]+$ ]] || die "the checkout's path ($APP) must be plain (letters, digits, '.', '_', '-', '/'): it goes into the units"
case "$APP/" in /root/* | /home/* | /run/user/*) die "the checkout ($APP) is in a home directory, which the units hide (ProtectHome): put it in /opt/keelson" ;; esac
[ -f "$APP/dist/src/cli/main.js" ] || die "$APP is not built: run 'npm ci && npm run build' there first"
NODE=$(command -v node) || die "node is not installed (Node.js 20 or later)"
[[ $NODE =~ ^/[A-Za-z0-9._/-]+$ ]] || die "node's path ($NODE) must be plain"
"$NODE" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || die "Keelson needs Node.js 20 or later; $NODE is $("$NODE" --version)"

changed_unit=0 changed_env=0 changed_site=0

# install FILE MODE TARGET: puts FILE at TARGET only if it differs (atomically: a rename), says which.
install_file() {
  local src=$1 mode=$2 dst=$3
  if [ -f "$dst" ] && cmp -s "$src" "$dst"; then say "unchanged $dst"; return 1; fi
  install -m "$mode" "$src" "$dst.keelson-new" || die "cannot write $dst.keelson-new"
  mv -f "$dst.keelson-new" "$dst" || die "cannot replace $dst"
  say "wrote $dst"
}

render() {
  sed -e "s|@APP@|$APP|g" -e "s|@NODE@|$NODE|g" -e "s|@DATA@|$DATA|g" -e "s|@BACKUPS@|$BACKUPS|g" \
    -e "s|@WEB_HOST@|$WEB_HOST|g" -e "s|@CODE_HOST@|$CODE_HOST|g" \
    -e "s|@WEB_CERT@|$WEB_CERT|g" -e "s|@WEB_KEY@|$WEB_KEY|g" \
    -e "s|@CODE_CERT@|$CODE_CERT|g" -e "s|@CODE_KEY@|$CODE_KEY|g" \
    -e "s|@HTTP_PORT@|$HTTP_PORT|g" -e "s|@APACHE_PORT@|$APACHE_PORT|g" -e "s|@DBDIR@|$DATA/db|g" "$1"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A database of the one-process layout (KEELSON_DB_FILE unset) is not silently left behind.
if [ -f "$DATA/keelson.db" ] && [ ! -f "$DATA/db/keelson.db" ]; then
  die "$DATA/keelson.db exists (one-process layout); the install keeps the database in $DATA/db/: stop Keelson, then mkdir $DATA/db && mv $DATA/keelson.db* $DATA/db/"
fi
# A run cut short (killed, a failed start) left something unloaded: this run reloads and restarts
# everything, whatever it finds unchanged.
install -d -m 0750 "$ETC"
pending="$ETC/.install-pending"
if [ -e "$pending" ]; then say "finishing a run that did not end: everything is reloaded"; changed_unit=1 changed_env=1 changed_site=1; fi
touch "$pending"

# 1. Debian's packages (Apache, mod_dav_svn, mod_wsgi, Subversion, Trac 1.6) and the Trac user.
bash "$APP/scripts/install-system.sh" --production
if ! dpkg-query -W -f='${Status}' logrotate 2>/dev/null | grep -q "install ok installed"; then
  say "installing logrotate"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends logrotate >/dev/null
fi

# The API and web UI run as their own unprivileged user (keelson-web.service).
if ! id -u "$API_USER" >/dev/null 2>&1; then
  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$API_USER"
  say "created the system user $API_USER"
else
  # An account that is already there is used only if it is what this install would have made:
  # a system account that cannot log in, alone in its group (whoever is in it writes the database).
  IFS=: read -r _ _ uid gid _ _ shell < <(getent passwd "$API_USER")
  members=$(getent group "$API_USER" | cut -d: -f4)
  if [ "$uid" -ge 1000 ] || [ "$uid" = 0 ] || [[ $shell != */nologin && $shell != */false ]] || [ -n "$members" ] \
    || [ "$(id -G "$API_USER")" != "$gid" ]; then
    die "the account $API_USER exists but is not a no-login system account alone in its own group (uid $uid, shell $shell, other members '${members}'): remove or fix it"
  fi
fi

# 2. Data and settings. The data directory is root's and traversable (Apache and the Trac user
#    reach their own parts below it; Keelson sets those owners itself).
install -d -m 0755 "$DATA"
# Backups hold every tenant's content and Keelson's database: root's alone (the API's user included).
install -d -m 0700 "$BACKUPS"
cat > "$work/keelson.env" <<ENV
# Keelson's settings (docs/configuration.md). Written once by scripts/production/install.sh and
# then yours: a later install never overwrites it. Restart after a change: systemctl restart keelson
KEELSON_DATA_DIR=$DATA
KEELSON_BACKUP_DIR=$BACKUPS
# The API and web UI run apart as this user (keelson-web.service); the database in a directory of its own.
KEELSON_API_USER=$API_USER
KEELSON_DB_FILE=$DATA/db/keelson.db
# The web UI and API, behind https://$WEB_HOST (Debian's apache2 in front).
KEELSON_HTTP_HOST=127.0.0.1
KEELSON_HTTP_PORT=$HTTP_PORT
# Subversion and Trac: Keelson's own Apache, behind https://$CODE_HOST.
KEELSON_APACHE_HOST=127.0.0.1
KEELSON_APACHE_PORT=$APACHE_PORT
KEELSON_PUBLIC_URL=https://$CODE_HOST
# The proxy in front is on loopback: take the client's address from X-Forwarded-For.
KEELSON_TRUST_PROXY=loopback
KEELSON_SECURE_COOKIES=1
ENV
if [ -f "$ETC/keelson.env" ]; then
  # The settings are the operator's: a run whose arguments say otherwise (another host name, data
  # or backup directory) would render units and a site that disagree with them. Refused.
  for k in KEELSON_DATA_DIR KEELSON_BACKUP_DIR KEELSON_PUBLIC_URL KEELSON_API_USER KEELSON_DB_FILE KEELSON_HTTP_PORT KEELSON_APACHE_PORT; do
    want=$(sed -n "s/^$k=//p" "$work/keelson.env" | tail -1)
    have=$(sed -n "s/^$k=//p" "$ETC/keelson.env" | tail -1)
    [ "$want" = "$have" ] || die "$ETC/keelson.env has $k=$have, these arguments give $want: run with the arguments that match it, or change it first"
  done
  say "unchanged $ETC/keelson.env"
else
  install -m 0640 "$work/keelson.env" "$ETC/keelson.env.keelson-new"
  mv -f "$ETC/keelson.env.keelson-new" "$ETC/keelson.env"
  say "wrote $ETC/keelson.env"; changed_env=1
fi

# 3. The services, checked by systemd's own verifier before they are installed: keelson (worker,
#    scheduler, Keelson's Apache; root, bounded) and keelson-web (API and web UI; user keelson).
for u in keelson keelson-web; do render "$HERE/$u.service.in" > "$work/$u.service"; done
(cd "$work" && systemd-analyze verify keelson.service keelson-web.service) 2>"$work/verify" \
  || { cat "$work/verify" >&2; die "systemd-analyze refused the units"; }
for u in keelson keelson-web; do
  if install_file "$work/$u.service" 0644 "/etc/systemd/system/$u.service"; then changed_unit=1; fi
done
[ $changed_unit = 1 ] && systemctl daemon-reload

# 4. logrotate for Keelson's Apache logs, checked by logrotate itself.
render "$HERE/logrotate.in" > "$work/logrotate"
logrotate --debug "$work/logrotate" >/dev/null 2>"$work/lr" || { cat "$work/lr" >&2; die "logrotate refused its configuration"; }
install_file "$work/logrotate" 0644 /etc/logrotate.d/keelson || true

# 5. Debian's apache2 in front: TLS for both host names, each passed to its part of Keelson.
for m in ssl proxy proxy_http headers rewrite; do
  [ -e "/etc/apache2/mods-enabled/$m.load" ] || { a2enmod -q "$m" >/dev/null; say "enabled Apache module $m"; changed_site=1; }
done
render "$HERE/apache-site.conf.in" > "$work/site.conf"
site=/etc/apache2/sites-available/keelson.conf
if [ -f "$site" ] && cmp -s "$work/site.conf" "$site"; then say "unchanged $site"
else
  [ -f "$site" ] && cp -p "$site" "$work/site.previous"
  install_file "$work/site.conf" 0644 "$site"
  changed_site=1
fi
[ -e /etc/apache2/sites-enabled/keelson.conf ] || { a2ensite -q keelson >/dev/null; say "enabled site keelson"; changed_site=1; }
if ! apache2ctl -t 2>"$work/apachet"; then
  cat "$work/apachet" >&2
  if [ -f "$work/site.previous" ]; then cp -p "$work/site.previous" "$site"; say "put the previous $site back"
  else a2dissite -q keelson >/dev/null; rm -f "$site"; say "removed the new site again"; fi
  die "Apache refused the configuration (above); nothing was reloaded"
fi

# 6. Start, or restart what changed; nothing when nothing did.
for u in keelson keelson-web; do
  systemctl is-enabled -q $u.service 2>/dev/null || { systemctl enable -q $u.service; say "enabled $u.service"; }
done
if ! systemctl is-active -q keelson.service || ! systemctl is-active -q keelson-web.service; then
  say "starting keelson.service and keelson-web.service (waits until they answer)"
  systemctl start keelson.service keelson-web.service
elif [ $changed_unit = 1 ] || [ $changed_env = 1 ]; then
  say "restarting keelson.service and keelson-web.service"
  systemctl restart keelson.service keelson-web.service
else say "keelson.service and keelson-web.service running"; fi
systemctl is-enabled -q apache2.service 2>/dev/null || { systemctl enable -q apache2.service; say "enabled apache2.service"; }
if ! systemctl is-active -q apache2.service; then
  systemctl start apache2.service; say "started apache2.service"
elif [ $changed_site = 1 ]; then
  systemctl reload apache2.service; say "reloaded apache2.service"
else say "apache2.service running"; fi

rm -f "$pending"
say "done: the web UI at https://$WEB_HOST/, Subversion and Trac at https://$CODE_HOST/svn/ and /trac/"
say "first admin token (printed once): cd $APP && set -a && . $ETC/keelson.env && set +a && node dist/src/cli/main.js token create --name admin"

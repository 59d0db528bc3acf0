#!/usr/bin/env bash
# Removes what scripts/production/install.sh installed (the services, the Apache site, logrotate's
# file) and keeps the data and the settings: /var/lib/keelson (projects, database, backups) and
# /etc/keelson stay, and installing again serves the same projects. Idempotent. As root.
set -euo pipefail
say() { echo "keelson uninstall: $*"; }
[ "$(id -u)" = 0 ] || { echo "keelson uninstall: run as root" >&2; exit 1; }

if systemctl is-active -q keelson.service || systemctl is-active -q keelson-web.service; then
  say "stopping keelson.service and keelson-web.service (the worker finishes the step in hand)"
  systemctl stop keelson-web.service keelson.service
fi
reload=0
for u in keelson keelson-web; do
  if systemctl is-enabled -q $u.service 2>/dev/null; then systemctl disable -q $u.service; say "disabled $u.service"; fi
  if [ -e /etc/systemd/system/$u.service ]; then
    rm -f /etc/systemd/system/$u.service
    say "removed /etc/systemd/system/$u.service"; reload=1
  fi
done
[ $reload = 0 ] || systemctl daemon-reload
if [ -e /etc/apache2/sites-enabled/keelson.conf ]; then
  a2dissite -q keelson >/dev/null
  systemctl reload apache2.service 2>/dev/null || true
  say "disabled the Apache site keelson"
fi
for f in /etc/apache2/sites-available/keelson.conf /etc/logrotate.d/keelson; do
  [ -e "$f" ] && { rm -f "$f"; say "removed $f"; }
done
data=$(sed -n 's/^KEELSON_DATA_DIR=//p' /etc/keelson/keelson.env 2>/dev/null | tail -1)
backups=$(sed -n 's/^KEELSON_BACKUP_DIR=//p' /etc/keelson/keelson.env 2>/dev/null | tail -1)
say "kept the data and settings: ${data:-/var/lib/keelson}${backups:+, $backups}, /etc/keelson (remove them yourself to erase everything)"

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
for u in keelson keelson-web; do
  if systemctl is-enabled -q $u.service 2>/dev/null; then systemctl disable -q $u.service; say "disabled $u.service"; fi
  if [ -e /etc/systemd/system/$u.service ]; then
    rm -f /etc/systemd/system/$u.service
    say "removed /etc/systemd/system/$u.service"
  fi
done
# Always: a run cut short after removing a unit file finishes here.
systemctl daemon-reload
if [ -e /etc/apache2/sites-enabled/keelson.conf ]; then
  a2dissite -q keelson >/dev/null
  say "disabled the Apache site keelson"
fi
for f in /etc/apache2/sites-available/keelson.conf /etc/logrotate.d/keelson; do
  if [ -e "$f" ]; then rm -f "$f"; say "removed $f"; fi
done
if systemctl is-active -q apache2.service; then systemctl reload apache2.service; fi
data=$(sed -n 's/^KEELSON_DATA_DIR=//p' /etc/keelson/keelson.env 2>/dev/null | tail -1)
backups=$(sed -n 's/^KEELSON_BACKUP_DIR=//p' /etc/keelson/keelson.env 2>/dev/null | tail -1)
say "kept the data and settings: ${data:-/var/lib/keelson}${backups:+, $backups}, /etc/keelson (remove them yourself to erase everything)"

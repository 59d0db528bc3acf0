#!/usr/bin/env bash
# Removes what scripts/production/install.sh installed (the service, the Apache site, logrotate's
# file) and keeps the data and the settings: /var/lib/keelson (projects, database, backups) and
# /etc/keelson stay, and installing again serves the same projects. Idempotent. As root.
set -euo pipefail
say() { echo "keelson uninstall: $*"; }
[ "$(id -u)" = 0 ] || { echo "keelson uninstall: run as root" >&2; exit 1; }

if systemctl is-active -q keelson.service; then
  say "stopping keelson.service (the worker finishes the step in hand)"
  systemctl stop keelson.service
fi
if systemctl is-enabled -q keelson.service 2>/dev/null; then systemctl disable -q keelson.service; say "disabled keelson.service"; fi
if [ -e /etc/systemd/system/keelson.service ]; then
  rm -f /etc/systemd/system/keelson.service
  systemctl daemon-reload
  say "removed /etc/systemd/system/keelson.service"
fi
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

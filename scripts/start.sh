#!/usr/bin/env bash
# One command to a working host: installs what is missing, builds, and runs API + web UI,
# worker, scheduler and a private Apache on a loopback port, with data under ./data
# (KEELSON_DATA_DIR). Ctrl-C stops it gracefully.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then bash scripts/install-system.sh; else bash scripts/install-system.sh || {
  echo "keelson: run as root once (sudo npm start) so the system packages can be installed" >&2; exit 1; }; fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "keelson: installing node modules (better-sqlite3 builds from source: about a minute)" >&2
  npm ci --no-audit --no-fund
fi
npm run --silent build
exec node dist/src/cli/main.js serve "$@"

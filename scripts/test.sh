#!/usr/bin/env bash
# `npm test`: installs what the tests need (system packages as root), builds, lints, and runs
# every unit and integration test against the real Apache, Subversion and Trac.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system.sh
[ -d node_modules ] || npm ci --no-audit --no-fund
npx tsc -p tsconfig.json
npx eslint .
npx prettier --check . >/dev/null || { npx prettier --check .; exit 1; }
rm -rf dist/test-artifacts
# Integration tests each start their own Apache on free loopback ports; they run one file at a time.
# A test may take 10 minutes, the whole run 60: a hang fails the run instead of stalling it. A
# file whose every test and hook has finished ends then (--test-force-exit), even if a handle it
# forgot would keep it alive: one CI run spent 10 minutes on such a leak in tls.test.js after all
# its tests passed, and failed on it.
exec timeout --kill-after=30 3600 node --test --test-force-exit --test-concurrency=1 --test-timeout=600000 --test-reporter=spec \
  $(find dist/test -name '*.test.js' | sort)

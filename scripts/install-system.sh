#!/usr/bin/env bash
# Installs the system packages Keelson needs on Debian (bookworm or later), as root.
# Idempotent: does nothing when everything is already present.
# Package mirrors come from this machine's own apt configuration; no host name is written here.
set -euo pipefail

PKGS=(apache2 apache2-utils libapache2-mod-svn libapache2-mod-wsgi-py3 libaprutil1-dbd-sqlite3
  subversion python3-subversion python3-jinja2 python3-setuptools python3-pkg-resources
  python3-babel python3-pygments libjs-excanvas libjs-jquery libjs-jquery-ui
  libjs-jquery-timepicker sqlite3 curl ca-certificates
  btrfs-progs  # btrfs-progs: reading btrfs qgroup quotas over the backup directory (and their tests)
  openssl  # openssl: the TLS tests and bench/tls make their own certificate authority
  logrotate  # logrotate: the production install rotates Apache's logs with it (and its test runs it)
  chromium)  # chromium: the browser tests (playwright-core drives /usr/bin/chromium)
# --production (scripts/production/install.sh): what a host needs, without the browser for the tests.
if [ "${1:-}" = --production ]; then
  keep=(); for p in "${PKGS[@]}"; do [ "$p" = chromium ] || keep+=("$p"); done; PKGS=("${keep[@]}")
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
have_trac=0
/usr/bin/python3 -c 'import trac, sys; sys.exit(0 if trac.__version__.startswith("1.6") else 1)' 2>/dev/null && have_trac=1

# The Trac daemon and Keelson's Trac helper run as their own system user, never as Apache's user
# or root: it writes only Trac databases and attachments (see docs/security.md).
TRAC_USER=${KEELSON_TRAC_USER:-keelson-trac}
have_user=0
id -u "$TRAC_USER" >/dev/null 2>&1 && have_user=1

if [ ${#missing[@]} -eq 0 ] && [ $have_trac = 1 ] && [ $have_user = 1 ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "keelson: missing system packages or the $TRAC_USER user (${missing[*]} trac=$have_trac); run this script as root" >&2
  exit 1
fi
if [ $have_user = 0 ]; then
  echo "keelson: creating the system user $TRAC_USER" >&2
  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$TRAC_USER"
fi
if [ ${#missing[@]} -eq 0 ] && [ $have_trac = 1 ]; then exit 0; fi
export DEBIAN_FRONTEND=noninteractive
echo "keelson: installing system packages: ${missing[*]:-} $([ $have_trac = 0 ] && echo trac)" >&2
apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Apache is started by Keelson itself (its own private instance); the Debian service is left
# alone, but a fresh install may have started it on port 80: that is harmless.

if [ $have_trac = 0 ]; then
  if apt-cache show trac 2>/dev/null | grep -q '^Version: 1\.6'; then
    apt-get install -y -qq --no-install-recommends trac >/dev/null
  else
    # Trac 1.6 is not in bookworm; trixie's package is Architecture: all and its dependencies are
    # satisfied by bookworm. Fetch it through a private sources list built from the mirror this
    # machine already uses, without touching the system's apt sources.
    mirror=""
    for f in /etc/apt/sources.list.d/*.sources; do
      [ -f "$f" ] || continue
      m=$(awk '/^URIs:/ {print $2; exit}' "$f")
      case "$m" in *security*) ;; "") ;; *) mirror=$m; break ;; esac
    done
    if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
      mirror=$(awk '$1=="deb" && $0 !~ /security/ {for(i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list)
    fi
    if [ -z "$mirror" ]; then echo "keelson: cannot find a Debian mirror in apt's configuration" >&2; exit 1; fi
    work=$(mktemp -d /var/tmp/keelson-trac.XXXXXX)
    mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
    chmod 0755 "$work"; chown -R _apt "$work" 2>/dev/null || true
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" > "$work/sources.list"
    opts=(-o "Dir::Etc::sourcelist=$work/sources.list" -o Dir::Etc::sourceparts=/nonexistent
      -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache")
    apt-get "${opts[@]}" update -qq
    (cd "$work" && apt-get "${opts[@]}" download trac >/dev/null)
    apt-get install -y -qq --no-install-recommends "$work"/trac_*_all.deb >/dev/null
    rm -rf "$work"
  fi
fi
/usr/bin/python3 -c 'import trac; print("keelson: Trac", trac.__version__, file=__import__("sys").stderr)'

#!/usr/bin/env bash
# Records what a fresh initdb of this machine's PostgreSQL and each of its
# available extensions install, as the digests airlock compares a
# database's catalog with (src/catalog/baseline.sql). Anything that differs
# from the baseline is user code to airlock (docs/catalog.md).
#
#   scripts/record-baseline.sh [PG_BINDIR] > baseline.txt
#
# airlock ships src/catalog/baseline/pg15.txt; for another major version,
# or extensions of your own, record a file and name it in the config
# (`catalog_baseline = ["baseline.txt"]`). Runs initdb as the `postgres`
# user when started as root (initdb refuses root).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
bindir="${1:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}"
as=()
if [ "$(id -u)" = 0 ]; then as=(runuser -u postgres --); fi
dir="$(mktemp -d)"
[ "$(id -u)" = 0 ] && chown postgres "$dir"
port=$((20000 + RANDOM % 20000))
cleanup() { "${as[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT
"${as[@]}" "$bindir/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >/dev/null
"${as[@]}" "$bindir/pg_ctl" -D "$dir/data" -w -l "$dir/log" \
  -o "-p $port -k $dir -c listen_addresses=''" start >/dev/null
psql=("$bindir/psql" -h "$dir" -p "$port" -U postgres -X -q -At -v ON_ERROR_STOP=1)
query() { { echo "SET search_path = pg_catalog;"; cat "$here/src/catalog/baseline.sql"; echo ";"; } | "${psql[@]}" -d "$1" -F ' '; }
major="$("${psql[@]}" -d postgres -c "SELECT current_setting('server_version_num')::int / 10000")"
echo "# PostgreSQL $("${psql[@]}" -d postgres -c "SHOW server_version"): recorded by scripts/record-baseline.sh"
echo "major $major"
query postgres | grep '^core '
# Each extension in a database of its own, with what it requires.
i=0
for ext in $("${psql[@]}" -d postgres -c "SELECT name FROM pg_available_extensions ORDER BY name"); do
  i=$((i + 1))
  "${psql[@]}" -d postgres -c "CREATE DATABASE ext_$i TEMPLATE template0"
  if "${psql[@]}" -d "ext_$i" -c "CREATE EXTENSION \"$ext\" CASCADE" 2>/dev/null; then
    query "ext_$i" | grep '^extension '
  else
    echo "# $ext: cannot be created here" 
  fi
done | sort -u

#!/usr/bin/env bash
# pg_dump and pg_dumpall as a backup job runs them: schema only, data only,
# custom format (-Fc), directory format dumped by two parallel workers
# (-Fd -j2), and the whole cluster (pg_dumpall). Each archive is turned into
# SQL with pg_restore (offline), so that tests/drivers.rs can compare a dump
# taken through airlock with one taken directly.
#
# Usage: DRIVER_DSN=postgresql://user@host:port/db pg_dump.sh OUTDIR
# PG_BINDIR, if set, is where the PostgreSQL tools are (else PATH).
# Prints `ok <name>` or `FAIL <name>: <error>` per step; exits 1 if any failed.
set -u
out=${1:?usage: pg_dump.sh OUTDIR}
dsn=${DRIVER_DSN:?DRIVER_DSN is not set}
timeout_s=${DRIVER_STEP_TIMEOUT:-20}
bin=${PG_BINDIR:+$PG_BINDIR/}
mkdir -p "$out"
failed=0

# pg_dump 15.14, 16.10, 17.6 and later write \restrict lines with a random
# key unless given one (plain format only: for archives, pg_restore writes
# them).
key=()
if "${bin}pg_dump" --help | grep -q -- --restrict-key; then
  key=(--restrict-key=airlockdrivermatrix)
fi

# Every tool runs under the step timeout; a step's stderr is its error.
run() {
  timeout --kill-after=5 "$timeout_s" "$@"
}

step() {
  local name=$1
  shift
  echo "... $name" >&2
  local err
  err=$("$@" 2>&1 >/dev/null)
  local rc=$?
  if [ $rc -eq 0 ]; then
    echo "ok $name"
  else
    failed=1
    # The tool's own error and the query it names, before airlock's notices.
    local own
    own=$(printf '%s\n' "$err" | grep -E '(error|detail): ' || true)
    [ -n "$own" ] && err="$own"
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then err="timed out after ${timeout_s}s; ${err}"; fi
    echo "FAIL $name: $(printf '%s' "$err" | tr '\n' '|' | sed 's/|/ | /g' | cut -c1-2000)"
  fi
}

dump_and_restore() {
  # $1: archive to write, $2: SQL to write from it, rest: pg_dump's options
  local archive=$1 sql=$2
  shift 2
  run "${bin}pg_dump" "$@" -f "$archive" -d "$dsn" &&
    run "${bin}pg_restore" "${key[@]}" -f "$sql" "$archive"
}

rm -rf "$out/directory"
step pg_dump.schema_only run "${bin}pg_dump" "${key[@]}" --schema-only -f "$out/schema_only.sql" -d "$dsn"
step pg_dump.data_only run "${bin}pg_dump" "${key[@]}" --data-only -f "$out/data_only.sql" -d "$dsn"
step pg_dump.custom_format dump_and_restore "$out/custom.dump" "$out/custom_format.sql" -Fc
step pg_dump.directory_parallel dump_and_restore "$out/directory" "$out/directory_parallel.sql" -Fd -j2
step pg_dumpall run "${bin}pg_dumpall" "${key[@]}" -f "$out/pg_dumpall.sql" -d "$dsn"
exit $failed

#!/usr/bin/env bash
# Regenerates src/classify/builtin_functions.txt from a PostgreSQL server:
# the names in pg_catalog all of whose overloads are immutable or stable,
# less the functions that assign a transaction id.
# Usage: scripts/gen-builtins.sh "host=127.0.0.1 port=5432 user=postgres"
set -euo pipefail
cd "$(dirname "$0")/.."
out=src/classify/builtin_functions.txt
{
  echo "# Built-in functions whose every overload PostgreSQL marks immutable or stable."
  echo "# Generated from PostgreSQL $(psql "$1" -Atc 'show server_version' | cut -d' ' -f1)'s catalog by scripts/gen-builtins.sh; functions"
  echo "# that assign a transaction id (txid_current, pg_current_xact_id) are left out."
  psql "$1" -Atc "SELECT proname FROM pg_proc WHERE pronamespace = 'pg_catalog'::regnamespace
                  GROUP BY proname HAVING bool_and(provolatile <> 'v') ORDER BY 1" |
    grep -vE '^(txid_current|txid_current_if_assigned|pg_current_xact_id|pg_current_xact_id_if_assigned)$'
} > "$out"
echo "wrote $out"

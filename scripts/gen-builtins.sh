#!/usr/bin/env bash
# Regenerates the classifier's lists of PostgreSQL's built-in functions from a
# server's catalog:
# - src/classify/builtin_functions.txt: the names in pg_catalog all of whose
#   overloads are immutable or stable, less the functions that assign a
#   transaction id;
# - src/classify/builtin_volatile_unary.txt: the names in pg_catalog with a
#   volatile overload that can be called with one argument, which attribute
#   notation (`x.nextval` is `nextval(x)`) can reach.
# Usage: scripts/gen-builtins.sh "host=127.0.0.1 port=5432 user=postgres"
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(psql "$1" -Atc 'show server_version' | cut -d' ' -f1)
out=src/classify/builtin_functions.txt
{
  echo "# Built-in functions whose every overload PostgreSQL marks immutable or stable."
  echo "# Generated from PostgreSQL ${version}'s catalog by scripts/gen-builtins.sh; functions"
  echo "# that assign a transaction id (txid_current, pg_current_xact_id) are left out."
  psql "$1" -Atc "SELECT proname FROM pg_proc WHERE pronamespace = 'pg_catalog'::regnamespace
                  GROUP BY proname HAVING bool_and(provolatile <> 'v') ORDER BY 1" |
    grep -vE '^(txid_current|txid_current_if_assigned|pg_current_xact_id|pg_current_xact_id_if_assigned)$'
} > "$out"
echo "wrote $out"
out=src/classify/builtin_volatile_unary.txt
{
  echo "# Built-in functions with a volatile overload callable with one argument."
  echo "# Generated from PostgreSQL ${version}'s catalog by scripts/gen-builtins.sh."
  psql "$1" -Atc "SELECT proname FROM pg_proc WHERE pronamespace = 'pg_catalog'::regnamespace
                  AND provolatile = 'v' AND pronargs >= 1 AND pronargs - pronargdefaults <= 1
                  GROUP BY proname ORDER BY 1"
} > "$out"
echo "wrote $out"

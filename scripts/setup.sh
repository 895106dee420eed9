#!/usr/bin/env bash
# Installs what airlock's build, demo and tests need on a fresh Debian
# machine with Rust, skipping whatever is already there.
set -euo pipefail

need=()
have_pg_server() {
  command -v initdb >/dev/null 2>&1 && return 0
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}
have_pg_server || need+=(postgresql postgresql-contrib)
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
command -v pgbench >/dev/null 2>&1 || need+=(postgresql-contrib)
# libclang itself (bindgen loads it), not libclang-cpp, which other packages bring.
compgen -G "/usr/lib/llvm-*/lib/libclang.so*" >/dev/null || need+=(libclang-dev)
command -v pgbouncer >/dev/null 2>&1 || need+=(pgbouncer)
[ -f /usr/share/java/postgresql.jar ] || need+=(libpostgresql-jdbc-java)
command -v javac >/dev/null 2>&1 || need+=(default-jdk-headless)
command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
# The driver matrix (tests/drivers.rs): Ruby and Perl drivers from Debian,
# and what the Python venv and the npm project below need.
ruby -e "require 'pg'" >/dev/null 2>&1 || need+=(ruby-pg)
ruby -e "require 'active_record'" >/dev/null 2>&1 || need+=(ruby-activerecord)
perl -MDBD::Pg -e 1 >/dev/null 2>&1 || need+=(libdbd-pg-perl)
perl -MDBIx::Class::Schema::Loader -e 1 >/dev/null 2>&1 || need+=(libdbix-class-schema-loader-perl)
command -v python3 >/dev/null 2>&1 || need+=(python3)
python3 -c "import ensurepip, venv" >/dev/null 2>&1 || need+=(python3-venv)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)

if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian's postgresql package starts a cluster of its own; airlock's tests and
# demo start throwaway clusters and do not need it.

# The driver matrix's Python drivers (PyPI) in a venv and its Node drivers
# (npm), pinned; reinstalled only when the pins change.
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/target/drivers-venv"
req="$root/tests/drivers/python/requirements.txt"
if ! cmp -s "$req" "$venv/.installed-requirements.txt" || [ ! -x "$venv/bin/python" ]; then
  echo "setup: installing the Python drivers into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check --no-input -r "$req"
  cp "$req" "$venv/.installed-requirements.txt"
fi
node_dir="$root/tests/drivers/node"
if ! cmp -s "$node_dir/package-lock.json" "$node_dir/node_modules/.installed-package-lock.json"; then
  echo "setup: installing the Node drivers into $node_dir/node_modules"
  (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  cp "$node_dir/package-lock.json" "$node_dir/node_modules/.installed-package-lock.json"
fi

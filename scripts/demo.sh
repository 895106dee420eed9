#!/usr/bin/env bash
# Starts a throwaway PostgreSQL with sample data and airlock in front of it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo run --release --bin airlock -- demo "$@"

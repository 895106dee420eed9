#!/usr/bin/env bash
# Runs every test: unit tests, integration tests against throwaway
# PostgreSQL clusters with real clients (tests/drivers.rs, the driver
# matrix, among them: setup.sh installs its drivers), and the benches' build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --all-targets
cargo test --all-targets --no-fail-fast
cargo run --quiet --bin airlock -- policy test policies/

#!/usr/bin/env bash
# Crash safety under load (see tests/crash/crash.py): builds the debug binary, then issues
# and revokes tokens from several clients, kills the server with SIGKILL at random moments,
# restarts it and checks that every 201 and 204 survived and that the database is intact.
#
#   bash tests/crash/run.sh                                  # CI size: 4 workers, 3 cycles
#   bash tests/crash/run.sh --workers 8 --cycles 20 --duration 10 --seed 42
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --locked --quiet --bin tokensmith
exec python3 tests/crash/crash.py --binary target/debug/tokensmith "$@"

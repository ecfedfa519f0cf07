#!/usr/bin/env bash
# The admin web console in a real browser: headless Chromium (Debian's package) driven by
# playwright-core (pinned in package-lock.json) through console.test.mjs, against a tokensmith
# it starts on free loopback ports with a temporary SQLite database.
#
#   bash tests/console/run.sh [path/to/tokensmith]     # default: target/debug/tokensmith
#
# Installs what it needs, idempotently: Chromium with apt-get when /usr/bin/chromium is missing
# (as root), the npm packages with `npm ci`. Builds tokensmith (cargo build) only when no binary
# is given and target/debug/tokensmith is missing. Writes the screenshots to docs/screenshots/
# (SCREENSHOTS=dir puts them elsewhere). Exits non-zero on any failure.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"

log() { printf '== console: %s\n' "$*"; }
fail() { printf 'console: FAILED: %s\n' "$*" >&2; exit 1; }

command -v node >/dev/null || fail "node (20 or newer) is required"
command -v npm >/dev/null || fail "npm is required"

if [[ ! -x /usr/bin/chromium ]]; then
    log "install chromium (apt-get)"
    [[ "$(id -u)" == 0 ]] || fail "/usr/bin/chromium is missing: install Debian's chromium package (as root: apt-get install -y chromium)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q chromium >/dev/null 2>&1 || {
        apt-get update -q >/dev/null
        apt-get install -y -q chromium >/dev/null
    }
    [[ -x /usr/bin/chromium ]] || fail "apt-get did not install /usr/bin/chromium"
fi

log "npm packages"
(cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)

if [[ $# -ge 1 ]]; then
    BIN="$1"
else
    BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/tokensmith"
    if [[ ! -x "$BIN" ]]; then
        log "build tokensmith (cargo build)"
        cargo build --locked --quiet --bin tokensmith
    fi
fi
[[ -x "$BIN" ]] || fail "no tokensmith binary at $BIN"
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"

log "$(/usr/bin/chromium --version 2>/dev/null || echo chromium), tokensmith at $BIN"
cd "$HERE"
node console.test.mjs "$BIN" "${SCREENSHOTS:-$ROOT/docs/screenshots}"

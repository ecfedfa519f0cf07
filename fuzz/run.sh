#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time, failing if any input crashes one (a panic,
# a failed assertion, a sanitizer report, a timeout or running out of memory).
#
#   bash fuzz/run.sh [SECONDS]     # SECONDS per target, default 45
#
# Needs a nightly toolchain (FUZZ_TOOLCHAIN, default `nightly`); installs it and cargo-fuzz
# if they are missing. The seed corpora in fuzz/corpus/<target>/ are read, never written: what
# the fuzzer finds goes to fuzz/corpus-run/<target>/ (kept between local runs, not committed),
# crashes to fuzz/artifacts/<target>/. Reproduce one with
#   cargo +nightly fuzz run <target> fuzz/artifacts/<target>/crash-…
# then make it a regression test beside the code it broke.
set -euo pipefail
cd "$(dirname "$0")"

seconds=${1:-45}
toolchain=${FUZZ_TOOLCHAIN:-nightly}

if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
    echo "== fuzz: installing the $toolchain toolchain"
    rustup toolchain install "$toolchain" --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# request_body keeps a SQLite database in TMPDIR: give it a directory of its own.
scratch=$(mktemp -d "${TMPDIR:-/tmp}/tokensmith-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

echo "== fuzz: building the targets (cargo +$toolchain fuzz build)"
cargo "+$toolchain" fuzz build

failed=()
for target in $(cargo "+$toolchain" fuzz list); do
    echo "== fuzz: $target for ${seconds} s"
    mkdir -p "corpus-run/$target"
    # -timeout: an input that takes 10 s is a hang, and a failure.
    if ! TMPDIR=$scratch cargo "+$toolchain" fuzz run "$target" "corpus-run/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 2>"$scratch/$target.log"; then
        tail -n 60 "$scratch/$target.log"
        failed+=("$target")
    else
        grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|Done )' "$scratch/$target.log" || true
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz: FAILED: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "== fuzz: no crash in any target"

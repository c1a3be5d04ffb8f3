#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60) with cargo-fuzz on the nightly
# toolchain, keeping each target's corpus in fuzz/corpus/<target> (seeded from fuzz/seeds). A crash stops the run
# with the input saved under fuzz/artifacts/<target>; turn it into a regression test in
# `cargo test` (see protocol/src/*/tests) before fixing it.
#
#   bash fuzz/run.sh 600          # ten minutes a target
#   bash fuzz/run.sh 30 record_decode
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
shift || true
targets=("$@")
((${#targets[@]})) || mapfile -t targets < <(ls fuzz_targets | sed 's/\.rs$//')
command -v rustup >/dev/null || { echo "fuzz: rustup is needed (a nightly toolchain)" >&2; exit 1; }
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked
# Starting inputs for an empty corpus: seeds/<target> (small, committed), and for image
# decoding the small test images.
seed() {
    local target=$1
    [[ -d seeds/$target ]] && cp seeds/"$target"/* "corpus/$target/"
    if [[ $target == image_decode ]]; then
        find ../node/tests/fixtures/pdq -name '*.png' -size -8k -exec cp {} "corpus/$target/" \;
    fi
    return 0
}
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    [[ -n $(ls -A "corpus/$target") ]] || seed "$target"
    echo "fuzz: $target for ${seconds}s"
    log=$(mktemp)
    if ! cargo +nightly fuzz run "$target" "corpus/$target" -- -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        if [[ -n $(ls -A "artifacts/$target" 2>/dev/null) ]]; then
            echo "fuzz: $target found a crash; the input is in fuzz/artifacts/$target" >&2
        else
            echo "fuzz: $target did not run (see above)" >&2
        fi
        exit 1
    fi
    grep -E '^stat::(number_of_executed_units|peak_rss_mb)' "$log" || true
    rm -f "$log"
    echo "fuzz: $target: corpus $(ls "corpus/$target" | wc -l) inputs"
done

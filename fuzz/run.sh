#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 60) from the committed seeds
# (fuzz/seeds/<target>) plus the growing local corpus (fuzz/corpus/<target>,
# not committed), and prints executions per target. Exits non-zero on the
# first crash, leak, timeout or oversized allocation (fuzz/artifacts/).
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# cargo-fuzz needs nightly features; on a stable toolchain RUSTC_BOOTSTRAP=1
# enables them (set here).
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(wav model config control)
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  log=$(mktemp)
  if ! cargo fuzz run -O "$t" "corpus/$t" "seeds/$t" -- \
      -max_total_time="$secs" -timeout=10 -malloc_limit_mb=256 -rss_limit_mb=1024 \
      -print_final_stats=1 >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz target $t FAILED (see fuzz/artifacts/$t)"
    exit 1
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  echo "fuzz $t: $execs executions in ${secs} s, no crash"
  rm -f "$log"
done

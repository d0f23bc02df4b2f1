#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time (default 60 s each) with the
# nightly toolchain and prints each target's executions. Usage:
#   scripts/fuzz.sh [seconds] [target...]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-60}"
shift || true
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  log="$(mktemp)"
  cargo +nightly fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -max_len=4096 -print_final_stats=1 2>"$log" || {
    tail -40 "$log"; echo "FUZZ FAILURE in $t"; exit 1; }
  execs=$(grep -Eo 'stat::number_of_executed_units: [0-9]+' "$log" | grep -Eo '[0-9]+' | tail -1)
  echo "$t: ${execs:-?} executions in ${secs}s, no crash"
  rm -f "$log"
done

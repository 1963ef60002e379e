#!/usr/bin/env bash
# `npm run fuzz`: coverage-guided fuzzing (cargo-fuzz / libFuzzer, nightly) of every parser that
# reads attacker-controlled input: bearer tokens (JWT, PASETO, the strict JSON reader and key
# sets), the cart and checkout bodies, `Idempotency-Key`, the catalogue and orders queries and
# cursors. The properties live in fuzz/src/lib.rs; `cargo test` runs a short proptest smoke of
# the same ones (tests/fuzz_*.rs). Not part of `npm test`: a full run takes minutes per target.
#
#   scripts/fuzz.sh                      # every target, FUZZ_RUNS inputs each (default 1,000,000)
#   FUZZ_RUNS=50000 scripts/fuzz.sh jwt_parts cart_body
#
# Each target starts from the committed seeds (fuzz/seeds/<target>) and keeps what it learns in
# fuzz/corpus/<target> (git-ignored). A crash leaves its input in fuzz/artifacts/<target>/ and
# stops the script (reproduce: cargo +nightly fuzz run <target> <file>). The summary (inputs,
# time, executions per second, result) is printed and written to fuzz/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

runs=${FUZZ_RUNS:-1000000}

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz: cargo-fuzz needs a nightly toolchain (rustup toolchain install nightly)" >&2
  exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz (a few minutes, once)"
  cargo install --locked cargo-fuzz
fi

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

# Token targets get the JOSE vocabulary and room past JWT_MAX_TOKEN_BYTES (8192), so the
# size limit itself is exercised; the others get the body/query vocabulary.
options_for() {
  case "$1" in
    bearer_header | token_text | jwt_parts | paseto_parts | strict_json)
      echo "-dict=fuzz/dict/tokens.dict -max_len=9000"
      ;;
    *)
      echo "-dict=fuzz/dict/json.dict -max_len=4096"
      ;;
  esac
}

# Build once, then run the built binaries: the times below are fuzzing only, and every target
# fuzzes the same snapshot of the sources even if they change meanwhile.
echo "fuzz: building the targets (AddressSanitizer, release with debug assertions)"
cargo +nightly fuzz build
bin="fuzz/target/$(rustc +nightly -vV | sed -n 's/^host: //p')/release"

mkdir -p fuzz/results
summary="fuzz/results/summary-$(date -u +%Y%m%dT%H%M%SZ).txt"
{
  echo "# cargo fuzz, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, -runs=$runs per target"
  printf '%-18s %12s %9s %10s %8s  %s\n' target inputs seconds exec/s corpus result
} | tee "$summary"

status=0
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t" "fuzz/seeds/$t" "fuzz/artifacts/$t"
  log="fuzz/results/$t.log"
  start=$(date +%s.%N)
  # shellcheck disable=SC2046 # the options are words on purpose
  if ASAN_OPTIONS=detect_odr_violation=0 "$bin/$t" -artifact_prefix="fuzz/artifacts/$t/" \
    -runs="$runs" $(options_for "$t") -timeout=10 -print_final_stats=1 \
    "fuzz/corpus/$t" "fuzz/seeds/$t" >"$log" 2>&1; then
    result=ok
  else
    result="FAILED (see $log, fuzz/artifacts/$t/)"
    status=1
  fi
  end=$(date +%s.%N)
  inputs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
  printf '%-18s %12s %9.1f %10s %8s  %s\n' "$t" "${inputs:-?}" "$(awk "BEGIN { print $end - $start }")" \
    "${rate:-?}" "$corpus" "$result" | tee -a "$summary"
  if [ "$status" -ne 0 ]; then
    tail -n 40 "$log" >&2
    break
  fi
done
echo "fuzz: summary in $summary"
exit "$status"

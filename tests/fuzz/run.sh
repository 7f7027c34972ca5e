#!/usr/bin/env bash
# run.sh: runs the libFuzzer targets of a SHAKEN_FUZZ build one after the other, each for a bounded
# time on a scratch copy of its committed seed corpus (tests/fuzz/corpus/<target>/ is never
# written).
#   tests/fuzz/run.sh BUILD_DIR SECONDS [TARGET...]    # default: every target of tests/fuzz/corpus
# Prints one line per target (executions, corpus growth, result) and exits non-zero when any
# target found a crash, leak, sanitizer report, timeout or out-of-memory; the input that did it is
# kept in BUILD_DIR/fuzz-artifacts/<target>/ (reproduce: BUILD_DIR/tests/fuzz/fuzz_<target> FILE).
# One fuzzer process at a time (no -jobs/-workers): the machines it runs on are shared.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ $# -lt 2 ]; then
  echo "usage: tests/fuzz/run.sh BUILD_DIR SECONDS [TARGET...]" >&2
  exit 2
fi
build_dir=$1 seconds=$2
shift 2
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for d in tests/fuzz/corpus/*/; do targets+=("$(basename "$d")"); done
fi

# Longest input per target: a little over what the parser accepts, so the size limits are fuzzed.
max_len() {
  case $1 in
    identity_header) echo 9000 ;;    # kMaxIdentityHeaderBytes 8192
    passport) echo 7000 ;;           # kMaxPassportBytes 6144
    json) echo 5000 ;;               # JsonLimits::max_bytes 4096
    x5u_chain|tn_auth_list) echo 16384 ;;
    config) echo 8192 ;;
    *) echo 4096 ;;
  esac
}

if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ] && [ -x /usr/lib/llvm-14/bin/llvm-symbolizer ]; then
  export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=()
for t in "${targets[@]}"; do
  bin="$build_dir/tests/fuzz/fuzz_$t"
  if [ ! -x "$bin" ]; then
    echo "fuzz: $bin is missing: build the fuzz tree first (cmake -DSHAKEN_FUZZ=ON, ninja fuzzers)" >&2
    exit 2
  fi
  artifacts="$build_dir/fuzz-artifacts/$t"
  mkdir -p "$scratch/$t" "$artifacts"
  cp tests/fuzz/corpus/"$t"/* "$scratch/$t/"
  log="$build_dir/fuzz-artifacts/$t.log"
  rc=0
  dict=()
  if [ -f "tests/fuzz/$t.dict" ]; then dict=(-dict="tests/fuzz/$t.dict"); fi
  "$bin" -max_total_time="$seconds" -timeout=10 -max_len="$(max_len "$t")" -print_final_stats=1 \
    "${dict[@]}" -artifact_prefix="$artifacts/" "$scratch/$t" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  seeds=$(find tests/fuzz/corpus/"$t" -type f | wc -l)
  corpus=$(find "$scratch/$t" -type f | wc -l)
  if [ "$rc" -eq 0 ]; then
    printf 'fuzz: %-16s ok      %ss %12s executions, corpus %s -> %s\n' "$t" "$seconds" \
      "${execs:-?}" "$seeds" "$corpus"
  else
    printf 'fuzz: %-16s FAILED  (exit %s) %s executions; input in %s, log %s\n' "$t" "$rc" \
      "${execs:-?}" "$artifacts" "$log"
    grep -E '^(==[0-9]+==ERROR|SUMMARY|.*FUZZ_CHECK failed|.*runtime error)' "$log" | head -5 || true
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
  exit 1
fi

#!/usr/bin/env bash
# test.sh: the whole test suite, from a clean clone, in one command.
#   deploy/test.sh                 # install deps, build (build/), run every test
#   deploy/test.sh -L unit         # extra arguments go to ctest: run a slice
#   SHAKEN_SANITIZE=1 deploy/test.sh   # the same under AddressSanitizer + UBSan (build-asan/)
#   SHAKEN_FUZZ=1 deploy/test.sh       # the libFuzzer targets (clang, build-fuzz/), each for
#                                      # SHAKEN_FUZZ_SECONDS (default 25) on its seed corpus;
#                                      # extra arguments name targets (default: all)
# Exits non-zero on any build or test failure (fuzzing: any crash, leak, timeout or sanitizer
# report).
set -euo pipefail
cd "$(dirname "$0")/.."

./deploy/install-deps.sh

build_dir=build
cmake_args=(-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo)
if [ "${SHAKEN_FUZZ:-0}" = 1 ]; then
  if [ "${SHAKEN_SANITIZE:-0}" = 1 ]; then
    echo "test.sh: SHAKEN_FUZZ=1 already runs under ASan + UBSan: unset SHAKEN_SANITIZE" >&2
    exit 2
  fi
  export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSHAKEN_FUZZ=ON
  cmake --build build-fuzz -j "$(nproc)" --target fuzzers
  exec tests/fuzz/run.sh build-fuzz "${SHAKEN_FUZZ_SECONDS:-25}" "$@"
fi
if [ "${SHAKEN_SANITIZE:-0}" = 1 ]; then
  build_dir=build-asan
  cmake_args+=(-DSHAKEN_SANITIZE=ON -DSHAKEN_BUILD_BENCH=OFF)
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/deploy/lsan.supp:print_suppressions=0}
fi

# ccache (when installed) keys objects by paths relative to the checkout, so another clone of the
# same sources reuses them.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true

jobs=$(nproc)
cmake -S . -B "$build_dir" "${cmake_args[@]}"
cmake --build "$build_dir" -j "$jobs"
ctest --test-dir "$build_dir" --output-on-failure -j "$jobs" "$@"

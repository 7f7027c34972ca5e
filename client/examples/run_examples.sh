#!/bin/sh
# run_examples.sh FAKE_SHAKEND CXX_EXAMPLE C_EXAMPLE: starts the fake server and runs both
# example programs against it (plaintext); each must sign, verify and exit 0.
set -eu
fake=$1 cxx=$2 c=$3
tmp=$(mktemp -d)
"$fake" "$tmp/port" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
i=0
while [ ! -s "$tmp/port" ]; do
  i=$((i + 1)); [ $i -lt 100 ] || { echo "fake server did not start"; exit 1; }
  sleep 0.05
done
port=$(cat "$tmp/port")
SHAKEN_INSECURE=1 SHAKEN_TARGET="127.0.0.1:$port" "$cxx" | tee "$tmp/cxx.out"
grep -q "verstat=TN-Validation-Passed" "$tmp/cxx.out"
SHAKEN_INSECURE=1 "$c" "127.0.0.1:$port" | tee "$tmp/c.out"
grep -q "^Identity: jws.12155551212;info=<" "$tmp/c.out"
grep -q "verstat=TN-Validation-Passed" "$tmp/c.out"
echo "run_examples: OK"

#!/usr/bin/env bash
# check-systemd-unit.sh SHAKEND: `systemd-analyze verify` on deploy/systemd/shakend.service (with
# its SoftHSM2 drop-in), the unit's binary path pointed at SHAKEND. Any warning fails: systemd
# ignores an unknown or misspelt directive with a warning, which would silently drop a hardening
# setting. Exit 77 (skipped) when systemd-analyze is not installed.
set -euo pipefail
cd "$(dirname "$0")/.."
shakend=${1:?usage: check-systemd-unit.sh PATH_TO_SHAKEND}
if ! command -v systemd-analyze >/dev/null; then
  echo "systemd-analyze not installed: skipped"
  exit 77
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed "s|/usr/local/sbin/shakend|$shakend|g" deploy/systemd/shakend.service >"$dir/shakend.service"
mkdir "$dir/shakend.service.d"
cp deploy/systemd/shakend.service.d/lab-token-files.conf "$dir/shakend.service.d/"
out=$(SYSTEMD_LOG_COLOR=0 systemd-analyze verify "$dir/shakend.service" 2>&1) || {
  echo "$out"
  exit 1
}
if [ -n "$out" ]; then
  echo "systemd-analyze verify warned:"
  echo "$out"
  exit 1
fi
echo "deploy/systemd/shakend.service: systemd-analyze verify clean"

#!/usr/bin/env bash
# check-package.sh BUILD_DIR: installs the build into a scratch root as the Debian package would
# (cmake --install --prefix /usr, DESTDIR), then builds the .deb with CPack and unpacks it into a
# second root; in both, checks the files an operator relies on and runs the installed shakend's
# --check-config on the installed example configuration.
set -euo pipefail
build=$(cd "${1:?usage: check-package.sh BUILD_DIR}" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

check_root() {
  local root=$1 what=$2
  for f in usr/sbin/shakend usr/bin/shakenctl usr/lib/systemd/system/shakend.service \
           etc/logrotate.d/shakend usr/share/doc/shakend/README.md \
           usr/share/doc/shakend/audit.md usr/share/doc/shakend/operations.md \
           usr/share/doc/shakend/examples/shakend.example.yaml \
           usr/share/doc/shakend/examples/lab-token-files.conf \
           usr/share/shakend/prometheus/shakend-alerts.yaml; do
    if [ ! -e "$root/$f" ]; then
      echo "$what: /$f missing"
      exit 1
    fi
  done
  # The unit names the installed binary and documentation, not the source tree's /usr/local.
  if grep -q /usr/local "$root/usr/lib/systemd/system/shakend.service"; then
    echo "$what: the unit still names /usr/local:"
    grep -n /usr/local "$root/usr/lib/systemd/system/shakend.service"
    exit 1
  fi
  grep -q '^ExecStart=/usr/sbin/shakend --config /etc/shakend/shakend.yaml$' \
    "$root/usr/lib/systemd/system/shakend.service" || {
    echo "$what: unexpected ExecStart in the installed unit"
    exit 1
  }
  # The example names files of a production host (/etc/shakend/...): the file alone.
  "$root/usr/sbin/shakend" --check-config "$root/usr/share/doc/shakend/examples/shakend.example.yaml" \
    --syntax-only
  "$root/usr/sbin/shakend" --version
}

DESTDIR="$work/root" cmake --install "$build" --prefix /usr >"$work/install.log"
check_root "$work/root" "cmake --install"

(cd "$work" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/pkg" >"$work/cpack.log") || {
  cat "$work/cpack.log"
  exit 1
}
deb=$(ls "$work"/pkg/*.deb)
dpkg-deb --info "$deb" >"$work/info"
for f in postinst prerm postrm conffiles; do
  grep -q " $f" "$work/info" || { echo "package: no $f"; cat "$work/info"; exit 1; }
done
grep -q '^ Depends:.*libgrpc++' "$work/info" || { echo "package: no shared-library Depends"; cat "$work/info"; exit 1; }
dpkg-deb -x "$deb" "$work/deb-root"
check_root "$work/deb-root" "$(basename "$deb")"
echo "package: $(basename "$deb") installs and checks its example configuration"

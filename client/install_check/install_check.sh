#!/bin/sh
# install_check.sh BUILD_DIR CHECK_SRC_DIR LIBDIR CMAKE CC: installs the shakenclient component of
# BUILD_DIR into a temporary prefix, then builds and runs
#   - a C99 program against it with `pkg-config --cflags --libs shakenclient`,
#   - a C++ program against it with find_package(shakenclient CONFIG).
set -eu
build=$1 src=$2 libdir=$3 cmake=$4 cc=$5
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

"$cmake" --install "$build" --prefix "$prefix" --component shakenclient >"$tmp/install.log"
test -f "$prefix/include/shaken/shaken_client.h"
test -f "$prefix/include/shaken/client.h"
test -f "$prefix/$libdir/cmake/shakenclient/shakenclientConfig.cmake"

export PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig"
export LD_LIBRARY_PATH="$prefix/$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# shellcheck disable=SC2046  # word splitting of pkg-config output is intended
"$cc" -std=c99 -pedantic -Wall -Wextra -Werror -o "$tmp/check_c" "$src/check.c" \
  $(pkg-config --cflags --libs shakenclient)
"$tmp/check_c"

"$cmake" -S "$src" -B "$tmp/cpp" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >"$tmp/cpp.log" 2>&1 ||
  { cat "$tmp/cpp.log"; exit 1; }
"$cmake" --build "$tmp/cpp" >>"$tmp/cpp.log" 2>&1 || { cat "$tmp/cpp.log"; exit 1; }
"$tmp/cpp/check_cpp"
echo "install_check: OK"

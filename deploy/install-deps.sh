#!/usr/bin/env bash
# install-deps.sh: installs every Debian 12 package shakend needs to build, test, benchmark
# and run its tools. Idempotent: packages already present are left alone, and apt is only
# asked when something is missing. Needs root (or sudo).
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git
  # libraries
  libssl-dev openssl libcurl4-openssl-dev libp11-kit-dev p11-kit
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc libabsl-dev
  nlohmann-json3-dev libyaml-cpp-dev libcli11-dev libspdlog-dev prometheus-cpp-dev
  libsystemd-dev
  # the REST front end's HTTP server (http/): libmicrohttpd, its TLS is GnuTLS
  libmicrohttpd-dev libgnutls28-dev
  # SIP redirect server (listen.sip): sofia-sip's NTA stack
  libsofia-sip-ua-dev
  # the demo STI-CA's ACME state (shakenctl ca serve): embedded SQLite
  libsqlite3-dev
  # PKCS#11: software token, libp11's OpenSSL engine, OpenSC tools (pkcs11-tool, pkcs11-spy)
  softhsm2 libp11-dev libengine-pkcs11-openssl opensc
  # tests and benchmarks
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  # fuzzing (SHAKEN_FUZZ=1 deploy/test.sh): clang, libFuzzer + sanitizer runtimes, symbolizer
  clang libclang-rt-14-dev llvm-14
  # interop peers (independent SHAKEN implementation)
  secsipidx libsecsipid-dev
  # SIP peers of the listen.sip tests and benchmark: SIPp, and Kamailio as the SBC in front
  sip-tester kamailio kamailio-secsipid-modules
  # an independent ACME (RFC 8555) server the ACME client is tested against
  pebble
  # helper tools used by scripts and tests
  curl ca-certificates python3 procps
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"

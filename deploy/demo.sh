#!/usr/bin/env bash
# demo.sh: shakend end to end on this machine, from a clean clone, in one command.
#
#   1. installs the Debian packages and builds shakend, shakenctl and the client example;
#   2. key ceremony on a fresh SoftHSM2 token: the SP key generated inside the token, a demo
#      STI PKI (root -> intermediate), a CSR with TNAuthList signed by the token key, the SP
#      certificate;
#   3. publishes the certificate chain over HTTPS on 127.0.0.1 (the x5u);
#   4. starts shakend (mTLS API, health, metrics) with the token key;
#   5. signs a call and verifies it through the client library, then verifies the same Identity
#      header with shakenctl and with an independent implementation (secsipidx);
#   6. prints the Identity header and the verdict, and stops everything it started.
#
# Everything lives in a temporary directory (SHAKEN_DEMO_DIR to choose one; SHAKEN_DEMO_KEEP=1
# keeps it). Servers listen on 127.0.0.1 only. PINs are random, kept in 0600 files, never on a
# command line. Exit status 0 when the call verified.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Installing dependencies and building (build/)"
./deploy/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" --target shakend shakenctl shaken_client_example
SHAKEND=$repo/build/daemon/shakend
SHAKENCTL=$repo/build/cli/shakenctl
CLIENT=$repo/build/client/shaken_client_example

work=${SHAKEN_DEMO_DIR:-$(mktemp -d /tmp/shakend-demo.XXXXXX)}
mkdir -p "$work"
cd "$work"
umask 077
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "${SHAKEN_DEMO_KEEP:-0}" != 1 ]; then rm -rf "$work"; else echo "kept $work"; fi
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
wait_for() {  # wait_for <what> <command...>: up to 15 s
  local what=$1; shift
  for _ in $(seq 1 150); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "demo: $what did not come up" >&2
  return 1
}

say "SoftHSM2 token in $work/tokens"
mkdir -p tokens www
cat > softhsm2.conf <<CONF
directories.tokendir = $work/tokens
objectstore.backend = file
log.level = ERROR
CONF
export SOFTHSM2_CONF=$work/softhsm2.conf
openssl rand -hex 12 > user.pin
openssl rand -hex 12 > so.pin
"$SHAKENCTL" token init --label shaken-demo --so-pin-source file:so.pin --pin-source file:user.pin

say "Key ceremony: SP key generated inside the token (non-extractable)"
KEY='pkcs11:token=shaken-demo;object=sp-key'
"$SHAKENCTL" key generate --key "$KEY" --pin-source file:user.pin

say "Demo STI PKI: root and intermediate (file keys), SP certificate for the token key"
"$SHAKENCTL" key generate --key root.key.pem >/dev/null
"$SHAKENCTL" key generate --key ica.key.pem >/dev/null
"$SHAKENCTL" ca init --key root.key.pem --cn 'shakend demo STI ROOT' --org 'shakend demo STI-PA' -o root.pem
"$SHAKENCTL" ca issue-intermediate --ca-cert root.pem --ca-key root.key.pem \
  --subject-key ica.key.pem --cn 'shakend demo STI-CA' --org 'shakend demo STI-CA' -o ica.pem
"$SHAKENCTL" csr create --key "$KEY" --pin-source file:user.pin --spc 709J \
  --org 'Demo Telecom' -o sp.csr
"$SHAKENCTL" ca issue --ca-cert ica.pem --ca-key ica.key.pem --csr sp.csr --spc 709J \
  --crl-url https://crl.demo.invalid/sti.crl --days 30 -o sp.pem
cat sp.pem ica.pem > www/sp-chain.pem
cp www/sp-chain.pem sp-chain.pem
"$SHAKENCTL" cert check sp.pem

say "TLS for the gRPC API (mTLS) and the x5u server (openssl)"
tls_cert() {  # tls_cert <name> <san> <eku>
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" \
    -out "$1.csr" -subj "/CN=$1" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=%s\nbasicConstraints=critical,CA:FALSE\n' "$2" "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA tls-ca.pem -CAkey tls-ca.key -CAcreateserial -days 7 \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout tls-ca.key \
  -out tls-ca.pem -days 7 -subj '/CN=shakend demo TLS CA' 2>/dev/null
tls_cert server 'IP:127.0.0.1,DNS:localhost' serverAuth
tls_cert sbc.demo 'DNS:sbc.demo' clientAuth

X5U_PORT=$(free_port)
API_PORT=$(free_port)
HEALTH_PORT=$(free_port)
METRICS_PORT=$(free_port)
X5U=https://127.0.0.1:$X5U_PORT/sp-chain.pem

say "Publishing the certificate chain at $X5U"
(cd www && exec openssl s_server -quiet -WWW -accept "127.0.0.1:$X5U_PORT" \
   -cert ../server.pem -key ../server.key) >x5u-server.log 2>&1 &
pids+=($!)
wait_for "x5u server" curl -sf --cacert tls-ca.pem "$X5U" -o /dev/null

say "Starting shakend"
cat > shakend.yaml <<CONF
listen:
  api: 127.0.0.1:$API_PORT
  health: 127.0.0.1:$HEALTH_PORT
  metrics: 127.0.0.1:$METRICS_PORT
  tls: {cert_file: $work/server.pem, key_file: $work/server.key, client_ca_file: $work/tls-ca.pem}
clients:
  - {identity: sbc.demo, methods: ["*"], profiles: ["*"]}
pkcs11:
  module: /usr/lib/softhsm/libsofthsm2.so
  pin_source: file:$work/user.pin
  pool_size: 2
profiles:
  - name: demo
    key: "$KEY;type=private"
    x5u: $X5U
    certificate: $work/sp-chain.pem
verifier:
  ca_file: $work/root.pem
  tls_ca_file: $work/tls-ca.pem
  lab: {allow_private_addresses: true, allow_any_port: true}
logging: {format: text, audit_file: $work/audit.log}
CONF
"$SHAKEND" --check-config shakend.yaml
"$SHAKEND" --config shakend.yaml >shakend.log 2>&1 &
pids+=($!)
wait_for shakend curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" -o /dev/null
grep -E 'profile_ready|serving' shakend.log || true

say "Signing and verifying a call through the client library (mTLS)"
export SHAKEN_TARGET=127.0.0.1:$API_PORT SHAKEN_CA=$work/tls-ca.pem SHAKEN_CERT=$work/sbc.demo.pem \
  SHAKEN_KEY=$work/sbc.demo.key SHAKEN_SERVER_NAME=localhost
"$CLIENT" --attest A --orig '+1 215-555-0121' --dest 12155550131 | tee client.out
identity=$(sed -n 's/^Identity: //p' client.out | head -n 1)

if [ -n "$identity" ]; then
  say "The same Identity header, verified by shakenctl (x5u fetched over HTTPS)"
  "$SHAKENCTL" passport verify "$identity" --ca-file root.pem --tls-ca-file tls-ca.pem \
    --allow-private-x5u --from 12155550121 --to 12155550131

  say "... and by an independent implementation: secsipidx"
  if command -v secsipidx >/dev/null; then
    openssl x509 -in sp.pem -pubkey -noout > sp.pub.pem
    if secsipidx -check -expire 60 -fpubkey sp.pub.pem -identity "$identity" 2>&1; then
      echo "secsipidx: valid"
    else
      echo "secsipidx: rejected"
      exit 1
    fi
  fi
fi

say "Metrics (excerpt) and the audit record"
curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" > metrics.txt
grep -E '^shaken_(rpc_requests_total|hsm_sessions|hsm_signatures_total|certificate_not_after)' metrics.txt \
  | grep -v ' 0$' || true
cat audit.log

say "Done: the call was signed inside the SoftHSM2 token and verified"

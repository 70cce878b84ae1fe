#!/usr/bin/env bash
# The cost of mutual TLS on a mesh hop: meshsim-proxy against HAProxy on
# loopback, one worker each, the same backend and load generator.
#
# A hop is two sidecars, as in a mesh: load -> A (plaintext in) -> B -> backend,
# with A -> B in one of four modes:
#   plaintext   HTTP/1.1, pooled keep-alive connections;
#   mtls-pooled mutual TLS on pooled connections (handshakes only at start);
#   mtls-resume a new connection per request, each resuming a TLS session;
#   mtls-full   a new connection per request, each a full handshake.
# Per proxy and mode: the added latency of the hop at 500 requests/s (p50
# through A minus p50 direct to the backend) and the CPU time of both
# sidecars per request (utime + stime from /proc). For meshsim the inbound
# sidecar's handshake counters are printed too, to show each mode did what
# it says.
#
# Usage: benches/proxy/tls.sh [SECONDS_PER_RUN]   (default 5)
# Installs haproxy from Debian packages if it is missing.
# A benchmark, not a test: the figures depend on the machine and its load.
set -euo pipefail

SECS="${1:-5}"
RATE=500
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=benches/proxy/lib.sh
. "$ROOT/benches/proxy/lib.sh"
scratch meshsim-tls-bench

need haproxy

# haproxy_info SOCKET FIELD -> a field of HAProxy's `show info`
haproxy_info() {
  python3 - "$1" "$2" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"show info\n")
data = b""
while chunk := s.recv(65536):
    data += chunk
for line in data.decode().splitlines():
    k, _, v = line.partition(": ")
    if k == sys.argv[2]:
        print(v)
PY
}

metric() {
  python3 - "$1" "$2" <<'PY'
import sys, urllib.request
text = urllib.request.urlopen(f"http://{sys.argv[1]}/metrics", timeout=5).read().decode()
print(sum(float(l.split()[-1]) for l in text.splitlines() if l.startswith(sys.argv[2])) or 0)
PY
}

start_meshsim backend --workers 1
BACKEND="$ADDR"
BPORT="${BACKEND##*:}"
CERTS="$WORK/certs"
"$MESHSIM" certs --out "$CERTS" --issue frontend --issue api >/dev/null

# --- meshsim pairs ---
# meshsim_pair MODE -> sets A_URL, A_PID, B_PID, B_ADMIN
meshsim_pair() {
  local mode="$1" tls_b="" tls_a="" up_tls="" pool="" resume="true"
  case $mode in
    mtls-resume) pool="pool_max_idle = 0" ;;
    mtls-full) pool="pool_max_idle = 0"; resume="false" ;;
  esac
  if [ "$mode" != plaintext ]; then
    tls_b="[tls]
ca_cert = \"$CERTS/ca.pem\"
ca_key = \"$CERTS/ca-key.pem\"
identity = \"api\"
inbound = true
resumption = $resume"
    tls_a="[tls]
ca_cert = \"$CERTS/ca.pem\"
ca_key = \"$CERTS/ca-key.pem\"
identity = \"frontend\"
resumption = $resume"
    up_tls='tls = { identities = ["api"] }'
  fi
  cat >"$WORK/b-$mode.toml" <<CFG
$tls_b
[[clusters]]
name = "api"
endpoints = ["$BACKEND"]
CFG
  start_meshsim proxy --workers 1 --config "$WORK/b-$mode.toml"
  B_PID=$LAST_PID
  B_ADMIN="$ADMIN"
  local b_addr="$ADDR"
  cat >"$WORK/a-$mode.toml" <<CFG
$tls_a
[[clusters]]
name = "api"
endpoints = ["$b_addr"]
$up_tls
$pool
CFG
  start_meshsim proxy --workers 1 --config "$WORK/a-$mode.toml"
  A_PID=$LAST_PID
  A_URL="http://$ADDR/"
}

# --- HAProxy pairs ---
haproxy_pair() {
  local mode="$1" bind_tls="" srv_tls="" reuse="http-reuse always" close="" gl=""
  local pb pa
  pb="$(free_port)"
  pa="$(free_port)"
  case $mode in
    plaintext) ;;
    mtls-pooled)
      bind_tls="ssl crt $CERTS/api-bundle.pem ca-file $CERTS/ca.pem verify required"
      srv_tls="ssl crt $CERTS/frontend-bundle.pem ca-file $CERTS/ca.pem verify required" ;;
    mtls-resume)
      bind_tls="ssl crt $CERTS/api-bundle.pem ca-file $CERTS/ca.pem verify required"
      srv_tls="ssl crt $CERTS/frontend-bundle.pem ca-file $CERTS/ca.pem verify required"
      reuse="http-reuse never"; close="option http-server-close" ;;
    mtls-full)
      bind_tls="ssl crt $CERTS/api-bundle.pem ca-file $CERTS/ca.pem verify required no-tls-tickets"
      srv_tls="ssl crt $CERTS/frontend-bundle.pem ca-file $CERTS/ca.pem verify required no-ssl-reuse"
      reuse="http-reuse never"; close="option http-server-close"; gl="tune.ssl.cachesize 0" ;;
  esac
  cat >"$WORK/hb-$mode.cfg" <<CFG
global
  nbthread 1
  maxconn 8000
  stats socket $WORK/hb-$mode.sock
  $gl
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend fe
  bind 127.0.0.1:$pb $bind_tls
  default_backend be
backend be
  server s1 127.0.0.1:$BPORT
CFG
  cat >"$WORK/ha-$mode.cfg" <<CFG
global
  nbthread 1
  maxconn 8000
  $gl
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  $reuse
  $close
frontend fe
  bind 127.0.0.1:$pa
  default_backend be
backend be
  server s1 127.0.0.1:$pb $srv_tls
CFG
  haproxy -db -f "$WORK/hb-$mode.cfg" >"$WORK/hb-$mode.log" 2>&1 &
  PIDS+=($!)
  B_PID=$!
  haproxy -db -f "$WORK/ha-$mode.cfg" >"$WORK/ha-$mode.log" 2>&1 &
  PIDS+=($!)
  A_PID=$!
  wait_port "$pb"
  wait_port "$pa"
  A_URL="http://127.0.0.1:$pa/"
}

stop_pair() {
  kill "$A_PID" "$B_PID" 2>/dev/null || true
  wait "$A_PID" "$B_PID" 2>/dev/null || true
}

echo "# mTLS benchmark, $(date -u +%Y-%m-%d), $(nproc) cores, ${SECS}s per run at $RATE requests/s"
echo "# $(haproxy -v | head -1); meshsim $(git -C "$ROOT" rev-parse --short HEAD)"
echo
DIRECT="$(run_load direct "http://$BACKEND/" --rate "$RATE" --arrival constant)"
BASE_P50="$(field "$DIRECT" end_to_end p50_ms)"
echo "direct to the backend: p50 ${BASE_P50} ms"
echo
echo "| proxy | mode | p50 (ms) | added by the hop (us) | CPU of both sidecars per request (us) | errors | handshakes full / resumed (inbound) |"
echo "|---|---|---|---|---|---|---|"
for proxy in meshsim haproxy; do
  for mode in plaintext mtls-pooled mtls-resume mtls-full; do
    "${proxy}_pair" "$mode"
    # Warm the pool and the session cache before measuring.
    "$MESHSIM" load "$A_URL" --rate 100 --arrival constant --duration 1s --out "$WORK/warm-$proxy-$mode" >/dev/null 2>&1 || true
    f0=0; r0=0
    if [ "$proxy" = meshsim ] && [ "$mode" != plaintext ]; then
      f0="$(metric "$B_ADMIN" 'meshsim_proxy_tls_handshakes_total{kind="full"}')"
      r0="$(metric "$B_ADMIN" 'meshsim_proxy_tls_handshakes_total{kind="resumed"}')"
    fi
    t0=$(( $(cpu_ticks "$A_PID") + $(cpu_ticks "$B_PID") ))
    d="$(run_load "$proxy-$mode" "$A_URL" --rate "$RATE" --arrival constant)"
    t1=$(( $(cpu_ticks "$A_PID") + $(cpu_ticks "$B_PID") ))
    p50="$(field "$d" end_to_end p50_ms)"
    n="$(field "$d" end_to_end count)"
    errors="$(field "$d" end_to_end errors)"
    added="$(awk -v a="$p50" -v b="$BASE_P50" 'BEGIN { printf "%.1f", (a - b) * 1000 }')"
    sent="$(awk -v n="$n" -v s="$SECS" 'BEGIN { print n * (s + 1) / s }')"
    per_req="$(awk -v d="$((t1 - t0))" -v hz="$HZ" -v n="$sent" 'BEGIN { printf "%.1f", d / hz / n * 1e6 }')"
    hs="n/a"
    if [ "$proxy" = meshsim ] && [ "$mode" != plaintext ]; then
      f1="$(metric "$B_ADMIN" 'meshsim_proxy_tls_handshakes_total{kind="full"}')"
      r1="$(metric "$B_ADMIN" 'meshsim_proxy_tls_handshakes_total{kind="resumed"}')"
      hs="$(awk -v a="$f0" -v b="$f1" -v c="$r0" -v d="$r1" 'BEGIN { printf "%d / %d", b - a, d - c }')"
    fi
    if [ "$proxy" = haproxy ] && [ "$mode" != plaintext ]; then
      # HAProxy counts TLS connections and the share that resumed.
      conns="$(haproxy_info "$WORK/hb-$mode.sock" CumSslConns)"
      reuse="$(haproxy_info "$WORK/hb-$mode.sock" SslFrontendSessionReuse_pct)"
      hs="$conns connections, ${reuse}% resumed (whole run)"
    fi
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$proxy" "$mode" "$p50" "$added" "$per_req" "$errors" "$hs"
    stop_pair
  done
done

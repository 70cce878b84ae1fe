#!/usr/bin/env bash
# meshsim-proxy against HAProxy and nginx on loopback, one worker each, the
# same backend and the same load generator (`meshsim load`):
#
#   1. added latency per hop at low load (p50 through the proxy minus p50
#      direct, 1000 requests/s, constant arrivals);
#   2. proxy CPU time per request (utime + stime from /proc over a run at
#      a fixed rate, divided by the requests);
#   3. maximum throughput (closed loop, 64 connections);
#   4. the load generator's scheduling floor: send lag (actual - intended
#      send) p50 and p99 at 1k, 10k and 50k requests/s, direct to the backend;
#   5. the fake backend's sleep precision: p50 of a constant 1 ms service
#      time minus p50 of a 0 ms one, both direct at 300 requests/s.
#
# Usage: benches/proxy/run.sh [SECONDS_PER_RUN]   (default 5)
# Installs haproxy and nginx from Debian packages if they are missing.
# A benchmark, not a test: the figures depend on the machine and its load.
set -euo pipefail

SECS="${1:-5}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=benches/proxy/lib.sh
. "$ROOT/benches/proxy/lib.sh"
scratch meshsim-proxy-bench

need haproxy nginx

start_meshsim backend --workers 1
BACKEND="$ADDR"
BPORT="${BACKEND##*:}"

# --- the proxies, one worker each ---
start_meshsim proxy --workers 1 --upstream "$BACKEND"
MESH="$ADDR"
MESH_PID=$LAST_PID

HPORT="$(free_port)"
cat >"$WORK/haproxy.cfg" <<CFG
global
  nbthread 1
  maxconn 8000
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend fe
  bind 127.0.0.1:$HPORT
  default_backend be
backend be
  server s1 127.0.0.1:$BPORT
CFG
haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
PIDS+=($!)
HAPROXY_PID=$!
wait_port "$HPORT"

NPORT="$(free_port)"
nginx_conf "$NPORT" "$BPORT"
nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' >"$WORK/nginx.log" 2>&1 &
PIDS+=($!)
wait_port "$NPORT"
# The worker does the proxying; the master only supervises.
NGINX_PID="$(pgrep -P "$!" | head -1)"

echo "# meshsim proxy benchmark, $(date -u +%Y-%m-%d), $(nproc) cores, ${SECS}s per run"
echo "# $(haproxy -v | head -1); $(nginx -v 2>&1); meshsim $(git -C "$ROOT" rev-parse --short HEAD)"
echo

DIRECT="$(run_load direct "http://$BACKEND/" --rate 1000 --arrival constant)"
BASE_P50="$(field "$DIRECT" end_to_end p50_ms)"
echo "direct to the backend at 1000 rps: p50 ${BASE_P50} ms"
echo
echo "| proxy | p50 at 1k rps (ms) | added per hop (us) | CPU per request (us) | max throughput (rps, 64 conns) |"
echo "|---|---|---|---|---|"
for name in meshsim haproxy nginx; do
  case $name in
    meshsim) url="http://$MESH/"; pid=$MESH_PID ;;
    haproxy) url="http://127.0.0.1:$HPORT/"; pid=$HAPROXY_PID ;;
    nginx) url="http://127.0.0.1:$NPORT/"; pid=$NGINX_PID ;;
  esac
  low="$(run_load "$name-low" "$url" --rate 1000 --arrival constant)"
  p50="$(field "$low" end_to_end p50_ms)"
  added="$(awk -v a="$p50" -v b="$BASE_P50" 'BEGIN { printf "%.1f", (a - b) * 1000 }')"
  t0="$(cpu_ticks "$pid")"
  cpu="$(run_load "$name-cpu" "$url" --rate 5000 --arrival constant)"
  t1="$(cpu_ticks "$pid")"
  n="$(field "$cpu" end_to_end count)"
  # Ticks include the warm-up second: divide by every request sent.
  sent="$(awk -v n="$n" -v s="$SECS" 'BEGIN { print n * (s + 1) / s }')"
  per_req="$(awk -v d="$((t1 - t0))" -v hz="$HZ" -v n="$sent" 'BEGIN { printf "%.1f", d / hz / n * 1e6 }')"
  max="$(run_load "$name-max" "$url" --arrival closed --connections 64)"
  rps="$(field "$max" end_to_end throughput_rps)"
  printf '| %s | %s | %s | %s | %.0f |\n' "$name" "$p50" "$added" "$per_req" "$rps"
done
echo
echo "| load generator rate | send lag p50 (us) | send lag p99 (us) |"
echo "|---|---|---|"
for rate in 1000 10000 50000; do
  d="$(run_load "floor-$rate" "http://$BACKEND/" --rate "$rate" --arrival constant --connections 256)"
  p50="$(field "$d" load:send_lag p50_ms)"
  p99="$(field "$d" load:send_lag p99_ms)"
  awk -v r="$rate" -v a="$p50" -v b="$p99" 'BEGIN { printf "| %d | %.1f | %.1f |\n", r, a * 1000, b * 1000 }'
done
echo
start_meshsim backend --workers 1 --service-time 1ms
SLEEPER="$ADDR"
zero="$(run_load sleep-0ms "http://$BACKEND/" --rate 300)"
one="$(run_load sleep-1ms "http://$SLEEPER/" --rate 300)"
awk -v a="$(field "$one" end_to_end p50_ms)" -v b="$(field "$zero" end_to_end p50_ms)" \
  'BEGIN { printf "backend sleep: a 1 ms service time costs %.3f ms at p50, %.1f us over 1 ms\n", a - b, (a - b - 1) * 1000 }'

#!/usr/bin/env bash
# User-space instructions per proxied request, meshsim-proxy against nginx
# (one worker each, the same meshsim backend and load), counted by
# callgrind on the proxy process: unlike timings on a shared machine, the
# counts barely move between runs, so a change on the request path shows
# up even when it is a few percent.
#
# Each proxy runs under callgrind; 600 requests warm it up, the counters
# are zeroed, then 2,000 requests at 500/s (constant) are counted and the
# total is divided by the requests the load generator completed.
#
# Usage: benches/proxy/instructions.sh
# Installs valgrind and nginx from Debian packages if they are missing.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
SECS=4
# shellcheck source=benches/proxy/lib.sh
. "$ROOT/benches/proxy/lib.sh"
scratch meshsim-proxy-instructions

need valgrind nginx

start_meshsim backend --workers 1
BACKEND="$ADDR"
BPORT="${BACKEND##*:}"

# count NAME PORT PID: warm up, zero, count 2,000 requests, print Ir/request.
count() {
  local name="$1" port="$2" pid="$3"
  "$MESHSIM" load "http://127.0.0.1:$port/" --rate 200 --arrival constant \
    --duration 3s --warmup 0s --out "$WORK/warm-$name" >/dev/null 2>&1
  callgrind_control -z "$pid" >/dev/null 2>&1
  "$MESHSIM" load "http://127.0.0.1:$port/" --rate 500 --arrival constant \
    --duration 4s --warmup 0s --out "$WORK/count-$name" >/dev/null 2>&1
  callgrind_control -d "$pid" >/dev/null 2>&1
  sleep 1
  local n ir
  n="$(field "$WORK/count-$name" end_to_end count)"
  # The dump after the zeroing is the file's last part (`.1`).
  ir="$(awk '/^summary:|^totals:/ { print $2; exit }' "$WORK/cg-$name.out.1")"
  awk -v ir="$ir" -v n="$n" -v name="$name" \
    'BEGIN { printf "| %s | %d | %.0f |\n", name, n, ir / n }'
}

echo "# user-space instructions per request (callgrind), $(date -u +%Y-%m-%d)"
echo "# $(nginx -v 2>&1); meshsim $(git -C "$ROOT" rev-parse --short HEAD)"
echo
echo "| proxy | requests counted | instructions per request |"
echo "|---|---|---|"

MPORT="$(free_port)"
APORT="$(free_port)"
valgrind --tool=callgrind --callgrind-out-file="$WORK/cg-meshsim.out" \
  "$MESHSIM" proxy --workers 1 --upstream "$BACKEND" \
  --listen "127.0.0.1:$MPORT" --admin "127.0.0.1:$APORT" >"$WORK/proxy.log" 2>&1 &
PIDS+=($!)
MPID=$!
wait_port "$MPORT"
count meshsim "$MPORT" "$MPID"
kill "$MPID"

NPORT="$(free_port)"
nginx_conf "$NPORT" "$BPORT" "master_process off;"
valgrind --tool=callgrind --callgrind-out-file="$WORK/cg-nginx.out" \
  nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' >"$WORK/nginx.log" 2>&1 &
PIDS+=($!)
NPID=$!
wait_port "$NPORT"
count nginx "$NPORT" "$NPID"
kill "$NPID"

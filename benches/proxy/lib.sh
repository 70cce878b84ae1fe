# Shared by benches/proxy/*.sh (sourced, not run): a scratch directory
# with a cleanup, ports, starting meshsim processes, CPU ticks from /proc,
# load runs and summary.csv fields, nginx's configuration, and the
# programs a script needs. The caller sets ROOT and SECS (seconds per run),
# calls `scratch NAME` first, then `need PROGRAM...` (which sets MESHSIM).

# Sets WORK to a fresh directory under /tmp and PIDS to an empty array;
# on exit every PID in PIDS is killed and WORK removed.
scratch() {
  WORK="$(mktemp -d "/tmp/$1.XXXXXX")"
  PIDS=()
  trap cleanup EXIT INT TERM
}

cleanup() {
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Starts `meshsim ARGS` in the background (not in a subshell, so that its
# PID is recorded for the cleanup), waits for its readiness line and sets
# ADDR to the first address in it, ADMIN to the second (a proxy's admin
# listener) and LAST_PID to its PID.
start_meshsim() {
  local log="$WORK/$1-$RANDOM.out"
  "$MESHSIM" "$@" >"$log" 2>/dev/null &
  PIDS+=($!)
  LAST_PID=$!
  for _ in $(seq 100); do
    if grep -q "listening on" "$log" 2>/dev/null; then
      ADDR="$(grep -o '127\.0\.0\.1:[0-9]*' "$log" | sed -n 1p)"
      ADMIN="$(grep -o '127\.0\.0\.1:[0-9]*' "$log" | sed -n 2p)"
      return
    fi
    sleep 0.1
  done
  echo "meshsim $1 did not start" >&2
  exit 1
}

wait_port() {
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return; fi
    sleep 0.1
  done
  echo "nothing listens on port $1" >&2
  exit 1
}

# CPU ticks (utime + stime) of a process and its children threads.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ="$(getconf CLK_TCK)"

# run_load NAME URL ARGS... -> prints the run directory
run_load() {
  local name="$1" url="$2"
  shift 2
  local out="$WORK/load-$name-$RANDOM"
  "$MESHSIM" load "$url" --duration "${SECS}s" --warmup 1s --out "$out" "$@" >/dev/null
  echo "$out"
}

# field DIR SCOPE COLUMN -> value from summary.csv
field() {
  awk -F, -v scope="$2" -v col="$3" 'NR == 1 { for (i = 1; i <= NF; i++) idx[$i] = i; next }
    $1 == scope { print $(idx[col]) }' "$1/summary.csv"
}

# nginx_conf PORT BACKEND_PORT [EXTRA_MAIN_DIRECTIVE] -> writes
# $WORK/nginx/nginx.conf: one worker proxying 127.0.0.1:PORT to the backend
# over keep-alive HTTP/1.1, as every proxy benchmark configures it.
nginx_conf() {
  mkdir -p "$WORK/nginx"
  cat >"$WORK/nginx/nginx.conf" <<CFG
${3:-}
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 8000; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  upstream be { server 127.0.0.1:$2; keepalive 128; }
  server {
    listen 127.0.0.1:$1;
    location / {
      proxy_pass http://be;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
CFG
}

# need PROGRAM... -> installs the Debian packages of the same names if any
# is missing, then builds meshsim (release) and sets MESHSIM to it.
need() {
  local p missing=()
  for p in "$@"; do
    command -v "$p" >/dev/null || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing ${missing[*]} (Debian packages)" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
  fi
  (cd "$ROOT" && cargo build --release -q -p meshsim --bin meshsim)
  MESHSIM="$ROOT/target/release/meshsim"
}

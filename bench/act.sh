#!/usr/bin/env bash
# POST /act overhead (issue 6): what agentgate adds to an upstream call made through a connection.
#
#   bench/act.sh
#
# One run, two paths to the same upstream, measured alternately with the same wrk settings:
#   direct  wrk GET http://127.0.0.1:UPSTREAM/v1/ping  (nginx: return 200 '{"ok":true}')
#   /act    wrk POST /act {"connectionKey":"bench-1","api":{"method":"GET","path":"/v1/ping"}}
#           with a tenant token; agentgate resolves the connection, opens its sealed API key,
#           injects it as X-Api-Key and calls the same nginx location.
# For each connection count (low concurrency: added latency is what matters) it reports the
# medians of p50, p99 and req/s over the rounds, the added latency (/act minus direct) and the
# throughput ratio (/act / direct). Target: under 0.5 ms added at p50.
#
# Set-up, as a deployment would do it: `agentgate serve --allow-private-egress` on a fresh data
# directory; the first person to sign in (magic link from the server log) is the admin;
# `agentgate token --manager` and `agentgate token --tenantKey bench` mint the JWTs; the manager
# token makes a workspace connector (POST /connectors: baseUrl http://127.0.0.1:UPSTREAM, auth
# api_key in the X-Api-Key header) and the tenant token a connection with imported credentials
# (POST /connections {connectorKey, connectionKey, credentials: {apiKey}}).
#
# Writes a Markdown block to ACT_RESULTS (bench/results/act.md) and the raw wrk output to ACT_RAW
# (bench/results/act.log); bench/run.sh runs it as its section (5) and includes the block.
#
# Knobs (environment): AGENTGATE_BIN (a built agentgate binary; default: build one, Release, in
# AGENTGATE_BUILD_DIR, default build/), ACT_CONNECTIONS ("1 8"), ACT_ROUNDS (3), ACT_DURATION
# (wrk seconds, 5), ACT_RESULTS, ACT_RAW, ACT_ROWS (if set, the summary-table rows are also
# written there, for bench/run.sh), BENCH_KEEP=1 (keep the temp dir). About 70 s with the
# defaults. Needs: wrk, nginx, curl, jq (and cmake, ninja, a C++20 compiler without
# AGENTGATE_BIN). Every server listens on 127.0.0.1 only and is stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${AGENTGATE_BUILD_DIR:-$ROOT/build}
CONN_LIST=${ACT_CONNECTIONS:-1 8}
ROUNDS=${ACT_ROUNDS:-3}
DURATION=${ACT_DURATION:-5}
RESULTS=${ACT_RESULTS:-$ROOT/bench/results/act.md}
RAW=${ACT_RAW:-$ROOT/bench/results/act.log}
TENANT=bench
CONN_KEY=bench-1
PING_PATH=/v1/ping
PING_BODY='{"ok":true}'

for tool in wrk nginx curl jq; do
  command -v "$tool" >/dev/null || { echo "bench/act.sh: $tool is required" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/agentgate-act.XXXXXX")
PIDS=()
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"  # ours, cleanup, log, free_port, note_port, median, report.lua
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$(dirname "$RESULTS")" "$(dirname "$RAW")"
[[ -n "${ACT_RAW:-}" ]] || : >"$RAW"  # our own log starts empty; run.sh's is appended to
START=$(date +%s)
RUN_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# ---- binary ------------------------------------------------------------------------------------

if [[ -n "${AGENTGATE_BIN:-}" ]]; then
  BIN=$AGENTGATE_BIN
  [[ -x "$BIN" ]] || { echo "bench/act.sh: AGENTGATE_BIN=$BIN is not executable" >&2; exit 1; }
else
  command -v cmake >/dev/null || { echo "bench/act.sh: cmake is required (or set AGENTGATE_BIN)" >&2; exit 1; }
  log "build (Release, $BUILD)"
  cmake_args=(-S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release)
  [[ -f "$BUILD/CMakeCache.txt" ]] || cmake_args+=(-G Ninja)
  cmake "${cmake_args[@]}" >>"$RAW" 2>&1
  cmake --build "$BUILD" --target agentgate >>"$RAW" 2>&1 \
    || { tail -30 "$RAW" >&2; echo "build failed; AGENTGATE_BIN=path/to/agentgate skips it" >&2; exit 1; }
  BIN=$BUILD/agentgate
fi

# ---- helpers -----------------------------------------------------------------------------------

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }  # utime + stime, all threads
TICK=$(getconf CLK_TCK)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }

# POST /act with the tenant token (args: token, connection key, path).
cat >"$WORK/act.lua" <<'LUA'
function init(args)
  req = wrk.format("POST", "/act",
    { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. args[1] },
    '{"connectionKey":"' .. args[2] .. '","api":{"method":"GET","path":"' .. args[3] .. '"}}')
end
function request() return req end
LUA
cat "$WORK/report.lua" >>"$WORK/act.lua"

# run_wrk LABEL CONNS URL SCRIPT [script args...]: sets W_RPS W_P50 W_P99 W_BAD.
run_wrk() {
  local label=$1 conns=$2 url=$3 script=$4
  shift 4
  local threads=$((conns < 2 ? 1 : 2)) out="$WORK/wrk.out" line
  wrk -t"$threads" -c"$conns" -d"${DURATION}s" --latency -s "$script" "$url" ${1+-- "$@"} \
    >"$out" 2>&1
  { echo "-- $label"; cat "$out"; } >>"$RAW"
  line=$(grep '^WRK_RESULT' "$out") || { cat "$out" >&2; return 1; }
  W_REQ=$(sed -E 's/.* requests=([^ ]+).*/\1/' <<<"$line")
  W_RPS=$(sed -E 's/.* rps=([^ ]+).*/\1/' <<<"$line")
  W_P50=$(sed -E 's/.* p50_ms=([^ ]+).*/\1/' <<<"$line")
  W_P99=$(sed -E 's/.* p99_ms=([^ ]+).*/\1/' <<<"$line")
  W_BAD=$(sed -E 's/.* non2xx=([^ ]+) sockerr=([^ ]+).*/\1 + \2/' <<<"$line")
  W_BAD=$((W_BAD))
  printf '   %-26s %8.0f req/s  p50 %6.3f ms  p99 %6.3f ms  errors %s\n' \
    "$label" "$W_RPS" "$W_P50" "$W_P99" "$W_BAD" | tee -a "$RAW" >&2
}

# ---- upstream: nginx ---------------------------------------------------------------------------

UP_PORT=$(free_port)
NGX=$WORK/nginx
mkdir -p "$NGX/logs"
user=""
[[ $(id -u) == 0 ]] && user="user nobody nogroup;"
cat >"$NGX/nginx.conf" <<NGINX
$user
worker_processes 1;
daemon off;
pid $NGX/nginx.pid;
error_log $NGX/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $NGX/client_body;
  proxy_temp_path $NGX/proxy;
  fastcgi_temp_path $NGX/fastcgi;
  uwsgi_temp_path $NGX/uwsgi;
  scgi_temp_path $NGX/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 65s;
  server {
    listen 127.0.0.1:$UP_PORT;
    location $PING_PATH {
      default_type application/json;
      return 200 '$PING_BODY';
    }
  }
}
NGINX
nginx -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/logs/error.log" &
PIDS+=($!)
UPSTREAM="http://127.0.0.1:$UP_PORT"
for _ in $(seq 500); do curl -sf -o /dev/null "$UPSTREAM$PING_PATH" && break; sleep 0.01; done
[[ "$(curl -sf "$UPSTREAM$PING_PATH")" == "$PING_BODY" ]] \
  || { echo "nginx did not start; see $NGX/logs/error.log" >&2; exit 1; }

# ---- agentgate, connector, connection ----------------------------------------------------------

AG_PORT=$(free_port)
AG="http://127.0.0.1:$AG_PORT"
"$BIN" serve --listen "127.0.0.1:$AG_PORT" --data-dir "$WORK/data" --allow-private-egress \
  >"$WORK/agentgate.log" 2>&1 &
AG_PID=$!
PIDS+=("$AG_PID")
for _ in $(seq 3000); do
  curl -sf -o /dev/null --max-time 1 "$AG/health" && break
  kill -0 "$AG_PID" 2>/dev/null || { cat "$WORK/agentgate.log" >&2; exit 1; }
  sleep 0.01
done

COOKIE=$(sign_in "$AG" "$WORK/agentgate.log")  # the first person to sign in is the admin
# The CLI mints the JWTs; no saved login or environment credential may take part.
cli() {
  env -u AGENTGATE_TOKEN -u AGENTGATE_SESSION -u AGENTGATE_URL AGENTGATE_CONFIG="$WORK/cli.json" \
    "$BIN" --url "$AG" "$@"
}
MANAGER=$(cli token --manager --session "$COOKIE")
TENANT_TOKEN=$(cli token --tenantKey "$TENANT" --expiresIn 1h --session "$COOKIE")

post() {  # post PATH TOKEN BODY: prints the body; fails on a non-2xx answer
  curl -sS --fail-with-body -X POST -H "Authorization: Bearer $2" \
    -H 'Content-Type: application/json' -d "$3" "$AG$1"
}
post /connectors "$MANAGER" "$(jq -nc --arg url "$UPSTREAM" '{key: "bench-upstream",
  name: "Bench upstream (nginx)", baseUrl: $url,
  auth: {type: "api_key", header: "X-Api-Key", template: "{apiKey}"}}')" >>"$RAW"
echo >>"$RAW"
CONN=$(post /connections "$TENANT_TOKEN" "$(jq -nc --arg key "$CONN_KEY" '{connectorKey:
  "bench-upstream", connectionKey: $key, credentials: {apiKey: "bench-api-key-0123456789"}}')")
echo "$CONN" >>"$RAW"
[[ "$(jq -r .state <<<"$CONN")" == READY ]] || { echo "connection not READY: $CONN" >&2; exit 1; }
ACT_BODY="{\"connectionKey\":\"$CONN_KEY\",\"api\":{\"method\":\"GET\",\"path\":\"$PING_PATH\"}}"
ANSWER=$(post /act "$TENANT_TOKEN" "$ACT_BODY")
echo "/act answer: $ANSWER" >>"$RAW"
[[ "$(jq -c .output <<<"$ANSWER")" == "$PING_BODY" && "$(jq -r .status <<<"$ANSWER")" == 200 ]] \
  || { echo "unexpected /act answer: $ANSWER" >&2; exit 1; }

# ---- measure -----------------------------------------------------------------------------------

CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
NPROC=$(nproc)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
AG_VERSION=$("$BIN" --version 2>/dev/null | head -1 || true)
log "/act overhead: direct vs POST /act, connections: $CONN_LIST; $ROUNDS rounds of ${DURATION}s; load $LOAD_BEFORE"
DURATION_SAVED=$DURATION; DURATION=1
run_wrk "warm-up direct" 1 "$UPSTREAM$PING_PATH" "$WORK/report.lua"
run_wrk "warm-up /act" 1 "$AG" "$WORK/act.lua" "$TENANT_TOKEN" "$CONN_KEY" "$PING_PATH"
DURATION=$DURATION_SAVED

ROWS=""; SUMMARY=""; BAD_TOTAL=0
for c in $CONN_LIST; do
  D_RPS=(); D_P50=(); D_P99=(); A_RPS=(); A_P50=(); A_P99=(); A_CPU=(); ADDED=""
  for r in $(seq "$ROUNDS"); do
    run_wrk "direct  c=$c ($r/$ROUNDS)" "$c" "$UPSTREAM$PING_PATH" "$WORK/report.lua"
    D_RPS+=("$W_RPS"); D_P50+=("$W_P50"); D_P99+=("$W_P99"); BAD_TOTAL=$((BAD_TOTAL + W_BAD))
    t0=$(cpu_ticks "$AG_PID")
    run_wrk "/act    c=$c ($r/$ROUNDS)" "$c" "$AG" "$WORK/act.lua" "$TENANT_TOKEN" "$CONN_KEY" "$PING_PATH"
    t1=$(cpu_ticks "$AG_PID")
    A_RPS+=("$W_RPS"); A_P50+=("$W_P50"); A_P99+=("$W_P99"); BAD_TOTAL=$((BAD_TOTAL + W_BAD))
    A_CPU+=("$(awk -v t=$((t1 - t0)) -v hz="$TICK" -v n="$W_REQ" 'BEGIN { printf "%.0f", t / hz / n * 1e6 }')")
    ADDED+="$(minus "${A_P50[-1]}" "${D_P50[-1]}") "
  done
  d_rps=$(median "${D_RPS[@]}"); d_p50=$(median "${D_P50[@]}"); d_p99=$(median "${D_P99[@]}")
  a_rps=$(median "${A_RPS[@]}"); a_p50=$(median "${A_P50[@]}"); a_p99=$(median "${A_P99[@]}")
  a_cpu=$(median "${A_CPU[@]}")
  add50=$(minus "$a_p50" "$d_p50"); add99=$(minus "$a_p99" "$d_p99"); rr=$(ratio "$a_rps" "$d_rps")
  verdict=$(awk -v a="$add50" 'BEGIN { print (a < 0.5) ? "met" : "**missed**" }')
  ROWS+="| $c | $(printf %.0f "$d_rps") | $d_p50 | $d_p99 | $(printf %.0f "$a_rps") | $a_p50 | $a_p99 | **$add50** | $add99 | $rr | $a_cpu | $ADDED| $verdict |"$'\n'
  SUMMARY+="| POST /act overhead, $c connection$([[ $c == 1 ]] || echo s) | +$add50 ms p50, +$add99 ms p99 over direct; $rr x direct req/s ($(printf %.0f "$a_rps") vs $(printf %.0f "$d_rps")) | < 0.5 ms added at p50 | $verdict |"$'\n'
done
ACTIVITY=$(curl -sf "$AG/stats" | jq -c . 2>/dev/null || echo "{}")
echo "stats after: $ACTIVITY" >>"$RAW"
ELAPSED=$(($(date +%s) - START))

{
  echo "### (5) POST /act overhead: through a connection vs the upstream directly"
  echo
  echo "Run started $RUN_AT, \`bench/act.sh\` (${ELAPSED} s)$([[ -n "$AG_VERSION" ]] && echo ", $AG_VERSION")."
  echo "Machine: $NPROC x $CPU_MODEL; load average before: $LOAD_BEFORE. wrk, agentgate and nginx share the cores."
  echo
  echo "Upstream: nginx, 1 worker, \`location $PING_PATH { return 200 '$PING_BODY'; }\`. Direct: \`wrk GET $PING_PATH\`. /act: \`wrk POST /act {\"connectionKey\":\"$CONN_KEY\",\"api\":{\"method\":\"GET\",\"path\":\"$PING_PATH\"}}\` with a tenant token; agentgate (\`--allow-private-egress\`, defaults otherwise) resolves the connection, opens its sealed API key and calls the same location with it in X-Api-Key. wrk -t1 at 1 connection, -t2 above; ${DURATION} s runs, direct and /act alternating, medians of $ROUNDS rounds (ms)."
  echo
  echo "| conns | direct req/s | direct p50 | direct p99 | /act req/s | /act p50 | /act p99 | added p50 | added p99 | req/s ratio | agentgate CPU us per /act | added p50 per round | < 0.5 ms added p50 |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  printf '%s' "$ROWS"
  echo
  echo "Non-2xx answers and socket errors over all runs: $BAD_TOTAL. agentgate CPU per /act: user + system time of the server process (all threads, from /proc) over the run, divided by the requests wrk completed."
} | tee "$RESULTS"
[[ -z "${ACT_ROWS:-}" ]] || printf '%s' "$SUMMARY" >"$ACT_ROWS"

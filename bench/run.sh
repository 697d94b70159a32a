#!/usr/bin/env bash
# agentgate benchmark suite (issue 2, DESIGN.md "Performance budgets"). One command:
#
#   bench/run.sh
#
# builds a Release binary (reusing build/), seeds 1,000,000 grants over 100,000 agents, then runs
#   (1) HTTP GET /permission/check with wrk against nginx serving a static body of the same size,
#       alternating servers, in two variants: (A) one agent, rate limits off; (B) 10,000 agents
#       rotated by a wrk Lua script, default rate limits (check=1000/min per agent) left on;
#       (1b) variant A once more with wrk on CPU 0 and the server on CPU 1 (informational);
#   (2) the in-process decision benchmark (Google Benchmark);
#   (3) durable grants/s: 32 clients POST /permission/grant with a session cookie, then the count
#       is checked against the database after a SIGKILL and restart;
#   (4) start-up time and resident memory at 1,000,000 grants / 100,000 agents;
#   (5) POST /act overhead: bench/act.sh (a call through a connection against calling the same
#       local upstream, nginx, directly; added p50/p99 and the throughput ratio).
# and prints a Markdown results block, also written to bench/results/latest.md (raw tool output
# goes to bench/results/latest.log). Every server listens on 127.0.0.1 only; everything started
# here is stopped, and the temporary directory removed, on exit.
#
# Knobs (environment): BENCH_DURATION (wrk seconds, 10), BENCH_ROUNDS (3), BENCH_CONNECTIONS
# (32), BENCH_AGENTS (100000), BENCH_GRANTS_PER_AGENT (10), BENCH_KEEP=1 (keep the temp dir),
# AGENTGATE_BUILD_DIR (build), BENCH_ACT=0 (skip section 5; bench/act.sh's own ACT_* knobs are
# passed on). Needs: cmake, ninja, a C++20 compiler, libbenchmark-dev, wrk, nginx (nginx-light is
# enough), curl, jq, sqlite3.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${AGENTGATE_BUILD_DIR:-$ROOT/build}
DURATION=${BENCH_DURATION:-10}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNECTIONS:-32}
AGENTS=${BENCH_AGENTS:-100000}
GPA=${BENCH_GRANTS_PER_AGENT:-10}
ROTATE_AGENTS=10000
RESULTS_DIR=$ROOT/bench/results
RESULTS=$RESULTS_DIR/latest.md
RAW=$RESULTS_DIR/latest.log

for tool in cmake wrk nginx curl jq sqlite3; do
  command -v "$tool" >/dev/null || { echo "bench/run.sh: $tool is required" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/agentgate-bench.XXXXXX")
PIDS=()  # servers this script started and has not stopped yet
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"  # ours, cleanup, log, free_port, note_port, median, report.lua
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$RESULTS_DIR"
: >"$RAW"
SUITE_START=$(date +%s)
RUN_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# ---- helpers -----------------------------------------------------------------------------------

now_ns() { date +%s%N; }

forget_pid() {
  local keep=() p
  for p in "${PIDS[@]}"; do [[ "$p" == "$1" ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

stop_pid() {  # stop_pid PID [SIGNAL]: signal, wait up to 20 s, then SIGKILL
  local pid=$1 sig=${2:-TERM}
  if ours "$pid"; then
    kill "-$sig" "$pid" 2>/dev/null || true
    for _ in $(seq 200); do ours "$pid" || break; sleep 0.1; done
    if ours "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  { wait "$pid"; } 2>/dev/null || true  # braces: also silences bash's "Killed" notice
  forget_pid "$pid"
}

wait_health() {  # wait_health PORT PID: polls GET /health every 10 ms for up to 60 s
  local port=$1 pid=$2
  for _ in $(seq 6000); do
    if curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$port/health"; then return 0; fi
    kill -0 "$pid" 2>/dev/null || { echo "server $pid exited during start-up" >&2; return 1; }
    sleep 0.01
  done
  echo "server on port $port did not become healthy" >&2
  return 1
}

# start_agentgate NAME DATA_DIR PORT [flags...]: starts the server; sets AG_PID.
start_agentgate() {
  local name=$1 dir=$2 port=$3
  shift 3
  "$BUILD/agentgate" serve --listen "127.0.0.1:$port" --data-dir "$dir" "$@" \
    >>"$WORK/$name.log" 2>&1 &
  AG_PID=$!
  PIDS+=("$AG_PID")
}

# settle READY_NS: waits until 11 s after a server answered its first /health, past its first
# housekeeping pass (prune + sweep of the whole index, 10 s after the load), so that no measured
# run pays for it.
settle() {
  local left_ms=$(((11000000000 - ($(now_ns) - $1)) / 1000000))
  if ((left_ms > 0)); then sleep "$(awk -v m="$left_ms" 'BEGIN { printf "%.3f", m / 1000 }')"; fi
}

kb_field() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
mb() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }

# run_wrk LABEL URL SCRIPT [script args...] [-- extra wrk flags]: runs wrk, appends the raw output
# to the log, and sets W_RPS W_P50 W_P99 (ms) W_BAD (non-2xx/3xx) W_ERR (socket errors).
run_wrk() {
  local label=$1 url=$2 script=$3
  shift 3
  local extra=() args=()
  while (($#)); do
    if [[ "$1" == "--" ]]; then shift; extra=("$@"); break; fi
    args+=("$1"); shift
  done
  local out="$WORK/wrk.out"
  ${WRK_PREFIX:-} wrk -t"${WRK_THREADS:-2}" -c"$CONNS" -d"${DURATION}s" --latency "${extra[@]}" \
    -s "$script" "$url" ${args[@]+-- "${args[@]}"} >"$out" 2>&1
  { echo "-- $label"; cat "$out"; } >>"$RAW"
  local line
  line=$(grep '^WRK_RESULT' "$out") || { cat "$out" >&2; return 1; }
  W_RPS=$(sed -E 's/.* rps=([^ ]+).*/\1/' <<<"$line")
  W_P50=$(sed -E 's/.* p50_ms=([^ ]+).*/\1/' <<<"$line")
  W_P99=$(sed -E 's/.* p99_ms=([^ ]+).*/\1/' <<<"$line")
  W_BAD=$(sed -E 's/.* non2xx=([^ ]+).*/\1/' <<<"$line")
  W_ERR=$(sed -E 's/.* sockerr=([^ ]+).*/\1/' <<<"$line")
  W_LINE=$line
  printf '   %-34s %9.0f req/s  p50 %6.3f ms  p99 %6.3f ms  non-2xx %s  socket errors %s\n' \
    "$label" "$W_RPS" "$W_P50" "$W_P99" "$W_BAD" "$W_ERR" | tee -a "$RAW" >&2
}

# ---- wrk scripts -------------------------------------------------------------------------------

# GET /permission/check rotating over "agent_id secret action" lines (args: file, count).
cat >"$WORK/rotate.lua" <<'LUA'
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
function init(args)
  reqs = {}
  local limit = tonumber(args[2]) or 1e9
  for line in io.lines(args[1]) do
    local id, secret, action = line:match("^(%S+) (%S+) (%S+)$")
    if id and #reqs < limit then
      reqs[#reqs + 1] = wrk.format("GET", "/permission/check?agent_id=" .. id .. "&action=" ..
                                   action, { ["Authorization"] = "Bearer " .. secret })
    end
  end
  i = ((tid or 0) * 4973) % #reqs
end
function request()
  i = i % #reqs + 1
  return reqs[i]
end
LUA
cat "$WORK/report.lua" >>"$WORK/rotate.lua"

# POST /permission/grant with the session cookie, one new action per request, spread over the
# agents of the file (args: cookie value, file, agent count). Counts 201s per thread.
cat >"$WORK/grant.lua" <<'LUA'
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
function init(args)
  headers = { ["Content-Type"] = "application/json", ["Cookie"] = "ap_session=" .. args[1] }
  agents = {}
  local limit = tonumber(args[3]) or 1000
  for line in io.lines(args[2]) do
    local id = line:match("^(%S+)")
    if id and #agents < limit then agents[#agents + 1] = id end
  end
  n, created, other = 0, 0, 0
end
function request()
  n = n + 1
  local agent = agents[((tid or 0) * 7919 + n) % #agents + 1]
  return wrk.format("POST", "/permission/grant", headers,
    '{"agent_id":"' .. agent .. '","action":"bench.grant.t' .. (tid or 0) .. '.n' .. n .. '"}')
end
function response(status, headers, body)
  if status == 201 then created = created + 1 else other = other + 1 end
end
LUA
cat >>"$WORK/grant.lua" <<'LUA'
local report_done = nil
LUA
sed 's/^function done(/function report_done(/' "$WORK/report.lua" >>"$WORK/grant.lua"
cat >>"$WORK/grant.lua" <<'LUA'
function done(summary, latency, requests)
  local c, o = 0, 0
  for _, t in ipairs(threads) do
    c = c + (t:get("created") or 0)
    o = o + (t:get("other") or 0)
  end
  io.write(string.format("WRK_GRANTS created=%d other=%d\n", c, o))
  report_done(summary, latency, requests)
end
LUA

# ---- build -------------------------------------------------------------------------------------

log "build (Release, $BUILD)"
cmake_args=(-S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DAGENTGATE_BUILD_BENCH=ON)
[[ -f "$BUILD/CMakeCache.txt" ]] || cmake_args+=(-G Ninja)
cmake "${cmake_args[@]}" >>"$RAW" 2>&1
cmake --build "$BUILD" --target agentgate agentgate_seed agentgate_bench_decision >>"$RAW" 2>&1 \
  || { tail -30 "$RAW" >&2; echo "build failed (is libbenchmark-dev installed?)" >&2; exit 1; }

# ---- machine -----------------------------------------------------------------------------------

CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
NPROC=$(nproc)
MEM_GB=$(awk '/^MemTotal/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
KERNEL=$(uname -r)
GIT_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if git -C "$ROOT" status --porcelain 2>/dev/null | grep -q .; then GIT_REV="$GIT_REV (+ local changes)"; fi
log "machine: $NPROC x $CPU_MODEL, $MEM_GB GiB, load average $LOAD_BEFORE"
if awk -v l="${LOAD_BEFORE%% *}" -v n="$NPROC" 'BEGIN { exit !(l > n / 2) }'; then
  log "note: load average $LOAD_BEFORE before the start; other work on the machine makes results noisy"
fi

# ---- seed --------------------------------------------------------------------------------------

SEED=$WORK/seed
log "seed: $AGENTS agents x $GPA grants (bulk: schema by the Store's migrations, rows in one transaction)"
SEED_OUT=$("$BUILD/agentgate_seed" --data-dir "$SEED" --agents "$AGENTS" --grants-per-agent "$GPA" \
  --bulk --secrets-out "$WORK/secrets.txt" --secrets-count "$ROTATE_AGENTS")
echo "$SEED_OUT" | tee -a "$RAW" >&2
SEED_S=$(sed -nE 's/.* in ([0-9.]+) s .*/\1/p' <<<"$SEED_OUT")
read -r AGENT_ID AGENT_SECRET AGENT_ACTION < "$WORK/secrets.txt"
GRANTS_TOTAL=$((AGENTS * GPA))
((ROTATE_AGENTS <= AGENTS)) || ROTATE_AGENTS=$AGENTS

# ---- (1) HTTP ----------------------------------------------------------------------------------

log "(1) HTTP GET /permission/check: wrk -t2 -c$CONNS -d${DURATION}s, $ROUNDS rounds"
cp -r "$SEED" "$WORK/http-a"
cp -r "$SEED" "$WORK/http-b"
PORT_A=$(free_port); note_port "$PORT_A"
start_agentgate http-a "$WORK/http-a" "$PORT_A" --no-rate-limits
PID_A=$AG_PID
PORT_B=$(free_port); note_port "$PORT_B"
start_agentgate http-b "$WORK/http-b" "$PORT_B"
PID_B=$AG_PID
wait_health "$PORT_A" "$PID_A"
wait_health "$PORT_B" "$PID_B"
READY_AB=$(now_ns)

CHECK_PATH="/permission/check?agent_id=$AGENT_ID&action=$AGENT_ACTION"
BODY=$(curl -sf -H "Authorization: Bearer $AGENT_SECRET" "http://127.0.0.1:$PORT_A$CHECK_PATH")
[[ "$BODY" == '{"allowed":true'* ]] || { echo "unexpected check answer: $BODY" >&2; exit 1; }
BODY_B=$(curl -sf -H "Authorization: Bearer $AGENT_SECRET" "http://127.0.0.1:$PORT_B$CHECK_PATH")
[[ "$BODY_B" == '{"allowed":true'* ]] || { echo "unexpected check answer: $BODY_B" >&2; exit 1; }
BODY_BYTES=${#BODY}
AG_HEADERS=$(curl -s -o /dev/null -D - -H "Authorization: Bearer $AGENT_SECRET" \
  "http://127.0.0.1:$PORT_A$CHECK_PATH" | wc -c)
echo "agentgate answer ($BODY_BYTES bytes): $BODY" >>"$RAW"

# nginx: its own prefix, pid, logs and temp paths; the same body, byte for byte.
# start_nginx DIR PORT WORKERS [cpu list]: sets NGX_PID.
start_nginx() {
  local dir=$1 port=$2 workers=$3 cpus=${4:-}
  local user=""
  [[ $(id -u) == 0 ]] && user="user nobody nogroup;"
  mkdir -p "$dir/logs"
  cat >"$dir/nginx.conf" <<NGINX
$user
worker_processes $workers;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $dir/client_body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 65s;
  server {
    listen 127.0.0.1:$port reuseport;
    location / {
      default_type application/json;
      return 200 '$BODY';
    }
  }
}
NGINX
  if [[ -n "$cpus" ]]; then
    taskset -c "$cpus" nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log" &
  else
    nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log" &
  fi
  NGX_PID=$!
  PIDS+=("$NGX_PID")
  for _ in $(seq 500); do curl -sf -o /dev/null "http://127.0.0.1:$port/" && return 0; sleep 0.01; done
  echo "nginx did not start; see $dir/logs/error.log" >&2
  return 1
}
PORT_N=$(free_port); note_port "$PORT_N"
start_nginx "$WORK/nginx" "$PORT_N" 2
PID_N=$NGX_PID
NGX_BODY=$(curl -sf "http://127.0.0.1:$PORT_N$CHECK_PATH")
[[ ${#NGX_BODY} == "$BODY_BYTES" ]] || { echo "nginx body size differs" >&2; exit 1; }
NGX_HEADERS=$(curl -s -o /dev/null -D - "http://127.0.0.1:$PORT_N$CHECK_PATH" | wc -c)

settle "$READY_AB"
declare -a N_RPS N_P50 N_P99 A_RPS A_P50 A_P99 NL_RPS NL_P50 NL_P99 B_RPS B_P50 B_P99
BAD_TOTAL=0
AUTH=(-H "Authorization: Bearer $AGENT_SECRET")
for r in $(seq "$ROUNDS"); do
  log "round $r/$ROUNDS"
  run_wrk "nginx (static request)" "http://127.0.0.1:$PORT_N$CHECK_PATH" "$WORK/report.lua" -- "${AUTH[@]}"
  N_RPS+=("$W_RPS"); N_P50+=("$W_P50"); N_P99+=("$W_P99")
  run_wrk "agentgate A (1 agent, limits off)" "http://127.0.0.1:$PORT_A$CHECK_PATH" "$WORK/report.lua" -- "${AUTH[@]}"
  A_RPS+=("$W_RPS"); A_P50+=("$W_P50"); A_P99+=("$W_P99"); BAD_TOTAL=$((BAD_TOTAL + W_BAD + W_ERR))
  run_wrk "nginx (Lua rotation)" "http://127.0.0.1:$PORT_N" "$WORK/rotate.lua" "$WORK/secrets.txt" "$ROTATE_AGENTS"
  NL_RPS+=("$W_RPS"); NL_P50+=("$W_P50"); NL_P99+=("$W_P99")
  run_wrk "agentgate B ($ROTATE_AGENTS agents, limits on)" "http://127.0.0.1:$PORT_B" "$WORK/rotate.lua" "$WORK/secrets.txt" "$ROTATE_AGENTS"
  B_RPS+=("$W_RPS"); B_P50+=("$W_P50"); B_P99+=("$W_P99"); BAD_TOTAL=$((BAD_TOTAL + W_BAD + W_ERR))
done
# The checks were counted (and recorded) for real.
CHECKS_A=$(curl -sf "http://127.0.0.1:$PORT_A/stats" | jq -r .checks_total)
CHECKS_B=$(curl -sf "http://127.0.0.1:$PORT_B/stats" | jq -r .checks_total)
stop_pid "$PID_A"; stop_pid "$PID_B"; stop_pid "$PID_N" QUIT
RECORDS_A=$(sqlite3 "$WORK/http-a/agentgate.db" "SELECT count(*) FROM activity WHERE action = 'permission.check'")
rm -rf "$WORK/http-a" "$WORK/http-b"

# (1b) The same A request with the load generator and the server on separate cores: wrk -t1 on
# CPU 0; nginx (1 worker) and agentgate (--threads 1, all its threads) on CPU 1. Informational:
# shows how much of the p99 above comes from wrk and the server sharing cores.
PINNED=0
if [[ $NPROC -ge 2 ]] && command -v taskset >/dev/null; then
  PINNED=1
  log "(1b) pinned: wrk -t1 on CPU 0, server on CPU 1 (1 nginx worker / agentgate --threads 1)"
  PORT_P=$(free_port); note_port "$PORT_P"
  cp -r "$SEED" "$WORK/http-p"
  start_agentgate http-p "$WORK/http-p" "$PORT_P" --threads 1 --no-rate-limits
  PID_P=$AG_PID
  wait_health "$PORT_P" "$PID_P"
  READY_P=$(now_ns)
  taskset -a -p -c 1 "$PID_P" >/dev/null
  PORT_NP=$(free_port); note_port "$PORT_NP"
  start_nginx "$WORK/nginx-pinned" "$PORT_NP" 1 1
  PID_NP=$NGX_PID
  settle "$READY_P"
  # Shorter runs, alternating, medians: one noisy run would otherwise decide the figure.
  declare -a PN_RPS PN_P50 PN_P99 PA_RPS PA_P50 PA_P99
  DURATION_SAVED=$DURATION; DURATION=$(((DURATION + 1) / 2))
  for r in $(seq "$ROUNDS"); do
    WRK_PREFIX="taskset -c 0" WRK_THREADS=1 run_wrk "nginx, pinned ($r/$ROUNDS)" \
      "http://127.0.0.1:$PORT_NP$CHECK_PATH" "$WORK/report.lua" -- "${AUTH[@]}"
    PN_RPS+=("$W_RPS"); PN_P50+=("$W_P50"); PN_P99+=("$W_P99")
    WRK_PREFIX="taskset -c 0" WRK_THREADS=1 run_wrk "agentgate A, pinned ($r/$ROUNDS)" \
      "http://127.0.0.1:$PORT_P$CHECK_PATH" "$WORK/report.lua" -- "${AUTH[@]}"
    PA_RPS+=("$W_RPS"); PA_P50+=("$W_P50"); PA_P99+=("$W_P99")
    BAD_TOTAL=$((BAD_TOTAL + W_BAD + W_ERR))
  done
  PIN_DURATION=$DURATION; DURATION=$DURATION_SAVED
  P_N_RPS=$(median "${PN_RPS[@]}"); P_N_P50=$(median "${PN_P50[@]}"); P_N_P99=$(median "${PN_P99[@]}")
  P_A_RPS=$(median "${PA_RPS[@]}"); P_A_P50=$(median "${PA_P50[@]}"); P_A_P99=$(median "${PA_P99[@]}")
  stop_pid "$PID_P"; stop_pid "$PID_NP" QUIT
  rm -rf "$WORK/http-p"
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
HN_RPS=$(median "${N_RPS[@]}"); HN_P50=$(median "${N_P50[@]}"); HN_P99=$(median "${N_P99[@]}")
HA_RPS=$(median "${A_RPS[@]}"); HA_P50=$(median "${A_P50[@]}"); HA_P99=$(median "${A_P99[@]}")
HNL_RPS=$(median "${NL_RPS[@]}"); HNL_P50=$(median "${NL_P50[@]}"); HNL_P99=$(median "${NL_P99[@]}")
HB_RPS=$(median "${B_RPS[@]}"); HB_P50=$(median "${B_P50[@]}"); HB_P99=$(median "${B_P99[@]}")
RATIO_A=$(ratio "$HA_RPS" "$HN_RPS")
RATIO_B=$(ratio "$HB_RPS" "$HNL_RPS")
ROUND_RATIOS_A=""; ROUND_RATIOS_B=""
for i in "${!A_RPS[@]}"; do
  ROUND_RATIOS_A+="$(ratio "${A_RPS[$i]}" "${N_RPS[$i]}") "
  ROUND_RATIOS_B+="$(ratio "${B_RPS[$i]}" "${NL_RPS[$i]}") "
done

# ---- (2) decision ------------------------------------------------------------------------------

log "(2) in-process decision benchmark ($AGENTS agents x $GPA grants)"
"$BUILD/agentgate_bench_decision" --agents "$AGENTS" --grants-per-agent "$GPA" \
  --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
  --benchmark_out="$WORK/decision.json" --benchmark_out_format=json 2>&1 | tee -a "$RAW" >&2
# name, median real ns, median cpu ns, decisions/s (summed over threads)
DECISION_ROWS=$(jq -r '.benchmarks[] | select(.aggregate_name == "median") |
  select(.run_name | startswith("Decide/") or startswith("Check/")) |
  "\(.run_name)\t\(.real_time)\t\(.cpu_time)\t\(.items_per_second // 0)"' "$WORK/decision.json")
DRAIN_US=$(jq -r '[.benchmarks[] | select(.aggregate_name == "median" and
  .run_name == "Index/DrainLastSeen")][0].real_time // 0' "$WORK/decision.json")
DECIDE_NS=$(awk -F'\t' '$1 == "Decide/allowed" { print $2 }' <<<"$DECISION_ROWS")
CHECK_SHA_NS=$(awk -F'\t' '$1 == "Check/sha256" { print $2 }' <<<"$DECISION_ROWS")
CONTEXT_NS=$(awk -F'\t' '$1 == "Check/context_allowed" { print $2 }' <<<"$DECISION_ROWS")
# Single-thread cases at or over the 1 us budget.
DECISION_OVER=$(awk -F'\t' '$1 !~ /threads/ && $2 >= 1000 { printf "%s%s", sep, $1; sep = ", " }' <<<"$DECISION_ROWS")

# ---- (3) durable grants ------------------------------------------------------------------------

log "(3) durable grants: $CONNS clients POST /permission/grant for ${DURATION}s"
cp -r "$SEED" "$WORK/grants"
PORT_G=$(free_port); note_port "$PORT_G"
start_agentgate grants "$WORK/grants" "$PORT_G"
PID_G=$AG_PID
wait_health "$PORT_G" "$PID_G"
COOKIE=$(sign_in "http://127.0.0.1:$PORT_G" "$WORK/grants.log")
G_BEFORE=$(curl -sf "http://127.0.0.1:$PORT_G/stats" | jq -r .permissions_granted)
run_wrk "agentgate POST /permission/grant" "http://127.0.0.1:$PORT_G" "$WORK/grant.lua" \
  "$COOKIE" "$WORK/secrets.txt" 1000
G_LINE=$(grep '^WRK_GRANTS' "$WORK/wrk.out")
G_CREATED=$(sed -E 's/.*created=([0-9]+).*/\1/' <<<"$G_LINE")
G_OTHER=$(sed -E 's/.*other=([0-9]+).*/\1/' <<<"$G_LINE")
G_P50=$W_P50; G_P99=$W_P99
G_RATE=$(awk -v c="$G_CREATED" -v d="$DURATION" 'BEGIN { printf "%.0f", c / d }')
sleep 0.5  # requests wrk abandoned at its deadline finish on the server
G_AFTER=$(curl -sf "http://127.0.0.1:$PORT_G/stats" | jq -r .permissions_granted)
# Crash, not a clean stop: what was answered 201 must already be on disk.
stop_pid "$PID_G" KILL
start_agentgate grants "$WORK/grants" "$PORT_G"
PID_G=$AG_PID
wait_health "$PORT_G" "$PID_G"
G_RESTART=$(curl -sf "http://127.0.0.1:$PORT_G/stats" | jq -r .permissions_granted)
G_LOADED=$(grep -o 'loaded [0-9]* agents and [0-9]* active grants' "$WORK/grants.log" | tail -1)
stop_pid "$PID_G"
G_DB=$(sqlite3 "$WORK/grants/agentgate.db" "SELECT count(*) FROM grants WHERE action LIKE 'bench.grant.%'")
G_INFLIGHT=$((G_DB - G_CREATED))
if ((G_RESTART - G_BEFORE == G_DB && G_AFTER == G_RESTART && G_INFLIGHT >= 0 && G_INFLIGHT <= CONNS && G_OTHER == 0)); then
  G_VERDICT="consistent"
else
  G_VERDICT="INCONSISTENT"
fi
rm -rf "$WORK/grants"

# ---- (4) start-up and memory -------------------------------------------------------------------

log "(4) start-up and memory at $GRANTS_TOTAL grants / $AGENTS agents"
PORT_M=$(free_port); note_port "$PORT_M"
T0=$(now_ns)
start_agentgate memory "$SEED" "$PORT_M"
PID_M=$AG_PID
wait_health "$PORT_M" "$PID_M"
T1=$(now_ns)
STARTUP_MS=$(((T1 - T0) / 1000000))
LOADED_LINE=$(grep -o 'loaded [0-9]* agents and [0-9]* active grants in [0-9]* ms' "$WORK/memory.log" | tail -1)
LOAD_MS=$(sed -E 's/.* in ([0-9]+) ms/\1/' <<<"$LOADED_LINE")
RSS_START=$(kb_field "$PID_M" VmRSS); HWM_START=$(kb_field "$PID_M" VmHWM)
LOAD_S=5
DURATION_SAVED=$DURATION; DURATION=$LOAD_S
run_wrk "agentgate checks after start-up" "http://127.0.0.1:$PORT_M" "$WORK/rotate.lua" "$WORK/secrets.txt" "$ROTATE_AGENTS"
DURATION=$DURATION_SAVED
sleep 1.5  # one bookkeeping flush
RSS_LOAD=$(kb_field "$PID_M" VmRSS); HWM_LOAD=$(kb_field "$PID_M" VmHWM)
stop_pid "$PID_M"
echo "start-up $STARTUP_MS ms; $LOADED_LINE; VmRSS $RSS_START kB, VmHWM $HWM_START kB; after load VmRSS $RSS_LOAD kB, VmHWM $HWM_LOAD kB" >>"$RAW"

# ---- (5) POST /act overhead ----------------------------------------------------------------------

ACT_MD=$WORK/act.md
ACT_ROWS_MD=$WORK/act-rows.md
: >"$ACT_MD"; : >"$ACT_ROWS_MD"
if [[ "${BENCH_ACT:-1}" != 0 ]]; then
  log "(5) POST /act overhead (bench/act.sh)"
  AGENTGATE_BIN="$BUILD/agentgate" ACT_RAW="$RAW" ACT_RESULTS="$ACT_MD" ACT_ROWS="$ACT_ROWS_MD" \
    "$ROOT/bench/act.sh" >/dev/null
fi

# ---- report ------------------------------------------------------------------------------------

pass() { if awk "BEGIN { exit !($1) }"; then echo "met"; else echo "**missed**"; fi; }
SUITE_S=$(($(date +%s) - SUITE_START))
{
  echo "## agentgate benchmark results"
  echo
  echo "Run started $RUN_AT, commit $GIT_REV, \`bench/run.sh\` (${SUITE_S} s)."
  echo "Machine: $NPROC x $CPU_MODEL, $MEM_GB GiB RAM, Linux $KERNEL; load average before the run: $LOAD_BEFORE."
  echo "Load generator and servers share the same $NPROC cores. Data: $AGENTS agents x $GPA grants = $GRANTS_TOTAL active grants, seeded in ${SEED_S} s."
  echo
  echo "| Benchmark | Result | Target | |"
  echo "|---|---|---|---|"
  echo "| HTTP check, 1 agent, rate limits off (A) | $RATIO_A x nginx ($(printf %.0f "$HA_RPS") vs $(printf %.0f "$HN_RPS") req/s), p99 $HA_P99 ms | >= 0.6 x nginx, p99 < 1 ms | ratio $(pass "$RATIO_A >= 0.6"), p99 $(pass "$HA_P99 < 1") |"
  echo "| HTTP check, $ROTATE_AGENTS agents, default limits (B) | $RATIO_B x nginx ($(printf %.0f "$HB_RPS") vs $(printf %.0f "$HNL_RPS") req/s), p99 $HB_P99 ms | >= 0.6 x nginx, p99 < 1 ms | ratio $(pass "$RATIO_B >= 0.6"), p99 $(pass "$HB_P99 < 1") |"
  echo "| Decision in-process (median, 1 thread) | Decide $(printf %.0f "$DECIDE_NS") ns; Check incl. SHA-256 $(printf %.0f "$CHECK_SHA_NS") ns; Check with a scope context $(printf %.0f "$CONTEXT_NS") ns | < 1 us | Decide $(pass "$DECIDE_NS < 1000")$([[ -n "$DECISION_OVER" ]] && echo "; **over 1 us: $DECISION_OVER**") |"
  echo "| Durable grants, $CONNS clients | $G_RATE grants/s (p50 $G_P50 ms, p99 $G_P99 ms) | >= 5,000/s | $(pass "$G_RATE >= 5000") |"
  echo "| Start-up, $GRANTS_TOTAL grants | ${STARTUP_MS} ms exec to /health (load ${LOAD_MS} ms) | < 3 s | $(pass "$STARTUP_MS < 3000") |"
  echo "| Resident memory, $GRANTS_TOTAL grants | $(mb "$RSS_START") MB after start-up, $(mb "$RSS_LOAD") MB after checks (peak $(mb "$HWM_LOAD") MB) | < 512 MB | $(pass "$HWM_LOAD < 524288") |"
  cat "$ACT_ROWS_MD"
  echo
  echo "### (1) HTTP GET /permission/check, wrk -t2 -c$CONNS -d${DURATION}s, medians of $ROUNDS alternating rounds"
  echo
  echo "Body: $BODY_BYTES bytes, identical for both servers (nginx: \`return 200 '...'\`, 2 workers, \`reuseport\`, access log off). Response headers: agentgate $AG_HEADERS bytes, nginx $NGX_HEADERS bytes (agentgate adds X-Request-Id and CORS headers, and in B the RateLimit headers). Check records on in both agentgate variants."
  echo
  echo "| Server | req/s | p50 ms | p99 ms | ratio | per-round ratios |"
  echo "|---|---|---|---|---|---|"
  echo "| nginx, static wrk request | $(printf %.0f "$HN_RPS") | $HN_P50 | $HN_P99 | | |"
  echo "| agentgate A: 1 agent, \`--no-rate-limits\` | $(printf %.0f "$HA_RPS") | $HA_P50 | $HA_P99 | $RATIO_A | $ROUND_RATIOS_A|"
  echo "| nginx, same Lua rotation as B | $(printf %.0f "$HNL_RPS") | $HNL_P50 | $HNL_P99 | | |"
  echo "| agentgate B: $ROTATE_AGENTS agents rotated, default limits (check=1000/min/agent) | $(printf %.0f "$HB_RPS") | $HB_P50 | $HB_P99 | $RATIO_B | $ROUND_RATIOS_B|"
  if ((PINNED)); then
    echo "| pinned (${PIN_DURATION} s runs): nginx, 1 worker on CPU 1, wrk -t1 on CPU 0 | $(printf %.0f "$P_N_RPS") | $P_N_P50 | $P_N_P99 | | |"
    echo "| pinned (${PIN_DURATION} s runs): agentgate A, \`--threads 1\` on CPU 1, wrk -t1 on CPU 0 | $(printf %.0f "$P_A_RPS") | $P_A_P50 | $P_A_P99 | $(ratio "$P_A_RPS" "$P_N_RPS") | $(for i in "${!PA_RPS[@]}"; do printf '%s ' "$(ratio "${PA_RPS[$i]}" "${PN_RPS[$i]}")"; done)|"
  fi
  echo
  echo "A runs with rate limits off because one agent at $CONNS connections exceeds check=1000/min; B keeps the default limits and spreads the load over $ROTATE_AGENTS agents with a wrk Lua script, so each agent stays under its limit. Non-2xx answers and socket errors across all agentgate runs: $BAD_TOTAL. /stats checks_total afterwards: A $CHECKS_A, B $CHECKS_B; check records written by A: $RECORDS_A."
  echo
  echo "### (2) In-process decision, $GRANTS_TOTAL grants over $AGENTS agents (Google Benchmark, median of 5 repetitions)"
  echo
  echo "| Case | median real ns | median cpu ns | decisions/s (all threads) |"
  echo "|---|---|---|---|"
  while IFS=$'\t' read -r name real cpu items; do
    printf '| %s | %.0f | %.0f | %.2f M |\n' "$name" "$real" "$cpu" "$(awk -v i="$items" 'BEGIN { print i / 1e6 }')"
  done <<<"$DECISION_ROWS"
  echo
  echo "Times are per decision on one thread, except the threads:2 row: two threads decide at once and its time is wall time divided by the decisions of both (its decisions/s is the sum)."
  echo "Not a decision, measured alongside: PermissionIndex::DrainLastSeen(), which the bookkeeping flush calls once a second, takes $(printf %.1f "$DRAIN_US") us per call at $AGENTS agents (one agent seen since the previous call)."
  echo
  echo "### (3) Durable grants"
  echo
  echo "$CONNS connections, ${DURATION} s, each request a new grant (1,000 agents, on top of the seeded $GRANTS_TOTAL grants), check records and session look-ups included. 201 answers: $G_CREATED ($G_RATE/s); other answers: $G_OTHER. /stats permissions_granted: $G_BEFORE before, $G_AFTER after, $G_RESTART after SIGKILL and restart ($G_LOADED). Grants in the database: $G_DB = 201s + $G_INFLIGHT requests still in flight when wrk stopped (at most $CONNS). Verdict: $G_VERDICT."
  echo
  echo "### (4) Start-up and memory"
  echo
  echo "exec to first successful GET /health: ${STARTUP_MS} ms; server log: \"$LOADED_LINE\". VmRSS after start-up $(mb "$RSS_START") MB (VmHWM $(mb "$HWM_START") MB); after ${LOAD_S} s of checks over $ROTATE_AGENTS agents VmRSS $(mb "$RSS_LOAD") MB (VmHWM $(mb "$HWM_LOAD") MB). OS page cache warm (the database was just written)."
  if [[ -s "$ACT_MD" ]]; then
    echo
    cat "$ACT_MD"
  fi
} | tee "$RESULTS"

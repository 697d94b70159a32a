# Helpers bench/run.sh and bench/act.sh share; sourced after they set WORK (a temp dir), RAW (the
# raw log), PIDS=() (servers started and not stopped yet).

# True while PID is still a child of this script (so a recycled PID is never signalled).
ours() { [[ "$(ps -o ppid= -p "$1" 2>/dev/null | tr -d ' ')" == "$$" ]]; }

# On exit: stop every server still running (TERM, then KILL after 10 s) and remove WORK unless
# BENCH_KEEP=1.
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    if ours "$pid"; then kill -TERM "$pid" 2>/dev/null || true; fi
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 100); do ours "$pid" || break; sleep 0.1; done
    if ours "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  done
  if [[ "${BENCH_KEEP:-0}" == 1 ]]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}

log() { echo "== $*" | tee -a "$RAW" >&2; }

# A TCP port nothing listens on (checked by connecting), below the kernel's ephemeral range:
# a port there can pass the check while an outgoing connection (or one in TIME_WAIT; /act makes
# upstream connections) holds it, and then the server's bind fails.
# Call as PORT=$(free_port) only after the previous one is in use or noted with note_port.
USED_PORTS=" "
EPHEMERAL_LOW=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
free_port() {
  local p lo=$((EPHEMERAL_LOW > 12000 ? 10000 : 61000)) hi=$((EPHEMERAL_LOW > 12000 ? EPHEMERAL_LOW : 65536))
  while :; do
    p=$((lo + RANDOM % (hi - lo)))
    [[ "$USED_PORTS" == *" $p "* ]] && continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
}
note_port() { USED_PORTS+="$1 "; }

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
  if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# $WORK/report.lua: the summary line every wrk run prints (percentiles from wrk's HdrHistogram,
# in ms), parsed by the scripts' run_wrk.
cat >"$WORK/report.lua" <<'LUA'
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT requests=%d rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f " ..
    "non2xx=%d sockerr=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, e.status,
    e.connect + e.read + e.write + e.timeout))
end
LUA

# sign_in BASE_URL LOG: signs bench@example.com in by magic link (without SMTP the server writes
# the link to its log; the first person to sign in is the admin) and prints the session cookie.
sign_in() {
  local base=$1 logfile=$2 link="" cookie
  curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' \
    -d '{"email":"bench@example.com"}' "$base/auth/magic-link"
  for _ in $(seq 200); do
    link=$(grep -o 'http://[^ ]*/auth/verify?token=[^ ]*' "$logfile" | tail -1 || true)
    [[ -n "$link" ]] && break
    sleep 0.05
  done
  [[ -n "$link" ]] || { echo "no sign-in link in the server log" >&2; return 1; }
  cookie=$(curl -s -o /dev/null -D - "$link" | tr -d '\r' |
    sed -nE 's/^[Ss]et-[Cc]ookie: ap_session=([^;]*).*/\1/p')
  [[ -n "$cookie" ]] || { echo "sign-in did not set ap_session" >&2; return 1; }
  echo "$cookie"
}

#!/usr/bin/env bash
# Speed and memory of the polling patterns, on 127.0.0.1, each server fresh per run.
#
#   scripts/polling.sh              # all three parts below
#   scripts/polling.sh short        # (a) only; likewise `long`, `sse`
#   ROUNDS=5 RUNS=3 CONNS=10000 scripts/polling.sh
#
# (a) short: `GET /checkstatus?jobId=ID` under `wrk -t1 -c50 -d5s --latency`, on
#     the `jobs` example (release build) and on the seed's express server
#     (shared/bench/node-short-polling), alternating ours, express, ours, express
#     for ROUNDS rounds (default 3). Each server is started fresh with a 3 s step
#     (STEP_MS / --step-ms 3000, the notes' value), gets one job (`POST /submit`,
#     whose handle is polled), an unrecorded 1 s warm-up, then the recorded run.
#     express runs with QUIET=1 (its per-request console.log silenced); one more
#     express run at the end keeps the log on, stdout to /dev/null (LOG_RUN=0
#     skips it). Reported: req/s, latency p50/p99, server CPU (utime+stime from
#     /proc/PID/stat) per request, peak RSS (VmHWM), the CPU other programs used
#     meanwhile (in cores), and a ratio table (goal: ours >= 10x express req/s).
# (b) long: CONNS (default 10000) long polls held on one job, by
#     examples/poll_load.rs --mode long, RUNS times (default 2). Server:
#     `jobs --step-ms 20000 --max-wait 60 --max-connections 20000`. Goals: < 10 KiB
#     per held poll, < 1 % of a core while they wait, all answered within 50 ms of
#     the update at the server (wake.last_us). Then examples/write_floor.rs, RUNS
#     times: the same number of write() calls alone, the floor under that figure.
# (c) sse: CONNS open SSE streams, heartbeats every second
#     (`jobs --step-ms 60000 --heartbeat-secs 1 --max-connections 20000`), by
#     poll_load --mode sse, RUNS times: memory per stream (goal < 10 KiB) and the
#     CPU the heartbeats cost.
#
# SPLIT_CORES=1 (root only, 2 or more CPUs; with `long` or `sse`) runs (b) or (c) as if the clients were
#     on another host: the server is pinned to CPU 0 (taskset), poll_load to CPU 1,
#     and the receiving half of loopback TCP is steered to CPU 1 by setting lo's RPS
#     mask (/sys/class/net/lo/queues/rx-0/rps_cpus; put back on exit). On plain
#     loopback a server's write() also does the client's TCP receive work, in the
#     same call; with RPS that work is queued to CPU 1 instead, as a NIC would hand
#     it to the other host. write_floor runs pinned to CPU 0 (its writer and its
#     draining thread); compare its writer's CPU time then, not its wall time.
#
# poll_load's full output (memory, CPU, the release, the server's /stats) is kept
# in the log folder printed at the end; this script prints summary tables.
# Every run is bounded: wrk by -d, poll_load by --timeout (120 s), servers are
# stopped by their PID. Open files: CONNS sockets in the tool and CONNS in the
# server, so the soft limit is raised to the hard one (20000 here) in this shell,
# which starts both. Ports are picked free from 28080 up (below the ephemeral
# range). The machine is shared: before each run the script waits (up to
# QUIET_WAIT s, default 60) until other programs use under MAX_OTHER_CORES (0.25)
# cores, and a run during which they used more is redone (MAX_ATTEMPTS, default 3,
# in all; the last attempt is kept either way). The "other cores" columns say how
# much CPU other programs took during each kept run; compare the columns of one
# run, not runs across days. Needs cargo, wrk, node; shared/bench/setup.sh installs wrk and the express
# peer's node_modules if missing (run here when they are). Exits non-zero if a run
# fails or a goal is missed.
set -euo pipefail

PARTS=${1:-all}
ROUNDS=${ROUNDS:-3}
RUNS=${RUNS:-2}
CONNS=${CONNS:-10000}
DURATION=${DURATION:-5s}
WARMUP=${WARMUP:-1s}
CONNECTIONS=${CONNECTIONS:-50}
LOG_RUN=${LOG_RUN:-1}
QUIET_WAIT=${QUIET_WAIT:-60}
MAX_OTHER_CORES=${MAX_OTHER_CORES:-0.25}
MAX_ATTEMPTS=${MAX_ATTEMPTS:-3}
BASE_PORT=${BASE_PORT:-28080}
SPLIT_CORES=${SPLIT_CORES:-0}
case "$PARTS" in all | short | long | sse) ;; *)
  echo "usage: scripts/polling.sh [all|short|long|sse]" >&2
  exit 2
  ;;
esac
want() { [ "$PARTS" = all ] || [ "$PARTS" = "$1" ]; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bench_dir=$(dirname "$repo")/shared/bench
[ -d "$bench_dir/node-short-polling" ] || bench_dir=/work/shared/bench
express_dir=$bench_dir/node-short-polling
logs=$(mktemp -d "${TMPDIR:-/tmp}/polling.XXXXXX")

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if ! want short && [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((CONNS + 100)) ]; then
  echo "open-file limit $(ulimit -n) < $((CONNS + 100)): lower CONNS or raise the hard limit" >&2
  exit 1
fi

# --- tools -------------------------------------------------------------------------
if want short; then
  if ! command -v wrk >/dev/null 2>&1 || [ ! -d "$express_dir/node_modules" ]; then
    echo "running $bench_dir/setup.sh (wrk, the express peer's node_modules)" >&2
    bash "$bench_dir/setup.sh" >&2
  fi
fi
echo "building jobs and poll_load (release)" >&2
cargo build --quiet --release --manifest-path "$repo/Cargo.toml" --example jobs --example poll_load --example write_floor
bin="${CARGO_TARGET_DIR:-$repo/target}/release/examples"

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # port_free, pick_port, server_pid, stop_server

# --- SPLIT_CORES: server on CPU 0, clients and loopback's receive side on CPU 1 -------
rps_file=/sys/class/net/lo/queues/rx-0/rps_cpus
server_cpu_prefix=() # the command prefix that pins the server (and write_floor)
client_cpu_prefix=() # the one that pins the load tool
if [ "$SPLIT_CORES" = 1 ]; then
  if want short; then
    echo "SPLIT_CORES=1 is for the held parts: scripts/polling.sh long (or sse)" >&2
    exit 2
  fi
  if [ "$(nproc)" -lt 2 ] || ! command -v taskset >/dev/null 2>&1 || [ ! -w "$rps_file" ]; then
    echo "SPLIT_CORES=1 needs 2 CPUs, taskset and a writable $rps_file (root)" >&2
    exit 1
  fi
  rps_before=$(cat "$rps_file")
  echo 2 >"$rps_file" # CPU 1's bit
  echo "split cores: server on CPU 0; clients and lo's receive side (RPS mask $(cat "$rps_file")) on CPU 1" >&2
  server_cpu_prefix=(taskset -c 0)
  client_cpu_prefix=(taskset -c 1)
  trap 'stop_server; echo "$rps_before" >"$rps_file"' EXIT INT TERM
fi

# Starts a server on PORT with its output in LOG; waits (up to 10 s) until its
# port accepts (and, for ours, its ready line is out).
start_server() { # KIND PORT LOG [ARGS...]
  local kind=$1 port=$2 log=$3
  shift 3
  case "$kind" in
    ours) "${server_cpu_prefix[@]}" "$bin/jobs" --addr "127.0.0.1:$port" "$@" >"$log" 2>&1 & ;;
    express) (cd "$express_dir" && PORT=$port STEP_MS=3000 QUIET=1 exec node server.js) >"$log" 2>&1 & ;;
    express-log) (cd "$express_dir" && PORT=$port STEP_MS=3000 exec node server.js) >/dev/null 2>&1 & ;;
  esac
  server_pid=$!
  for _ in $(seq 200); do
    if ! port_free "$port" && { [ "$kind" != ours ] || grep -q "listening on" "$log"; }; then
      return 0
    fi
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "$kind did not come up on port $port (log: $log)" >&2
  cat "$log" >&2 2>/dev/null || true
  return 1
}

# CPU ticks (1/100 s, user + system) the server has used so far.
server_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$server_pid/stat"; }
# Ticks all CPUs of the machine spent busy so far (user nice system irq softirq steal).
machine_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
# The server's VmHWM (peak resident memory) in KiB.
server_hwm() { awk '/^VmHWM:/ { print $2 }' "/proc/$server_pid/status"; }

# Waits (up to QUIET_WAIT s) until the whole machine, over one second, is busy for
# less than MAX_OTHER_CORES cores.
wait_quiet() {
  local end=$((SECONDS + QUIET_WAIT)) a b
  while [ "$SECONDS" -lt "$end" ]; do
    a=$(machine_ticks)
    sleep 1
    b=$(machine_ticks)
    if awk -v d=$((b - a)) -v m="$MAX_OTHER_CORES" 'BEGIN { exit !(d / 100 <= m) }'; then
      return 0
    fi
  done
  echo "the machine was not quiet within ${QUIET_WAIT} s: running anyway" >&2
}

# Whether the last measured run was disturbed: other programs used more than
# MAX_OTHER_CORES cores on average.
disturbed() { awk -v o="$other_cpu" -v w="$wall" -v m="$MAX_OTHER_CORES" 'BEGIN { exit !(o / w > m) }'; }

# Runs a load tool, its output to OUT; sets rc, tool_cpu (s), server_cpu (s),
# other_cpu (s: what every other program used meanwhile), other_cores
# (other_cpu / wall) and wall (s).
measured() { # OUT CMD...
  local out=$1 m0 s0 t0 m1 s1 t1
  shift
  m0=$(machine_ticks)
  s0=$(server_ticks)
  t0=$(date +%s.%N)
  rc=0
  local TIMEFORMAT='%U %S'
  { time "$@" >"$out" 2>&1; } 2>"$out.time" || rc=$?
  t1=$(date +%s.%N)
  s1=$(server_ticks)
  m1=$(machine_ticks)
  tool_cpu=$(awk '{ printf "%.2f", $1 + $2 }' "$out.time")
  server_cpu=$(awk -v a="$s0" -v b="$s1" 'BEGIN { printf "%.2f", (b - a) / 100 }')
  other_cpu=$(awk -v a="$m0" -v b="$m1" -v s="$server_cpu" -v t="$tool_cpu" \
    'BEGIN { o = (b - a) / 100 - s - t; printf "%.2f", o < 0 ? 0 : o }')
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  other_cores=$(awk -v o="$other_cpu" -v w="$wall" 'BEGIN { printf "%.2f", o / w }')
}

# Calls RUN_FUNCTION ARGS... until a run is not disturbed (MAX_ATTEMPTS at most),
# waiting for quiet before each; the function sets `row`, which is appended to
# TSV (with the attempt number); disturbed rows go to TSV.disturbed.
attempts() { # TSV RUN_FUNCTION ARGS...
  local tsv=$1 attempt
  shift
  for attempt in $(seq "$MAX_ATTEMPTS"); do
    wait_quiet
    row=""
    "$@"
    [ -n "$row" ] || return 0
    if disturbed && [ "$attempt" -lt "$MAX_ATTEMPTS" ]; then
      echo "  disturbed (other programs: $other_cores cores): again" >&2
      printf '%s\t%s\n' "$row" "$attempt" >>"$tsv.disturbed"
      continue
    fi
    printf '%s\t%s\n' "$row" "$attempt" >>"$tsv"
    return 0
  done
}

status=0

# --- (a) short polling under wrk ------------------------------------------------------
short_run() { # ROUND KIND
  local round=$1 kind=$2 port log job url sizes hwm requests
  port=$(pick_port)
  log="$logs/short-$kind-$round.log"
  start_server "$kind" "$port" "$log" --step-ms 3000
  job=$(curl -s -X POST "http://127.0.0.1:$port/submit" | tr -d '\r\n')
  url="http://127.0.0.1:$port/checkstatus?jobId=$job"
  sizes=$(curl -s -o /dev/null -w '%{size_header}+%{size_download}' "$url")
  wrk -t1 -c"$CONNECTIONS" -d"$WARMUP" "$url" >/dev/null
  local out="$logs/wrk-$kind-$round.txt"
  measured "$out" wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "$url"
  hwm=$(server_hwm)
  stop_server
  if [ "$rc" -ne 0 ]; then
    echo "wrk failed on $kind (see $out)" >&2
    status=1
    return
  fi
  requests=$(awk '/requests in/ { print $1 }' "$out")
  local rps p50 p99 bad us_per
  rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
  p50=$(awk '$1 == "50%" { print $2 }' "$out")
  p99=$(awk '$1 == "99%" { print $2 }' "$out")
  bad=$(awk '/Non-2xx or 3xx responses:/ { print "non2xx=" $NF } /Socket errors:/ { print "errors" }' "$out" | paste -sd' ')
  us_per=$(awk -v c="$server_cpu" -v n="$requests" 'BEGIN { printf "%.1f", c * 1e6 / n }')
  row=$(printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s' "$round" "$kind" "$rps" "$p50" "$p99" \
    "$server_cpu" "$us_per" "$((hwm / 1024))" "$tool_cpu" "$other_cores" "$sizes" "${bad:--}")
  printf 'round %s %-11s %10s req/s  p50 %-8s p99 %-8s server CPU %5ss = %6s µs/req  peak RSS %s MiB  other %s cores %s\n' \
    "$round" "$kind" "$rps" "$p50" "$p99" "$server_cpu" "$us_per" "$((hwm / 1024))" "$other_cores" "${bad}" >&2
}

if want short; then
  : >"$logs/short.tsv"
  for round in $(seq "$ROUNDS"); do
    attempts "$logs/short.tsv" short_run "$round" ours
    attempts "$logs/short.tsv" short_run "$round" express
  done
  if [ "$LOG_RUN" = 1 ]; then attempts "$logs/short.tsv" short_run log express-log; fi
fi

# --- (b), (c) held long polls and open streams ------------------------------------------
held_run() { # MODE RUN
  local mode=$1 run=$2 port log out
  port=$(pick_port)
  log="$logs/$mode-jobs-$run.log"
  case "$mode" in
    long) start_server ours "$port" "$log" --step-ms 20000 --max-wait 60 --max-connections 20000 ;;
    sse) start_server ours "$port" "$log" --step-ms 60000 --heartbeat-secs 1 --max-connections 20000 ;;
  esac
  out="$logs/poll_load-$mode-$run.txt"
  local cmd=("${client_cpu_prefix[@]}" "$bin/poll_load" --mode "$mode" --addr "127.0.0.1:$port" --pid "$server_pid"
    --conns "$CONNS" --cpu-secs 5 --timeout 120 --max-kib-per-conn 10)
  [ "$mode" = long ] && cmd+=(--max-cpu-pct 1 --max-wake-ms 50)
  echo "== $mode run $run: ${cmd[*]}" >&2
  measured "$out" "${cmd[@]}"
  stop_server
  grep -v '^RESULT' "$out" | sed -n '1,/^server \/stats/p' | sed '$d' >&2
  local result
  result=$(grep '^RESULT ' "$out" || echo "RESULT ok=false")
  row=$(printf '%s\t%s\t%s\t%s\t%s' "$run" "$result" "$tool_cpu" "$other_cores" "$wall")
}

for mode in long sse; do
  want "$mode" || continue
  : >"$logs/$mode.tsv"
  for run in $(seq "$RUNS"); do attempts "$logs/$mode.tsv" held_run "$mode" "$run"; done
  if [ "$mode" = long ]; then
    # The floor under the wake-up: the same number of write() calls and nothing
    # else (examples/write_floor.rs), right after the server's runs.
    # It holds both ends of every connection in one process: 2 x N files.
    floor_conns=$CONNS
    if [ "$(ulimit -n)" != unlimited ] && [ $((2 * CONNS + 100)) -gt "$(ulimit -n)" ]; then
      floor_conns=$((($(ulimit -n) - 100) / 2))
    fi
    : >"$logs/write_floor.txt"
    for run in $(seq "$RUNS"); do
      wait_quiet
      "${server_cpu_prefix[@]}" "$bin/write_floor" --conns "$floor_conns" >>"$logs/write_floor.txt"
    done
  fi
done

# --- tables ----------------------------------------------------------------------------
if want short; then
  echo
  echo "(a) short polling: wrk -t1 -c$CONNECTIONS -d$DURATION --latency 'http://127.0.0.1:PORT/checkstatus?jobId=ID'"
  echo "    fresh server per run, 1 s warm-up; express with QUIET=1 unless marked 'logging' (stdout to /dev/null)"
  echo
  {
    printf 'round\tserver\treq/s\tp50\tp99\tserver CPU s\tCPU µs/req\tpeak RSS MiB\twrk CPU s\tother cores\tresponse bytes (head+body)\terrors\tattempt\n'
    awk -F'\t' -v OFS='\t' '{ if ($2 == "ours") $2 = "ours (jobs)"; else if ($2 == "express") $2 = "express QUIET=1"; else $2 = "express logging"; print }' "$logs/short.tsv"
  } | column -t -s $'\t'
  echo
  {
    printf 'round\tours req/s\texpress req/s\tours / express\tours µs/req\texpress µs/req\texpress / ours CPU\n'
    awk -F'\t' -v OFS='\t' '
      $2 == "ours"    { o[$1] = $3; oc[$1] = $7 }
      $2 == "express" { e[$1] = $3; ec[$1] = $7 }
      END {
        for (r = 1; r in o && r in e; r++) {
          print r, o[r], e[r], sprintf("%.1fx", o[r] / e[r]), oc[r], ec[r], sprintf("%.1fx", ec[r] / oc[r])
          so += o[r]; se += e[r]; soc += oc[r]; sec += ec[r]; n++
        }
        if (n) print "mean", sprintf("%.0f", so / n), sprintf("%.0f", se / n), sprintf("%.1fx", so / se),
          sprintf("%.1f", soc / n), sprintf("%.1f", sec / n), sprintf("%.1fx", sec / soc)
      }' "$logs/short.tsv"
  } | column -t -s $'\t'
  mean_ratio=$(awk -F'\t' '$2 == "ours" { o += $3 } $2 == "express" { e += $3 } END { if (e) printf "%.1f", o / e }' "$logs/short.tsv")
  if awk -v r="${mean_ratio:-0}" 'BEGIN { exit !(r >= 10) }'; then
    echo "goal: ours >= 10x express req/s (mean): met (${mean_ratio}x)"
  else
    echo "goal: ours >= 10x express req/s (mean): MISSED (${mean_ratio}x)"
    status=1
  fi
fi

# Prints field NAME of a RESULT line.
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }

if want long; then
  echo
  echo "(b) $CONNS long polls held on one job: poll_load --mode long --conns $CONNS (jobs --step-ms 20000 --max-wait 60)"
  echo "    goals: < 10 KiB per held poll, < 1 % of a core while they wait, all answered < 50 ms after the update (server)"
  if [ "$SPLIT_CORES" = 1 ]; then
    echo "    SPLIT_CORES=1: server on CPU 0; poll_load and lo's receive side (RPS) on CPU 1"
  fi
  echo
  {
    printf 'run\theld\tKiB per held poll\tVmRSS before / held / answered KiB\tVmHWM KiB\tCPU waiting %% (ticks)\tloop thread %%\tanswered\tclient first->last ms\tclient update->receipt p50 / max ms\tserver update->last answer ms\tloop CPU per answer µs\tother cores\tok\tattempt\n'
    while IFS=$'\t' read -r run result _tool other _wall attempt; do
      printf '%s\t%s\t%s\t%s / %s / %s\t%s\t%s\t%s\t%s\t%s\t%s / %s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$(field "$result" waiting)" \
        "$(field "$result" kib_per_conn)" "$(field "$result" rss_before_kb)" "$(field "$result" rss_waiting_kb)" \
        "$(field "$result" rss_released_kb)" \
        "$(field "$result" hwm_kb)" "$(field "$result" cpu_pct)" "$(field "$result" loop_cpu_pct)" \
        "$(field "$result" released)" "$(field "$result" spread_ms)" "$(field "$result" lag_p50_ms)" \
        "$(field "$result" lag_max_ms)" \
        "$(awk -v u="$(field "$result" wake_last_us)" 'BEGIN { printf "%.1f", u / 1000 }')" \
        "$(field "$result" wake_loop_us_per_answer)" \
        "$other" "$(field "$result" ok)" "$attempt"
    done <"$logs/long.tsv"
  } | column -t -s $'\t'
  if grep -q 'ok=false' "$logs/long.tsv"; then status=1; fi
  echo
  echo "    the floor: one write() per socket and nothing else (write_floor --conns $floor_conns: both ends of"
  echo "    each connection are in its one process, so at most half the open-file limit), run $RUNS times:"
  if [ "$SPLIT_CORES" = 1 ]; then
    echo "    (SPLIT_CORES=1: pinned to CPU 0, the receive side on CPU 1; the writer's CPU time is the floor)"
  fi
  sed 's/^/    /' "$logs/write_floor.txt"
fi

if want sse; then
  echo
  echo "(c) $CONNS open SSE streams, heartbeat every 1 s: poll_load --mode sse --conns $CONNS (jobs --heartbeat-secs 1)"
  echo "    goal: < 10 KiB per open stream"
  echo
  {
    printf 'run\topen\tKiB per stream\tVmRSS before / open KiB\tVmHWM KiB\tCPU with heartbeats %%\tloop thread %%\theartbeats in window\tother cores\tok\tattempt\n'
    while IFS=$'\t' read -r run result _tool other _wall attempt; do
      printf '%s\t%s\t%s\t%s / %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$(field "$result" waiting)" \
        "$(field "$result" kib_per_conn)" "$(field "$result" rss_before_kb)" "$(field "$result" rss_waiting_kb)" \
        "$(field "$result" hwm_kb)" "$(field "$result" cpu_pct)" "$(field "$result" loop_cpu_pct)" \
        "$(field "$result" heartbeats_in_window)" "$other" "$(field "$result" ok)" "$attempt"
    done <"$logs/sse.tsv"
  } | column -t -s $'\t'
  if grep -q 'ok=false' "$logs/sse.tsv"; then status=1; fi
fi

echo
echo "logs and full outputs: $logs"
exit "$status"

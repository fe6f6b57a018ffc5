#!/usr/bin/env bash
# One chat room over 1, 2 and 3 chat_push processes sharing Redis, beside one
# chat_push alone: the same 1000 clients (spread round robin over the servers),
# one sender, M messages, driven by chat_load from one process (one clock for
# latency). Loopback only; every run is bounded.
#
#   scripts/redis_chat.sh                       # 2 rounds, 1000 clients x 500 messages
#   ROUNDS=3 CLIENTS=1000 MESSAGES=200 scripts/redis_chat.sh
#
# Cases, each round in turn, every process fresh:
#
#   alone    one chat_push, no Redis: the baseline.
#   redis1   one chat_push --redis: the same room, every message through Redis
#            (PUBLISH, then the subscriber's delivery): the Redis hop's cost.
#   redis2   two chat_push --redis, clients split 500/500.
#   redis3   three chat_push --redis, clients split 334/333/333.
#
# For each run: deliveries/s and latency p50/p99 (chat_load), the chat servers'
# CPU per delivery summed over them and their peak memory (chat_load --pid), and
# Redis's own CPU over the run per message it carried (its threads' /proc/PID/task/*/schedstat;
# messages = joins + said lines, each PUBLISHed once and delivered once per
# server). On a 2-core machine the servers, Redis and the load tool share two
# cores: this shows what the hop costs, not a gain from scaling out.
# Needs: redis-server (apt-get install -y redis-server). Not run in CI.
set -euo pipefail

ROUNDS=${ROUNDS:-2}
CLIENTS=${CLIENTS:-1000}
MESSAGES=${MESSAGES:-500}
CASES=${CASES:-"alone redis1 redis2 redis3"}
BASE_PORT=${BASE_PORT:-28180}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
logs=$(mktemp -d "${TMPDIR:-/tmp}/redis_chat.XXXXXX")
command -v redis-server >/dev/null || { echo "needs redis-server: apt-get install -y redis-server" >&2; exit 1; }

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((CLIENTS + 200)) ]; then
  echo "open-file limit $(ulimit -n): $CLIENTS clients need more" >&2
  exit 1
fi

echo "building chat_push and chat_load (release)" >&2
cargo build --quiet --release --manifest-path "$repo/Cargo.toml" --example chat_push --example chat_load
bin="${CARGO_TARGET_DIR:-$repo/target}/release/examples"

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # port_free, pick_port

pids=()
redis_pid=""
cleanup() {
  for p in "${pids[@]}" $redis_pid; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}" $redis_pid; do wait "$p" 2>/dev/null || true; done
  pids=()
  redis_pid=""
}
trap cleanup EXIT INT TERM

# CPU time of process $1 so far, in nanoseconds: every thread's run time from the
# scheduler (/proc/PID/task/*/schedstat), finer than /proc/PID/stat's 10 ms ticks.
proc_cpu() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }

# Waits until $1 (a log file) has a line matching $2, at most 10 s.
wait_line() {
  for _ in $(seq 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "no '$2' in $1:" >&2; cat "$1" >&2; return 1
}

# run CASE ROUND: prints one table row and keeps the RESULT line.
run() {
  local case=$1 round=$2 servers redis_flag="" urls=() pid_flags=() port
  case $case in
    alone) servers=1 ;;
    redis*) servers=${case#redis} ;;
  esac
  if [ "$case" != alone ]; then
    port=$(pick_port)
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
      --dir "$logs" --daemonize no >"$logs/redis.$case.$round.log" 2>&1 &
    redis_pid=$!
    wait_line "$logs/redis.$case.$round.log" "Ready to accept connections"
    redis_flag="--redis 127.0.0.1:$port"
  fi
  for i in $(seq "$servers"); do
    port=$(pick_port)
    local log="$logs/chat.$case.$round.$i.log"
    # shellcheck disable=SC2086
    "$bin/chat_push" --addr "127.0.0.1:$port" $redis_flag >"$log" 2>&1 &
    pids+=($!)
    wait_line "$log" "listening on"
    [ -z "$redis_flag" ] || wait_line "$log" "is shared through Redis"
    urls+=(--url "ws://127.0.0.1:$port/")
    pid_flags+=(--pid "${pids[-1]}")
  done
  local redis_before=0 redis_after=0 out="$logs/load.$case.$round.txt"
  [ -z "$redis_pid" ] || redis_before=$(proc_cpu "$redis_pid")
  "$bin/chat_load" "${urls[@]}" "${pid_flags[@]}" --clients "$CLIENTS" \
    --messages "$MESSAGES" --timeout 60 --settle 30 >"$out" 2>&1 || true
  [ -z "$redis_pid" ] || redis_after=$(proc_cpu "$redis_pid")
  local result
  result=$(grep '^RESULT' "$out" | tail -1)
  if [ -z "$result" ]; then
    echo "$case round $round: no RESULT line; chat_load said:" >&2
    cat "$out" >&2
    cleanup
    return 1
  fi
  local carried=$((CLIENTS + MESSAGES))
  local redis_us=na
  if [ -n "$redis_pid" ]; then
    redis_us=$(awk -v d=$((redis_after - redis_before)) -v n="$carried" \
      'BEGIN { printf "%.1f", d / 1e3 / n }')
  fi
  get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$result"; }
  printf '%-7s %5s %8s %11s %9s %9s %14s %12s %15s\n' "$case" "$round" "$(get end)" \
    "$(get deliveries_per_s)" "$(get lat_p50_ms)" "$(get lat_p99_ms)" \
    "$(get server_cpu_per_delivery_us)" "$(get server_peak_rss_mib)" "$redis_us"
  echo "$case round=$round $result redis_cpu_us_per_message=$redis_us" >>"$logs/results.txt"
  cleanup
}

echo "clients $CLIENTS, 1 sender x $MESSAGES messages; logs in $logs"
printf '%-7s %5s %8s %11s %9s %9s %14s %12s %15s\n' case round end deliveries/s "p50 ms" "p99 ms" \
  "CPU/deliv µs" "RSS MiB sum" "Redis µs/msg"
for round in $(seq "$ROUNDS"); do
  for case in $CASES; do
    run "$case" "$round"
  done
done
echo "RESULT lines: $logs/results.txt"
